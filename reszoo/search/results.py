"""What a study found: trial rows, the best feasible nets, the Pareto front,
the reference presets on the same proxy, and publishing winners with lineage."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from reszoo.devices import device_label
from reszoo.errors import SearchError
from reszoo.latency.judge import LatencyJudge, Verdict
from reszoo.search import keys
from reszoo.search.config import SearchConfig
from reszoo.search.objective import Objective
from reszoo.search.space import SearchSpace
from reszoo.search.storage import redact
from reszoo.train.data import Dataset
from reszoo.train.data import load as load_dataset
from reszoo.train.loop import train
from reszoo.train.publish import TrainedEntry, publish_trained
from reszoo.train.recipes import Recipe
from reszoo.zoo.presets import get_spec
from reszoo.zoo.records import EntryRecord
from reszoo.zoo.registry import Registry
from reszoo.zoo.spec import ArchSpec

T = TypeVar("T")


@dataclass(frozen=True)
class TrialResult:
    """One trial, as reported: its net, score and accuracy on the proxy, latency and fate."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING
    spec: ArchSpec | None
    params: int | None
    accuracy: float | None  # validation top-1 of the proxy run; None if not trained to the end
    latency_ms: float | None
    latency_source: (
        str | None
    )  # measured, relative (scaled: the host was slower), rough (timed briefly, far over the limit) or predicted
    feasible: bool | None
    reason: str | None  # why it failed or was pruned
    screened: int = 0  # draws the latency screen dropped before this trial (search/sampling.py)
    repeated: int = 0  # draws of nets already in the study, dropped before this trial
    score: float | None = None  # what the study ranks (proxy.SCORES); None: the accuracy (older studies)
    train_loss: float | None = None  # the proxy's last epoch's mean training loss

    @property
    def rank_score(self) -> float:
        """The figure trials are ranked by: the proxy's score (the accuracy in studies scored by it)."""
        return self.score if self.score is not None else self.known_accuracy

    # A usable trial (trained to the end, under the limit) has a spec, an accuracy and a
    # latency; these read them off one, and name the trial where a caller holds another.

    def _known(self, value: T | None, what: str) -> T:
        if value is None:
            raise SearchError(
                f"trial {self.number} ({self.state}) has no {what}: only a trial trained to the end "
                "under the latency limit has one"
            )
        return value

    @property
    def known_spec(self) -> ArchSpec:
        return self._known(self.spec, "spec")

    @property
    def known_params(self) -> int:
        return self._known(self.params, "parameter count")

    @property
    def known_accuracy(self) -> float:
        return self._known(self.accuracy, "accuracy")

    @property
    def known_latency_ms(self) -> float:
        return self._known(self.latency_ms, "latency")

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> TrialResult:
        attrs = trial.user_attrs
        complete = trial.state == TrialState.COMPLETE
        spec = ArchSpec.from_dict(attrs[keys.SPEC]) if keys.SPEC in attrs else None
        reason = attrs.get(keys.FAIL_REASON) or trial.system_attrs.get("fail_reason")  # ours, or Optuna's
        if trial.state == TrialState.PRUNED and reason is None:
            reason = "pruned: stopped early by the study's pruner"
        return cls(
            number=trial.number,
            state=trial.state.name,
            spec=spec,
            params=attrs.get(keys.PARAMS),
            accuracy=attrs.get(keys.ACCURACY) if complete else None,
            latency_ms=attrs.get(keys.LATENCY_MS),
            latency_source=attrs.get(keys.LATENCY_SOURCE),
            feasible=attrs.get(keys.FEASIBLE),
            reason=reason,
            screened=int(trial.system_attrs.get(keys.SCREENED, 0)),
            repeated=int(trial.system_attrs.get(keys.REPEATED, 0)),
            score=attrs.get(keys.SCORE) if complete else None,
            train_loss=attrs.get(keys.TRAIN_LOSS) if complete else None,
        )

    @property
    def usable(self) -> bool:
        """Trained to the end and under the limit: the only trials that may be reported best."""
        return self.state == "COMPLETE" and self.feasible is True and self.accuracy is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.number,
            "state": self.state,
            "feasible": self.feasible,
            "accuracy": self.accuracy,
            "score": self.score,
            "train_loss": self.train_loss,
            "latency_ms": self.latency_ms,
            "latency_source": self.latency_source,
            "params": self.params,
            "summary": self.spec.summary() if self.spec else None,
            "spec": self.spec.to_dict() if self.spec else None,
            "reason": self.reason,
            "screened_draws": self.screened,
            "repeated_draws": self.repeated,
        }


def trial_results(study: optuna.Study) -> list[TrialResult]:
    return [TrialResult.from_trial(t) for t in study.get_trials(deepcopy=False)]


