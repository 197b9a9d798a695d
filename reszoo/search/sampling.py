"""Sampling where the feasible nets are: the latency predictor screens each draw.

Optuna's constrained TPE learns where the limit lies only from trials it has
run. Started from nothing, its start-up draws are random, and on the default
space under resnet20's limit most random nets are over it: the search spends
its first trials (and the TPE model its data) on nets it will never train.

:class:`ScreenedSampler` wraps the sampler (TPE stays the core; any Optuna
sampler works) and asks it for a whole draw before any trial holds it. When
the per-part predictor puts the draw over the limit by more than its own
error, the draw is dropped and the sampler asked again, up to ``tries``
times, then the space is drawn uniformly (TPE, once settled, proposes much
the same net again; under a tight limit few of its proposals pass). A draw that passes is still timed by the objective: the measurement,
not the prediction, decides feasibility and is what TPE's constraint learns
from. So the screen changes which nets are tried, never what is reported.

A draw of a net the study already holds (finished, running or queued) is
dropped as well: the proxy is seeded, so training it again gives the same
score and costs a whole trial. TPE, once it has settled, proposes its best
net again and again: in a 20-trial default search on Fashion-MNIST one net
was trained four times, a sixth of the budget.

With ``prefer`` (the part of the score known before training: the default
score's size term), the screen asks for up to ``pick`` passing draws and hands
on the one ``prefer`` ranks highest among those likely under the limit (when
none is, the highest of them all: a draw over the limit costs one measurement,
never a training, and the study learns where the limit lies from it). TPE
models the score as a black box and, with two dozen trials, learns little of a
term it could have been told: under that score TPE lost to random draws in 3
of 5 seeds (search_quality.py), and the best nets were the largest under the
limit, which random draws, measuring every net, found more often.

The preference stops at a training cost: of the passing draws it ranks only
those within ``PREFER_MACS_RATIO`` times the MACs of the nets the study
started from (the reference presets, enqueued with fixed parameters). Under a
loose limit the largest draws under it are the widest nets, which on a CPU at
batch 1 cost little latency but much training: in three default searches
under limits of 4.7-5.2 ms (a slow spell of the host) the preference picked
nets of 2.6-5x resnet20's MACs and the searches took 285-351 s, against 184
and 212 s under limits of 1.9 and 2.1 ms. When no passing draw is within the
budget, the inner sampler's first goes on, as without a preference.

"Likely under the limit" is the prediction corrected by the study's own
measurements: the per-part predictor errs by block type (on a 2-core AMD EPYC,
40 nets timed whole: basic-block nets 1.12x slower than predicted, bottleneck
nets 0.87x), so the largest draw predicted just under the limit was often over
it. Preferring it as predicted made 58% of one seed's trials infeasible,
against 65% for random draws; the correction is the median ratio of measured
to predicted latency over the study's trials of the block type whose whole
net was timed carefully (all block types while it has fewer than
``CALIBRATE_AFTER``; a reading scaled for a slow spell of the host counts, as
scaled). Nets a tenth of a second of timing put far over the limit are left
out: that rough figure is not stored, and the median needs no outliers.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Callable
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from reszoo.errors import InputError, MeasurementError
from reszoo.search.space import SearchSpace
from reszoo.zoo.counting import count
from reszoo.zoo.spec import ArchSpec

#: Where a trial records how many draws the screen dropped before it (a system attribute).
SCREENED_KEY = "reszoo:screened_draws"

#: Where a trial records how many draws of nets already in the study were dropped before it.
REPEATED_KEY = "reszoo:repeated_draws"

#: A draw passes when predicted at most this many times the limit. The CPU
#: predictor errs by about 10% at the median (GPU: 14%), so 1.2x lets through
#: nearly every net that would measure under the limit while dropping the
#: many that are far over it.
SCREEN_MARGIN = 1.2

#: Draws asked of the inner sampler per trial before the screen turns to
#: uniform draws of the space (TPE, once it has settled, proposes much the same
#: net again and again; a tight limit may leave few of its proposals under it).
SCREEN_TRIES = 20

#: Passing draws among which ``prefer`` chooses. In a first simulation of the
#: default search (without the correction below), TPE won 23 of 30 seeds over
#: random draws with 5 and 24 with 8, whose larger draws put fewer trials under
#: the limit (56% against 61%); benchmarks/search_sim.py has the shipped figures.
PREFER_AMONG = 5

#: The preference ranks only draws of at most this many times the MACs of the
#: largest net the study started from. At resnet20's limit on the AMD EPYC the
#: best nets TPE found with the preference were 1.21x resnet20's MACs (12-layer,
#: 24-48-96 wide); under loose limits it picked 2.6-5x. 43% of the default
#: Fashion-MNIST space is within 1.5x (35% within 1x).
PREFER_MACS_RATIO = 1.5

#: Measured trials of a block type needed before its own correction is used.
CALIBRATE_AFTER = 3

#: Uniform draws tried after that; if none passes either, the draw predicted
#: fastest is handed on (and the objective measures it).
FALLBACK_TRIES = 200


class ScreenedSampler(optuna.samplers.BaseSampler):
    """``inner``'s draws, with those predicted over ``margin`` x ``limit_ms`` redrawn.

    Args:
        inner: The sampler that proposes (reszoo's constrained TPE, or random).
        space: The search space whose parameters the draws fill.
        predict: Predicted latency of a spec in ms (the objective's predictor,
            so parts measured here are not measured again there).
        limit_ms: The latency limit.
        prefer: The part of the score known before training (higher is
            better); of up to ``pick`` passing draws, the one it ranks highest
            among those likely under the limit goes on (of them all if none is),
            of those within ``macs_ratio`` times the MACs of the largest net the
            study started from (an enqueued trial's): a training-cost budget.
    """

    def __init__(self, inner: optuna.samplers.BaseSampler, space: SearchSpace, predict: Callable[[ArchSpec], float],
                 limit_ms: float, margin: float = SCREEN_MARGIN, tries: int = SCREEN_TRIES,
                 seed: int | None = None, prefer: Callable[[ArchSpec], float] | None = None,
                 pick: int = PREFER_AMONG, macs_ratio: float = PREFER_MACS_RATIO) -> None:
        self.inner, self.space, self.predict = inner, space, predict
        self.limit_ms, self.margin, self.tries = limit_ms, margin, tries
        self.prefer, self.pick = prefer, pick if prefer is not None else 1
        self.macs_ratio = macs_ratio
        self._max_macs: float | None = None  # the preference's budget, once the study's start is known
        self._budget_known = False
        self._rng = random.Random(seed)
        self._distributions = space.distributions()
        self._inner_space: dict[str, BaseDistribution] = {}
        self._digests: dict[int, str] = {}  # finished trial number -> its net's digest
        self._errors: dict[int, tuple[str, float]] = {}  # measured trial number -> (block, measured / predicted)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        # The screen needs whole draws, so every parameter is sampled "relatively" here;
        # the inner sampler's own joint space is kept for asking it.
        self._inner_space = self.inner.infer_relative_search_space(study, trial)
        return dict(self._distributions)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if trial.system_attrs.get("fixed_params") or not search_space:
            return {}  # an enqueued net (a reference preset) is tried as given
        fastest: tuple[float, dict[str, Any]] | None = None
        dropped = repeated = 0
        tried = self._tried(study, trial)
        # digest -> (spec, params, predicted ms or None): the draws prefer chooses among
        passing: dict[str, tuple[ArchSpec, dict[str, Any], float | None]] = {}
        draws = itertools.chain((self._draw(study, trial, search_space) for _ in range(self.tries)),
                                (self._uniform(search_space) for _ in range(FALLBACK_TRIES)))
        for index, params in enumerate(draws):
            if passing and index >= self.tries:
                break  # the inner sampler's passing draws are chosen from, never mixed with uniform ones
            spec = self.space.from_params(params)
            if spec.digest in tried:
                repeated += 1
                continue
            if spec.digest in passing:
                continue
            try:
                predicted = self.predict(spec)
            except MeasurementError:
                passing[spec.digest] = (spec, params, None)
                break  # a part that cannot be timed: let the objective measure the whole net
            if predicted <= self.margin * self.limit_ms:
                passing[spec.digest] = (spec, params, predicted)
                if len(passing) >= self.pick:
                    break
                continue
            if fastest is None or predicted < fastest[0]:
                fastest = (predicted, params)
            dropped += 1
        if passing:
            candidates = list(passing.values())  # in the order drawn
            if self.prefer is not None:
                correct, budget = self._corrections(study), self._budget(study)
                affordable = [draw for draw in candidates if budget is None or count(draw[0]).macs <= budget]
                likely = [(spec, params, ms) for spec, params, ms in affordable
                          if ms is not None and ms * correct.get(spec.block, correct[""]) <= self.limit_ms]
                if affordable:  # else the first passing draw goes on: the preference never pushes past the budget
                    candidates = [max(likely or affordable, key=lambda draw: self.prefer(draw[0]))]
            params = candidates[0][1]
        elif fastest is not None:
            params, dropped = fastest[1], dropped - 1  # the fastest dropped draw goes on after all
        else:  # every draw repeated a net already tried: the space is (nearly) exhausted
            return {}
        # Optuna has no public call to annotate a trial from its sampler; the storage API does it.
        study._storage.set_trial_system_attr(trial._trial_id, SCREENED_KEY, dropped)
        study._storage.set_trial_system_attr(trial._trial_id, REPEATED_KEY, repeated)
        return params

    def _tried(self, study: optuna.Study, current: FrozenTrial) -> set[str]:
        """Digests of the nets the study's other trials hold (another worker's running trial included)."""
        running: set[str] = set()
        for t in study.get_trials(deepcopy=False):
            if t.number == current.number or t.number in self._digests or t.state == TrialState.FAIL:
                continue  # a failed net may be drawn again (its run may have been interrupted)
            params = t.system_attrs.get("fixed_params") or t.params  # a queued reference holds fixed params
            try:
                digest = t.user_attrs.get("digest") or self.space.from_params(params).digest
            except KeyError:  # a trial between its first and last suggest: its net is not known yet
                continue
            if t.state.is_finished():
                self._digests[t.number] = digest
            else:
                running.add(digest)
        return running | set(self._digests.values())

    def _budget(self, study: optuna.Study) -> float | None:
        """``macs_ratio`` x the MACs of the largest net the study was started from (its trials enqueued
        with fixed parameters: the reference presets); None (no budget) when it was started from none.
        Known from the first draw on: the start is enqueued before any trial is sampled."""
        if not self._budget_known:
            start = [t.system_attrs["fixed_params"] for t in study.get_trials(deepcopy=False)
                     if t.system_attrs.get("fixed_params")]
            macs = []
            for params in start:
                try:
                    macs.append(count(self.space.from_params(params)).macs)
                except (KeyError, InputError):  # enqueued by hand, parameters of another space: not a start it knows
                    continue
            self._max_macs = self.macs_ratio * max(macs) if macs else None
            self._budget_known = True
        return self._max_macs

    def _corrections(self, study: optuna.Study) -> dict[str, float]:
        """Median measured / predicted latency per block type with ``CALIBRATE_AFTER`` or more
        measurements ("": over every block type, 1 until then), from the study's trials whose
        whole net was timed."""
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            attrs = t.user_attrs
            if (t.number in self._errors or attrs.get("latency_source") not in ("measured", "relative")
                    or "spec" not in attrs):
                continue
            spec = ArchSpec.from_dict(attrs["spec"])
            try:
                self._errors[t.number] = (spec.block, attrs["latency_ms"] / self.predict(spec))
            except MeasurementError:
                self._errors[t.number] = (spec.block, float("nan"))
        ratios: dict[str, list[float]] = {"": []}
        for block, ratio in self._errors.values():
            if ratio == ratio:  # not NaN
                ratios[""].append(ratio)
                ratios.setdefault(block, []).append(ratio)
        found = {block: statistics.median(r) for block, r in ratios.items() if len(r) >= CALIBRATE_AFTER}
        return {"": found.get("", 1.0), **found}

    def _draw(self, study: optuna.Study, trial: FrozenTrial,
              search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """One whole draw of the inner sampler: its joint (relative) part, the rest one by one."""
        params = dict(self.inner.sample_relative(study, trial, self._inner_space))
        for name, distribution in search_space.items():
            if name not in params:
                params[name] = self.inner.sample_independent(study, trial, name, distribution)
        return params

    def _uniform(self, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """One draw uniform along every axis of the space (every family's shortcut included)."""
        return {name: self._rng.choice(d.choices) if isinstance(d, CategoricalDistribution)
                else self._rng.randint(d.low, d.high) for name, d in search_space.items()}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Any) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
        self._rng.seed()

