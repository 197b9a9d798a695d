"""The size preference: of a few draws that pass the latency screen, hand on the one the
score's known part ranks highest.

The default score's size term (reszoo.search.proxy.known_part) is known before
any training, and TPE, modelling the score as a black box from two dozen
trials, learns little of it. So the preference asks its inner sampler (a
:class:`~reszoo.search.sampling.LatencyScreen`) for up to ``pick`` passing
draws and hands on the highest-ranked of those likely under the limit (when
none is, of them all: a draw over the limit costs one measurement, never a
training, and tells the study where the limit lies).

Draws over the study's training-cost budget never reach it: the
:class:`~reszoo.search.sampling.TrainingBudget` inside the screen drops them.

"Likely under the limit" is the prediction corrected by the study's own
measurements, per block type (the per-part predictor errs by block type): the
median measured / predicted latency of the study's carefully timed trials of
that type (of every type while it has fewer than ``CALIBRATE_AFTER``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from reszoo.errors import MeasurementError
from reszoo.search import keys
from reszoo.search.sampling import MODEL_DONE, Draw, DrawSampler, limit_of, whole_study
from reszoo.zoo.spec import ArchSpec

if TYPE_CHECKING:
    from reszoo.latency.judge import LatencyJudge

#: Passing draws the preference chooses among (benchmarks/search_sim.py compares counts).
PREFER_AMONG = 5

#: Carefully timed trials of a block type needed before its own correction is used.
CALIBRATE_AFTER = 3


class Calibration:
    """Median measured / predicted latency per block type, from a study's trials whose whole net
    was timed carefully (a reading scaled for a slow spell of the host counts, as scaled)."""

    def __init__(self, predict: Callable[[ArchSpec], float], after: int = CALIBRATE_AFTER) -> None:
        self.predict, self.after = predict, after
        self._ratios: dict[int, tuple[str, float]] = {}  # trial number -> (block, measured / predicted)

    def factors(self, study: optuna.Study) -> dict[str, float]:
        """Block type -> correction for the types with ``after`` or more measurements, and
        "" -> the one over every type (1 until then)."""
        for t in whole_study(study).get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            attrs = t.user_attrs
            # Rough and predicted figures are not careful ratios: the median needs no outliers.
            if (
                t.number in self._ratios
                or attrs.get(keys.LATENCY_SOURCE) not in ("measured", "relative")
                or keys.SPEC not in attrs
            ):
                continue
            spec = ArchSpec.from_dict(attrs[keys.SPEC])
            try:
                self._ratios[t.number] = (spec.block, attrs[keys.LATENCY_MS] / self.predict(spec))
            except MeasurementError:
                self._ratios[t.number] = (spec.block, float("nan"))
        ratios: dict[str, list[float]] = {"": []}
        for block, ratio in self._ratios.values():
            if ratio == ratio:  # not NaN
                ratios[""].append(ratio)
                ratios.setdefault(block, []).append(ratio)
        found = {block: statistics.median(r) for block, r in ratios.items() if len(r) >= self.after}
        return {"": found.get("", 1.0), **found}


class SizePreference(DrawSampler):
    """Of up to ``pick`` passing draws of ``inner`` (a LatencyScreen), hands on the one
    ``known_score`` ranks highest among those likely under the judge's limit (see the
    module's docstring).

    Args:
        known_score: The part of the score known before training (higher is better).
    """

    def __init__(
        self,
        inner: DrawSampler,
        judge: LatencyJudge,
        known_score: Callable[[ArchSpec], float],
        *,
        pick: int = PREFER_AMONG,
    ) -> None:
        super().__init__(inner, inner.space)
        self.judge, self.known_score = judge, known_score
        self.pick = pick
        self.calibration = Calibration(judge.predicted_ms)

    def draws(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> Iterator[Draw | None]:
        candidates: dict[str, Draw] = {}  # in the order drawn
        uniform = False  # past the Optuna sampler's draws: one uniform draw at most, never mixed with its own
        for draw in super().draws(study, trial, search_space):
            if draw is MODEL_DONE:
                if candidates:
                    break
                uniform = True
                continue
            if draw.spec.digest in candidates:
                continue
            candidates[draw.spec.digest] = draw
            if uniform or draw.predicted_ms is None or len(candidates) >= self.pick:
                break  # (no prediction: a part could not be timed, so nothing to rank by)
        if len(candidates) == 1:
            yield next(iter(candidates.values()))
        elif candidates:
            yield self._choose(study, list(candidates.values()))

    def _choose(self, study: optuna.Study, candidates: list[Draw]) -> Draw:
        correct, limit = self.calibration.factors(study), limit_of(self.judge)
        likely = [
            d
            for d in candidates
            if d.predicted_ms is not None and d.predicted_ms * correct.get(d.spec.block, correct[""]) <= limit
        ]
        return max(likely or candidates, key=lambda d: self.known_score(d.spec))
