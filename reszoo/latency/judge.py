"""The latency judge: is this net under the limit, and how do we know?

One object answers for the search, from the cheapest source that settles it:

1. **predicted**: the per-part predictor puts the net far over the limit; it
   is never built.
2. **measured** (stored): a steady row for this net and device in the registry.
3. **rough**: one short timing puts it far over the limit, and the predictor
   does not disagree (nor, for a limit taken from a reference, the reference
   timed as roughly beside it: a slow spell scales both).
4. **measured**: a careful measurement, stored in the registry.
5. **relative**: a net measured over a limit taken from a reference net is
   judged against the reference timed again beside it; when the host has
   slowed since the limit was taken, the net's reading is scaled by
   limit / reference-now.

A net about to be published is judged again by :meth:`LatencyJudge.confirm`
(source **confirmed**), once the search's workers are done: the search's
verdicts are taken beside training processes and the scaled ones can be far off.

It also refuses a limit no net of a space can meet, and takes the limit from
a reference net. Every margin it applies lives in :class:`JudgePolicy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from reszoo.errors import SearchError
from reszoo.latency import measure as clock  # the judge reads the clock through it alone
from reszoo.latency.measure import LatencySetup
from reszoo.latency.predictor import LatencyPredictor
from reszoo.latency.quiet import QuietLock
from reszoo.zoo.records import LatencyRecord
from reszoo.zoo.registry import Registry
from reszoo.zoo.spec import ArchSpec

#: Where a verdict's figure came from (see the module's docstring).
SOURCES = ("predicted", "rough", "measured", "relative", "confirmed")


@dataclass(frozen=True)
class JudgePolicy:
    """The judge's margins, each a multiple of the limit, with the reason it has the value it has."""

    #: Predicted over this: rejected unmeasured. The predictor errs by about 10% at the
    #: median on a CPU (14% on a GPU): 1.5x never rejects a net that would meet the limit.
    predict_margin: float = 1.5
    #: The sampler's screen redraws a draw predicted over this: 1.2x lets through nearly
    #: every net that would measure under the limit and drops the many far over it.
    screen_margin: float = 1.2
    #: A rough timing (one copy, a tenth of a second) over this is final. Two copies of
    #: one net differ by up to 25% on a CPU, so a rough reading under 1.3x proves nothing.
    rough_margin: float = 1.3
    #: The reference timed again over this means the host has slowed since the limit was
    #: taken. Two quiet readings of one net differ by up to 25%: under 1.25x is noise, and
    #: a lower threshold would loosen the limit.
    slower_host: float = 1.25
    #: The reachability check times a candidate carefully only when a rough round puts it
    #: under this: a net twice over the limit needs no careful figure to say no.
    reachable_rough: float = 2.0
    #: Candidates (the space's fastest, fewest layers first) the reachability check times.
    reachable_candidates: int = 3
    #: Readings of a net and of its reference, interleaved, before publication; the quickest
    #: of each kept. Interleaved so that a slow spell slows both, as the limit's timing does.
    confirm_rounds: int = 3


DEFAULT_POLICY = JudgePolicy()


@dataclass(frozen=True)
class LatencyTarget(LatencySetup):
    """Where and how latency is measured (a :class:`LatencySetup`), and the limit.

    Args:
        max_ms: The limit (median latency); ``None``: no limit (Pareto mode only).
        predict: Ask the per-part predictor first (and let the sampler screen by it).
        limit_from: The net whose measured latency is the limit (a reference preset, when
            no limit is given): it meets the limit by definition and is not timed again.
    """

    max_ms: float | None = None
    predict: bool = True
    limit_from: ArchSpec | None = None

    @property
    def setup(self) -> LatencySetup:
        """The five values a latency row is stored under, without the limit."""
        return LatencySetup(self.device, self.batch_size, self.dtype, self.runtime, self.threads)


@dataclass(frozen=True)
class Verdict:
    """A net's latency, where the figure came from (one of :data:`SOURCES`) and the limit it was judged by."""

    ms: float
    source: str
    limit_ms: float | None

    @property
    def feasible(self) -> bool:
        return self.limit_ms is None or self.ms <= self.limit_ms

    @property
    def over_ms(self) -> float:
        """How far over the limit (<= 0: under it): Optuna's constraint value."""
        return 0.0 if self.limit_ms is None else self.ms - self.limit_ms


