"""Samplers that hand on whole draws of the space, each wrapping another and doing one job.

Optuna's samplers fill a trial's parameters as the objective asks for them;
the wrappers here need a whole net before any trial holds it, so each asks
the sampler inside it for whole draws and hands one on:

- :class:`DistinctSampler` drops draws of nets the study already holds (the
  proxy is seeded: training one again gives the same score and costs a trial);
- :class:`TrainingBudget` drops draws over a MACs budget set by the nets the
  study started from (the proxy's training cost grows with the MACs);
- :class:`LatencyScreen` drops draws the latency judge predicts far over the limit;
- :class:`~reszoo.search.preference.SizePreference` hands on, of a few passing
  draws, the one the score's known part ranks highest.

They compose as Optuna's wrapper samplers do:
``SizePreference(LatencyScreen(TrainingBudget(DistinctSampler(TPESampler(...)))))``. The
innermost asks the Optuna sampler ``tries`` times, then draws the space
uniformly (TPE, once settled, proposes much the same net again; under a tight
limit few of its proposals pass). A draw that passes is still judged by the
objective: the measurement, not the prediction, decides feasibility, so the
wrappers change which nets are tried, never what is reported.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from reszoo.errors import InputError, MeasurementError
from reszoo.search import keys
from reszoo.search.space import SearchSpace
from reszoo.zoo.counting import count
from reszoo.zoo.spec import ArchSpec

if TYPE_CHECKING:
    from reszoo.latency.judge import LatencyJudge

#: Whole draws asked of the Optuna sampler per trial before uniform draws of the space.
MODEL_TRIES = 20

#: Uniform draws after those; if none passes the screen either, the draw predicted
#: fastest is handed on (and the objective measures it).
FALLBACK_TRIES = 200

#: In a stream of draws: the Optuna sampler's draws are used up, uniform draws follow.
MODEL_DONE = None


def whole_study(study: optuna.Study) -> optuna.Study:
    """The study a sampler is handed, whole. Under Hyperband, Optuna hands samplers a view
    holding only the trials of the trial's bracket (so that TPE models each bracket apart),
    with the study itself as ``_study``; which nets the study holds, the nets it started from
    and its timings are the whole study's, or a net trained in one bracket is trained again
    in another."""
    return getattr(study, "_study", study)


def limit_of(judge: LatencyJudge) -> float:
    """The judge's latency limit: the screen and the size preference run only under one
    (``study.sampler_for``), so a judge without one is a bug in the caller."""
    limit = judge.limit_ms
    if limit is None:
        raise AssertionError("the latency screen and the size preference need a judge with a latency limit")
    return limit


@dataclass(frozen=True)
class Draw:
    """One whole draw: Optuna parameters, the net they build, and its predicted latency once screened
    (``None``: not predicted, or a part of it could not be timed)."""

    params: dict[str, Any]
    spec: ArchSpec
    predicted_ms: float | None = None


class DrawSampler(optuna.samplers.BaseSampler):
    """Base of the wrappers: samples every parameter of ``space`` at once ("relatively").

    Contract: :meth:`draws` yields a trial's candidate draws lazily, best source
    first, with :data:`MODEL_DONE` once between the Optuna sampler's draws and
    the uniform ones; a wrapper filters or reorders its inner sampler's stream.
    :meth:`record` is called once the trial's draw is chosen and stores, as
    trial system attributes, what each wrapper counted. An enqueued trial (fixed
    parameters) is tried as given. Independent sampling, ``before_trial``,
    ``after_trial`` and reseeding go to the Optuna sampler inside.

    Args:
        inner: The Optuna sampler (TPE, random) or another DrawSampler.
        seed: Seed of the uniform draws (of the innermost DrawSampler).
    """

    def __init__(
        self,
        inner: optuna.samplers.BaseSampler,
        space: SearchSpace,
        *,
        seed: int | None = None,
        tries: int = MODEL_TRIES,
        fallback: int = FALLBACK_TRIES,
    ) -> None:
        self.inner, self.space = inner, space
        self.tries, self.fallback = tries, fallback
        self._rng = random.Random(seed)
        self._distributions = space.distributions()
        self._inner_space: dict[str, BaseDistribution] = {}

    def draws(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> Iterator[Draw | None]:
        if isinstance(self.inner, DrawSampler):
            yield from self.inner.draws(study, trial, search_space)
            return
        for _ in range(self.tries):
            params = self._model_draw(study, trial, search_space)
            yield Draw(params, self.space.from_params(params))
        yield MODEL_DONE
        for _ in range(self.fallback):
            params = self._uniform(search_space)
            yield Draw(params, self.space.from_params(params))

    def record(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if isinstance(self.inner, DrawSampler):
            self.inner.record(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if isinstance(self.inner, DrawSampler):
            return self.inner.infer_relative_search_space(study, trial)
        # The Optuna sampler's own joint space is kept for asking it.
        self._inner_space = self.inner.infer_relative_search_space(study, trial)
        return dict(self._distributions)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if trial.system_attrs.get(keys.FIXED_PARAMS) or not search_space:
            return {}  # an enqueued net (a reference preset) is tried as given
        chosen = next((d for d in self.draws(study, trial, search_space) if d is not MODEL_DONE), None)
        self.record(study, trial)
        return chosen.params if chosen is not None else {}  # none: the space is (nearly) exhausted

    def _note(self, study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
        # Optuna has no public call to annotate a trial from its sampler; the storage API does it.
        study._storage.set_trial_system_attr(trial._trial_id, key, value)

    def _model_draw(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """One whole draw of the Optuna sampler: its joint (relative) part, the rest one by one."""
        params = dict(self.inner.sample_relative(study, trial, self._inner_space))
        for name, distribution in search_space.items():
            if name not in params:
                params[name] = self.inner.sample_independent(study, trial, name, distribution)
        return params

    def _uniform(self, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """One draw uniform along every axis of the space (every family's shortcut included)."""
        return {name: self._uniform_value(d) for name, d in search_space.items()}

    def _uniform_value(self, d: BaseDistribution) -> Any:
        if isinstance(d, CategoricalDistribution):
            return self._rng.choice(d.choices)
        if isinstance(d, IntDistribution):
            return self._rng.randint(d.low, d.high)
        raise TypeError(f"the search space has categorical and integer axes only, not {d!r}")

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
        self._rng.seed()


class DistinctSampler(DrawSampler):
    """Drops draws of nets the study holds (finished, running in another worker, or queued);
    a failed net may be drawn again (its run may have been interrupted). Records the drops
    under :data:`keys.REPEATED`."""

    def __init__(self, inner: optuna.samplers.BaseSampler, space: SearchSpace, **options: Any) -> None:
        super().__init__(inner, space, **options)
        self._digests: dict[int, str] = {}  # finished trial number -> its net's digest
        self._repeated = 0

    def draws(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> Iterator[Draw | None]:
        self._repeated = 0
        tried = self._tried(study, trial)
        for draw in super().draws(study, trial, search_space):
            if draw is not MODEL_DONE and draw.spec.digest in tried:
                self._repeated += 1
                continue
            yield draw

    def record(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._note(study, trial, keys.REPEATED, self._repeated)
        super().record(study, trial)

    def _tried(self, study: optuna.Study, current: FrozenTrial) -> set[str]:
        running: set[str] = set()
        for t in whole_study(study).get_trials(deepcopy=False):
            if t.number == current.number or t.number in self._digests or t.state == TrialState.FAIL:
                continue
            params = t.system_attrs.get(keys.FIXED_PARAMS) or t.params  # a queued reference holds fixed params
            try:
                digest = t.user_attrs.get(keys.DIGEST) or self.space.from_params(params).digest
            except KeyError:  # a trial between its first and last suggest: its net is not known yet
                continue
            if t.state.is_finished():
                self._digests[t.number] = digest
            else:
                running.add(digest)
        return running | set(self._digests.values())


class TrainingBudget(DrawSampler):
    """Drops draws of more than ``ratio`` times the MACs of the largest net the study started
    from (the reference presets, enqueued with fixed parameters); when every draw is dropped,
    hands on the one with the fewest MACs. A study started from none has no budget. Records
    the budget and the drops under :data:`keys.MACS_BUDGET` and :data:`keys.OVER_BUDGET`.

    Why: the proxy's training time grows with a net's MACs, its batch-1 latency much less so.
    Under a loose limit the widest, shallowest nets pass the latency screen (cheap at batch 1
    on a CPU) and one such trial can cost the proxy training of several.
    """

    def __init__(self, inner: DrawSampler, ratio: float) -> None:
        super().__init__(inner, inner.space)
        self.ratio = ratio
        self._max_macs: float | None = None
        self._budget_known = False
        self._over = 0

    def draws(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> Iterator[Draw | None]:
        self._over = 0
        budget = self.budget(study)
        passed, cheapest, cheapest_macs = False, None, math.inf
        for draw in super().draws(study, trial, search_space):
            if draw is MODEL_DONE or budget is None:
                yield draw
                continue
            macs = count(draw.spec).macs
            if macs <= budget:
                passed = True
                yield draw
                continue
            self._over += 1
            if macs < cheapest_macs:
                cheapest, cheapest_macs = draw, macs
        if not passed and cheapest is not None:
            self._over -= 1  # handed on after all
            yield cheapest

    def record(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # The budget beside the drops: a trial over it can be told from a study started without one.
        self._note(study, trial, keys.MACS_BUDGET, self._max_macs)
        self._note(study, trial, keys.OVER_BUDGET, self._over)
        super().record(study, trial)

    def budget(self, study: optuna.Study) -> float | None:
        """``ratio`` x the MACs of the largest net the study was started from; None (no budget)
        when it was started from none. Known from the first draw on: the start is enqueued first."""
        if not self._budget_known:
            macs: list[int] = []
            for t in whole_study(study).get_trials(deepcopy=False):
                params: Any = t.system_attrs.get(keys.FIXED_PARAMS)
                if not params:
                    continue
                try:
                    macs.append(count(self.space.from_params(params)).macs)
                except (KeyError, InputError):  # enqueued by hand, parameters of another space: not a start it knows
                    continue
            self._max_macs = self.ratio * max(macs) if macs else None
            self._budget_known = True
        return self._max_macs


class LatencyScreen(DrawSampler):
    """Drops draws the judge predicts over its policy's ``screen_margin`` x the limit; when
    every draw is dropped, hands on the one predicted fastest. Records the drops under
    :data:`keys.SCREENED`. Each passing draw carries its prediction."""

    def __init__(self, inner: DrawSampler, judge: LatencyJudge) -> None:
        super().__init__(inner, inner.space)
        self.judge = judge
        self._dropped = 0

    def draws(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> Iterator[Draw | None]:
        self._dropped = 0
        passed, fastest, fastest_ms = False, None, math.inf
        bound = self.judge.policy.screen_margin * limit_of(self.judge)
        for draw in super().draws(study, trial, search_space):
            if draw is MODEL_DONE:
                yield draw
                continue
            try:
                predicted = self.judge.predicted_ms(draw.spec)
            except MeasurementError:  # a part that cannot be timed: the objective measures the whole net
                passed = True
                yield draw
                continue
            if predicted <= bound:
                passed = True
                yield dataclasses.replace(draw, predicted_ms=predicted)
                continue
            if fastest is None or predicted < fastest_ms:
                fastest, fastest_ms = dataclasses.replace(draw, predicted_ms=predicted), predicted
            self._dropped += 1
        if not passed and fastest is not None:
            self._dropped -= 1  # handed on after all
            yield fastest

    def record(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._note(study, trial, keys.SCREENED, self._dropped)
        super().record(study, trial)