def best(results: list[TrialResult], k: int = 1) -> list[TrialResult]:
    """The ``k`` best-scored feasible trials (ties: the faster first). Infeasible ones never."""
    usable = [r for r in results if r.usable]
    return sorted(usable, key=lambda r: (-r.rank_score, r.latency_ms, r.number))[:k]


def pareto_front(results: list[TrialResult], by: str = "score") -> list[TrialResult]:
    """Feasible trials no other feasible trial beats on both score and latency, fastest first
    (``by="accuracy"``: on proxy top-1 instead, as the picture draws it)."""
    if by not in ("score", "accuracy"):
        raise ValueError(f"pareto_front by must be 'score' or 'accuracy', got {by!r}")

    def figure(r: TrialResult) -> float:
        return r.rank_score if by == "score" else r.known_accuracy

    front: list[TrialResult] = []
    for result in sorted((r for r in results if r.usable), key=lambda r: (r.latency_ms, -figure(r), r.number)):
        if not front or figure(result) > figure(front[-1]):
            front.append(result)
    return front


def hypervolume(front: list[tuple[float, float]], max_ms: float, min_accuracy: float = 0.0) -> float:
    """Area (accuracy x ms) a front of (latency_ms, accuracy) points dominates, up to
    the latency limit and down to ``min_accuracy``: larger is better."""
    points = sorted((ms, acc) for ms, acc in front if ms <= max_ms and acc > min_accuracy)
    area, floor = 0.0, min_accuracy
    for ms, acc in points:
        if acc > floor:
            area += (max_ms - ms) * (acc - floor)
            floor = acc
    return area


def fitted_preset(name: str, space: SearchSpace) -> ArchSpec:
    """Preset ``name`` with the searched space's classes, channels and input size."""
    return get_spec(name).with_overrides(
        num_classes=space.num_classes, in_chans=space.in_chans, input_size=space.input_size
    )