@dataclass
class LatencyJudge:
    """Judges nets against ``target``'s limit, caching rows in ``registry``.

    The four ``*_ms`` methods and :meth:`reference_limit` are its only contact
    with the clock and the predictor: a test fakes the judge by overriding them.

    Args:
        quiet: Shared with the other workers of this machine: every timing waits
            until no training step runs (see reszoo.latency.quiet).
    """

    target: LatencyTarget
    registry: Registry
    policy: JudgePolicy = DEFAULT_POLICY
    quiet: QuietLock | None = None
    _predictor: LatencyPredictor | None = field(default=None, init=False, repr=False)

    @property
    def limit_ms(self) -> float | None:
        return self.target.max_ms

    # ------------------------------------------------------------ verdicts

    def judge(self, spec: ArchSpec, *, careful: bool = False) -> Verdict:
        """``spec``'s verdict; ``careful`` skips the predictor and the rough timing (a figure to report)."""
        limit, target = self.limit_ms, self.target
        reference = target.limit_from if limit is not None else None
        # ``limit`` is set wherever ``reference`` is; each test below says so for the type checker.
        if reference is not None and limit is not None and spec.digest == reference.digest:
            return Verdict(limit, "measured", limit)  # the limit is its reading
        predicted = None
        if target.predict and limit is not None and not careful:
            predicted = self.predicted_ms(spec)
            if predicted > self.policy.predict_margin * limit:
                return Verdict(predicted, "predicted", limit)
        stored = self.stored_row(spec)
        recheck = False
        if stored is not None and not stored.noisy:
            if reference is None or limit is None or stored.median_ms <= limit:
                return Verdict(stored.median_ms, "measured", limit)
            recheck = True  # over a reference's limit, perhaps read in a slow spell: read again beside it
        with self.measuring():
            if limit is not None and not careful and not recheck:
                rough = self.rough_ms(spec)
                # Believed only when the predictor does not put the net under the limit and, where
                # the limit came from a reference, the reference timed as roughly does not read
                # slower than it did: a tenth of a second can land in a slow spell of a shared host.
                if rough > self.policy.rough_margin * limit and (predicted is None or predicted > limit):
                    if reference is not None:  # scaled only down: it sends a net to be timed, never passes one
                        rough = rough * limit / max(limit, self.rough_ms(reference))
                    if rough > self.policy.rough_margin * limit:
                        return Verdict(rough, "rough", limit)
            ms = self.measured_ms(spec, remeasure=recheck)
            if reference is not None and limit is not None and ms > limit:
                now = self.fresh_ms(reference)
                if now > self.policy.slower_host * limit:
                    return Verdict(ms * limit / now, "relative", limit)
        return Verdict(ms, "measured", limit)

    def confirm(self, spec: ArchSpec) -> Verdict:
        """The verdict a net is published under: timed now (the quickest of
        ``policy.confirm_rounds`` careful readings) and, when the limit came from a reference,
        held to that reference timed the same way beside it, in the same run. Never a stored,
        rough, predicted or scaled figure: call it when nothing trains on the machine."""
        limit, reference = self.limit_ms, self.target.limit_from
        if limit is None or reference is None:
            reference = None  # a limit given as a number: the net is held to the number
        elif spec.digest == reference.digest:
            return Verdict(limit, "confirmed", limit)  # the reference meets its own limit
        readings: list[float] = []
        beside: list[float] = []
        with self.measuring():
            for _ in range(self.policy.confirm_rounds):
                if reference is not None:
                    beside.append(self.fresh_ms(reference))
                readings.append(self.fresh_ms(spec))
        return Verdict(min(readings), "confirmed", min(beside) if beside else limit)

    def check_reachable(self, candidates: Sequence[ArchSpec]) -> None:
        """Refuse at once a limit none of ``candidates`` (a space's fastest nets, fewest
        layers first) can meet, before anything is trained."""
        limit = self.limit_ms
        if limit is None or not candidates:
            return
        rough = sorted(
            (self.rough_ms(spec), index, spec)
            for index, spec in enumerate(candidates[: self.policy.reachable_candidates])
        )
        ms, _, spec = rough[0]
        for rough_ms, _, candidate in rough:  # each one a rough round puts near the limit, timed carefully
            if rough_ms > self.policy.reachable_rough * limit:
                break
            careful = self.judge(candidate, careful=True).ms
            if careful <= limit:
                return
            ms, spec = min((ms, spec), (careful, candidate), key=lambda pair: pair[0])
        target = self.target
        raise SearchError(
            f"no net of this space can meet the limit: its fastest, {spec.summary()}, takes {ms:.3g} ms on "
            f"{target.device} (batch {target.batch_size}, {target.runtime}), over the limit of {limit:.3g} ms. "
            "Raise --max-latency-ms, or allow smaller nets (--depth, --widths)"
        )

    # -------------------------------------------- the clock and the predictor

    def predicted_ms(self, spec: ArchSpec) -> float:
        """The per-part predictor's figure (its parts are timed alone on the machine, once)."""
        if self._predictor is None:
            self._predictor = LatencyPredictor(self.registry, self.target.setup)
        return self._predictor.predict(spec, measuring=self.measuring)

    def rough_ms(self, spec: ArchSpec) -> float:
        """One copy, one short round (a tenth of a second); never stored."""
        return clock.measure(spec, self.target.setup, timing=clock.ROUGH_TIMING).median_ms

    def measured_ms(self, spec: ArchSpec, *, remeasure: bool = False) -> float:
        """A careful measurement, read from the registry or taken and stored there."""
        return clock.latency(spec, self.target.setup, registry=self.registry, remeasure=remeasure).median_ms

    def fresh_ms(self, spec: ArchSpec) -> float:
        """A careful measurement taken now, not stored (the reference beside a net)."""
        return clock.measure(spec, self.target.setup).median_ms

    def stored_row(self, spec: ArchSpec) -> LatencyRecord | None:
        setup = self.target.setup
        return self.registry.latency_row(spec.digest, setup.label(), setup.batch_size, setup.dtype, setup.runtime)

    @classmethod
    def reference_limit(cls, reference: ArchSpec, setup: LatencySetup, registry: Registry) -> LatencyRecord:
        """The limit a reference net sets: measured now with the limit's timing (about 4 s on a
        CPU), the quicker of that and the stored row kept (reszoo.latency.measure.quickest_latency)."""
        return clock.quickest_latency(reference, setup, registry=registry)

    # ------------------------------------------------------------ the quiet

    def measuring(self) -> AbstractContextManager[None]:
        """Hold this machine's training steps while timing."""
        return self.quiet.measuring() if self.quiet is not None else nullcontext()

    def training_step(self) -> AbstractContextManager[None]:
        """One training step: never runs while this machine times a net."""
        return self.quiet.step() if self.quiet is not None else nullcontext()
