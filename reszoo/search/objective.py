"""One search trial: spec -> latency verdict -> (if under the limit) proxy training -> score.

Latency comes first because it is cheap and decides feasibility: the latency
judge (reszoo.latency.judge) settles it, by prediction, a stored row or a
measurement. Only feasible nets are trained, on the proxy (search/proxy.py).
A net over the limit is recorded as Optuna records a violated constraint, so
Optuna's samplers, ``study.best_trial`` and optuna-dashboard treat it as
infeasible; its score is -inf, which no trained net gets and which plots
leave out.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import optuna
import torch

from reszoo.errors import TrainingError
from reszoo.latency.judge import LatencyJudge
from reszoo.search import keys
from reszoo.search.proxy import Proxy, epoch_score
from reszoo.search.space import SearchSpace
from reszoo.train.data import Dataset
from reszoo.train.loop import TrainingRun
from reszoo.zoo.counting import count
from reszoo.zoo.spec import ArchSpec

#: The score of a trial whose net was not trained (over the limit): below any trained net's.
#: Studies started before it was -inf stored -1000; they resume unchanged (feasibility is
#: read from the constraint and the ``feasible`` attribute, never from the value).
UNTRAINED = -math.inf

#: Trained trials needed at an epoch before the median pruner may stop a run there.
PRUNE_AFTER = 5


def _trained_to(study: optuna.Study, epoch: int) -> int:
    """How many finished trials reported a score at ``epoch`` (infeasible ones never do)."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sum(1 for t in study.get_trials(deepcopy=False, states=states) if epoch in t.intermediate_values)


def record_constraint(trial: optuna.Trial, over_ms: float) -> None:
    """Store how far over the limit a trial's net is as Optuna's constraint (feasible when <= 0),
    in the list form that Optuna and optuna-dashboard both read (see keys.CONSTRAINTS)."""
    # Trial.set_constraint writes one key per name, which optuna-dashboard does not read.
    trial.storage.set_trial_system_attr(trial._trial_id, keys.CONSTRAINTS, [float(over_ms)])


@dataclass
class Objective:
    """The callable ``study.optimize`` runs; returns the proxy's score, or (score, latency) in Pareto mode."""

    space: SearchSpace
    data: Dataset  # the proxy's (see proxy.proxy_data)
    proxy: Proxy
    judge: LatencyJudge
    pareto: bool = False
    prune: bool = True
    gate_pruning: bool = True  # prune only once PRUNE_AFTER trials reached the epoch (the median pruner's need)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        spec = self.space.suggest(trial)
        counts = count(spec)
        verdict = self.judge.judge(spec)
        attrs = {
            keys.SPEC: spec.to_dict(),
            keys.DIGEST: spec.digest,
            keys.SUMMARY: spec.summary(),
            keys.PARAMS: counts.params,
            keys.MACS: counts.macs,
            keys.LATENCY_MS: verdict.ms,
            keys.LATENCY_SOURCE: verdict.source,
            keys.FEASIBLE: verdict.feasible,
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        # TPE models infeasible trials apart; study.best_trial and the dashboard skip them.
        record_constraint(trial, verdict.over_ms)
        if not verdict.feasible:
            return (UNTRAINED, verdict.ms) if self.pareto else UNTRAINED
        try:
            trained = self.train_proxy(spec, trial)
        except TrainingError as exc:
            trial.set_user_attr(keys.FAIL_REASON, str(exc))
            raise
        for key, value in trained.items():
            trial.set_user_attr(key, value)
        return (trained[keys.SCORE], verdict.ms) if self.pareto else trained[keys.SCORE]

    def train_proxy(self, spec: ArchSpec, trial: optuna.Trial | None = None) -> dict[str, Any]:
        """Train ``spec`` on the proxy: its score (what the study ranks), validation top-1, last
        epoch's training loss and error, and how long it took. With ``trial``, each epoch's
        score is reported to it and the median pruner may stop the run."""
        last_epoch = self.proxy.recipe.epochs  # None when the recipe counts iterations
        by = self.proxy.score
        params = count(spec).params

        def report(record: dict[str, Any]) -> None:
            if trial is None or self.pareto:  # Optuna prunes single-objective studies only
                return
            epoch = record["epoch"]
            trial.report(epoch_score(record, by, params), epoch)
            # Stopping at the last epoch saves nothing and loses the score, and a
            # median of fewer than PRUNE_AFTER trained trials is noise.
            if (
                self.prune
                and epoch != last_epoch
                and (not self.gate_pruning or _trained_to(trial.study, epoch) >= PRUNE_AFTER)
                and trial.should_prune()
            ):
                # Only the score in use: a run ranked by its loss has no per-epoch test error.
                if by == "top1":
                    figure = f"validation top-1 {1 - record['test_err']:.4f}"
                elif by == "train-loss":
                    figure = f"training loss {record['train_loss']:.4f}"
                else:
                    figure = (
                        f"score {epoch_score(record, by, params):.4f} (training loss "
                        f"{record['train_loss']:.4f}, {params} parameters)"
                    )
                trial.set_user_attr(keys.FAIL_REASON, f"pruned after epoch {epoch}: {figure}")
                raise optuna.TrialPruned(f"{figure} after epoch {epoch}")

        started = time.perf_counter()
        step = self.judge.training_step  # another worker's latency measurement waits for one step, not a run
        try:
            with step():
                # Ranked by training loss, the proxy is tested once, at the end (3 test passes fewer).
                run = TrainingRun(
                    spec,
                    self.data,
                    self.proxy.recipe,
                    device=self.proxy.device,
                    seed=self.proxy.seed,
                    runtime=self.proxy.runtime,
                    precision=self.proxy.precision,
                    on_epoch=report,
                    validate_epochs=by == "top1",
                )
            steps = run.steps()
            while True:
                with step():
                    if next(steps, None) is None:
                        break
            with step():
                result = run.result()
        except torch.OutOfMemoryError:
            # One net too big for the device fails its trial, not the search.
            raise TrainingError(
                f"out of memory training {spec.summary()} at batch "
                f"{self.proxy.recipe.batch_size} on {self.proxy.device}"
            ) from None
        last = result.history[-1]
        accuracy = result.metrics["top1"]
        return {
            keys.SCORE: accuracy if by == "top1" else epoch_score(last, by, params),
            keys.ACCURACY: accuracy,
            keys.TRAIN_LOSS: last["train_loss"],
            keys.TRAIN_ERR: last["train_err"],
            keys.TRAIN_SECONDS: time.perf_counter() - started,
        }