def score_references(
    study: optuna.Study,
    objective: Objective,
    names: list[str],
    on_start: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Presets trained on the same proxy and timed on the same device, kept with the study
    (scored once; a resumed study reuses them, and a trial of the same net is reused)."""
    stored: dict[str, dict[str, Any]] = dict(study.user_attrs.get(keys.REFERENCES, {}))
    for name in names:
        if name in stored:
            continue
        if on_start is not None:
            on_start(name)
        spec = fitted_preset(name, objective.space)
        trained = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get(keys.DIGEST) == spec.digest and keys.ACCURACY in t.user_attrs
        ]
        scored: dict[str, Any] = {keys.ACCURACY: None, keys.SCORE: None, keys.TRAIN_LOSS: None}
        limit = objective.judge.limit_ms
        if trained:  # the search started from it (see runner.run): same proxy, same seed, same score
            ms = trained[0].user_attrs[keys.LATENCY_MS]
            scored.update({key: trained[0].user_attrs.get(key) for key in scored})
        else:
            ms = objective.judge.judge(spec, careful=True).ms
            # A preset over the limit is reported as such, never trained: it is no rival here.
            if limit is None or ms <= limit:
                scored.update({key: value for key, value in objective.train_proxy(spec).items() if key in scored})
        stored[name] = {
            "summary": spec.summary(),
            "params": _params(spec),
            "latency_ms": ms,
            **scored,
            "spec": spec.to_dict(),
            "over_limit": limit is not None and ms > limit,
        }
        study.set_user_attr(keys.REFERENCES, stored)
    return {name: stored[name] for name in names if name in stored}


def _params(spec: ArchSpec) -> int:
    from reszoo.zoo.counting import count

    return count(spec).params


def lineage(config: SearchConfig) -> str:
    """Where a published net was found: ``STORAGE#STUDY`` (no password)."""
    return f"{redact(config.storage)}#{config.study}"


def winners(study: optuna.Study, mode: str, k: int) -> list[TrialResult]:
    results = trial_results(study)
    if mode == "pareto":
        return sorted(pareto_front(results), key=lambda r: (-r.rank_score, r.latency_ms))[:k]
    return best(results, k)


def _confirmed(
    study: optuna.Study,
    config: SearchConfig,
    k: int,
    judge: LatencyJudge | None,
    on_confirm: Callable[[TrialResult, Verdict], None] | None,
) -> tuple[list[TrialResult], dict[int, Verdict]]:
    """The ``k`` best trials whose latency ``judge`` confirms under the limit, and their verdicts."""
    if judge is None or config.target.max_ms is None:
        return winners(study, config.mode, k), {}
    chosen: list[TrialResult] = []
    verdicts: dict[int, Verdict] = {}
    ranked = winners(study, config.mode, len(study.trials))
    for result in ranked:
        verdict = judge.confirm(result.known_spec)
        if on_confirm is not None:
            on_confirm(result, verdict)
        if verdict.feasible:
            chosen.append(result)
            verdicts[result.number] = verdict
            if len(chosen) == k:
                break
    if not chosen:
        raise SearchError(
            f"none of the {len(ranked)} feasible trials of study {config.study!r} is under the latency limit "
            "when timed again with nothing training: the search's verdicts were too loose. Run the search "
            "again with --workers 1 (its timings then never sit beside training), or give --max-latency-ms"
        )
    return chosen, verdicts


def confirmed_against(verdict: Verdict, config: SearchConfig) -> str:
    """What a confirmed net was held to: its reference timed beside it, or the limit given in ms."""
    if config.target.limit_from is not None:
        return f"{verdict.limit_ms:.4g} ms, its reference timed beside it"
    return f"the limit of {verdict.limit_ms:.4g} ms"


def _confirmed_text(verdict: Verdict | None, config: SearchConfig) -> str:
    """The card's note of the latency a net was published under, when it was timed again."""
    if verdict is None or verdict.limit_ms is None:
        return ""
    return f"; timed again before training: {verdict.ms:.4g} ms against {confirmed_against(verdict, config)}"


def _run_key(recipe: Recipe, precision: str | None) -> str:
    """A short digest of how a net is trained, so that a checkpoint resumes only the same training."""
    body = json.dumps({"recipe": recipe.to_dict(), "precision": precision}, sort_keys=True)
    return f"{recipe.name}-{hashlib.sha256(body.encode()).hexdigest()[:8]}"


def _limit_text(config: SearchConfig) -> str:
    """The limit as a model card shows it: four significant figures, where it was timed."""
    target = config.target
    where = f"on {device_label(target.device)}, batch {target.batch_size}, {target.runtime}"
    limit = "no latency limit" if target.max_ms is None else f"latency limit {target.max_ms:.4g} ms"
    return f"{limit} {where}"


def publish_best(
    study: optuna.Study,
    config: SearchConfig,
    k: int,
    recipe: Recipe,
    registry: Registry,
    *,
    on_start: Callable[[TrialResult, str], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    dataset: Dataset | None = None,
    name: str | None = None,
    precision: str | None = None,
    judge: LatencyJudge | None = None,
    on_confirm: Callable[[TrialResult, Verdict], None] | None = None,
) -> list[EntryRecord]:
    """Train the ``k`` best feasible nets with ``recipe`` on the whole training split,
    evaluate them on the test split, and publish them with lineage (study, trial).

    Args:
        dataset: The loaded ``config.dataset``, if the caller has it.
        name: What to publish them as: ``name`` (k = 1) or ``name-1`` ... ``name-k`` by rank;
            default ``STUDY-tN`` (N the trial). Every name is checked before anything trains.
        precision: Of the training (default: the device's, float32 on a CPU).
        judge: With a latency limit, every candidate is judged again before anything trains
            (:meth:`LatencyJudge.confirm`: timed now, beside the reference), best first, until
            ``k`` are under the limit; ``on_confirm`` hears each verdict. The search's own
            verdicts were taken beside training processes, and a wrong one would publish a
            net slower than the limit it claims.

    Each training checkpoints every epoch under ``$RESZOO_HOME/search/publish/``; run again
    after an interruption, it resumes there.
    """
    from reszoo.zoo.hub import home

    dataset = dataset or load_dataset(config.dataset, root=config.data_root)
    chosen, confirmed = _confirmed(study, config, k, judge, on_confirm)
    names = [
        f"{config.study}-t{r.number}" if name is None else name if len(chosen) == 1 else f"{name}-{rank}"
        for rank, r in enumerate(chosen, 1)
    ]
    for entry_name in names:
        registry.check_new_name(entry_name)  # refused now, not after an hour of training
    published = []
    for result, entry_name in zip(chosen, names):
        if on_start is not None:
            on_start(result, entry_name)
        folder = home() / "search" / "publish"
        folder.mkdir(parents=True, exist_ok=True)
        trained = train(
            result.known_spec,
            dataset,
            recipe,
            device=config.proxy.device,
            seed=config.proxy.seed,
            runtime=config.proxy.runtime,
            precision=precision,
            on_epoch=on_epoch,
            checkpoint=folder / f"{config.study}-t{result.number}-{_run_key(recipe, precision)}.safetensors",
            resume=True,
        )
        entry = TrainedEntry.from_result(
            trained,
            dataset,
            device_label(config.proxy.device),
            extra_metrics={"proxy_accuracy": result.accuracy},
            study=lineage(config),
            trial=result.number,
            notes=f"found by reszoo search ({config.mode}, {_limit_text(config)})"
            + _confirmed_text(confirmed.get(result.number), config),
        )
        published.append(publish_trained(registry, entry_name, trained.model, result.spec, entry))
    return published
