"""Latency predicted from parts: a per-block lookup table, as FBNet and
Once-for-All keep one and nn-Meter predicts from kernels.

A net is cut into parts, each timed alone on the target device: the stem, each
distinct block (family, block type, kind of shortcut module, channels in and
out, stride, input size) and the head. A prediction is the sum over the net's
parts. Parts are measured on first need and stored in the registry, so a
table fills as a search explores and is shared by everyone using the registry.
"""

from __future__ import annotations

import functools
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from torch import nn

from reszoo.devices import device_label, resolve_device
from reszoo.errors import DeviceError
from reszoo.latency.measure import LatencySetup, _setup, library_versions, measure_module
from reszoo.latency.timing import Timing, cpu_threads
from reszoo.zoo.blocks import ZeroPadShortcut, shortcut_module
from reszoo.zoo.network import make_block, make_head, make_stem, stage_plans
from reszoo.zoo.registry import Registry
from reszoo.zoo.spec import ArchSpec

#: Parts are small: the same method as a whole net, shorter rounds, one copy
#: each (a table has hundreds of parts; three copies would triple its cost).
PART_TIMING = Timing(warmup_s=0.03, rounds=3, min_samples=20, min_time_s=0.05, instances=1)


@dataclass(frozen=True)
class Part:
    key: str
    make: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]  # channels, height, width


def _shortcut_kind(spec: ArchSpec, in_channels: int, out_channels: int, stride: int) -> str:
    module = shortcut_module(spec.resolved_shortcut, in_channels, out_channels, stride)
    if spec.family == "plain":
        return "none"
    if module is None:
        return "identity"
    return "pad" if isinstance(module, ZeroPadShortcut) else "proj"


def parts(spec: ArchSpec) -> tuple[Counter[str], dict[str, Part]]:
    """How many times each part occurs in ``spec``, and how to build each."""
    counts: Counter[str] = Counter()
    found: dict[str, Part] = {}

    def add(part: Part) -> None:
        counts[part.key] += 1
        found.setdefault(part.key, part)

    size = spec.resolved_input_size
    add(
        Part(
            f"stem/{spec.stem}/{spec.in_chans}>{spec.stem_width}/{size}",
            lambda: make_stem(spec),
            (spec.in_chans, size, size),
        )
    )
    for plans in stage_plans(spec):
        for plan in plans:
            kind = _shortcut_kind(spec, plan.in_channels, plan.out_channels, plan.stride)
            key = (
                f"block/{spec.family}-{spec.block}-{kind}/{plan.in_channels}>{plan.out_channels}"
                f"/s{plan.stride}/{plan.input_size}"
            )
            add(
                Part(
                    key, functools.partial(make_block, spec, plan), (plan.in_channels, plan.input_size, plan.input_size)
                )
            )
    last = spec.stage_output_sizes()[-1]
    add(
        Part(
            f"head/{spec.feature_dim}>{spec.num_classes}/{last}",
            lambda: nn.Sequential(*make_head(spec)),
            (spec.feature_dim, last, last),
        )
    )
    return counts, found


class LatencyPredictor:
    """Predicts a spec's latency on one device, runtime, batch size and dtype.

    Args:
        registry: Where the lookup table is read from and stored.
        setup: Where and how (a :class:`LatencySetup`, or its fields as keywords).
            Its device is ``cpu``/``cuda[:i]`` (parts can then be measured here),
            or the stored name of another device (prediction from its table only).
    """

    def __init__(
        self, registry: Registry, setup: LatencySetup | None = None, *, timing: Timing = PART_TIMING, **fields: Any
    ) -> None:
        setup = _setup(setup, fields)
        self.registry = registry
        device, runtime, batch_size, dtype, threads = (
            setup.device,
            setup.runtime,
            setup.batch_size,
            setup.dtype,
            setup.threads,
        )
        self.runtime, self.batch_size, self.dtype, self.threads, self.timing = (
            runtime,
            batch_size,
            dtype,
            threads,
            timing,
        )
        try:
            self.device = str(resolve_device(device))
            with cpu_threads(threads):
                self.label = device_label(device)
            self.local = True
        except DeviceError:
            self.device, self.label, self.local = device, device, False
        self.table = registry.part_latencies(self.label, runtime, batch_size, dtype)

    def refresh(self) -> None:
        """Read the table again: other processes sharing the registry add parts."""
        self.table.update(self.registry.part_latencies(self.label, self.runtime, self.batch_size, self.dtype))

    def missing(self, specs: Iterable[ArchSpec]) -> dict[str, Part]:
        return {key: part for key, part in _distinct_parts(specs).items() if key not in self.table}

    def fill(
        self, specs: Iterable[ArchSpec], progress: Callable[[int, int], None] | None = None, *, remeasure: bool = False
    ) -> int:
        """Measure and store every part of ``specs`` not in the table yet (``remeasure``: every
        part, replacing its row: a part timed in a slow spell of the host, or beside training,
        stays in the table until then); returns how many."""
        return self._measure(_distinct_parts(specs) if remeasure else self.missing(specs), progress)

    def _measure(self, needed: dict[str, Part], progress: Callable[[int, int], None] | None = None) -> int:
        if not needed:
            return 0
        if not self.local:
            raise DeviceError(
                f"the latency table for {self.label!r} lacks {len(needed)} parts and that device is not here to "
                "time them; build the table on it (reszoo bench --build-table)"
            )
        measured: dict[str, tuple[float, int]] = {}
        with cpu_threads(self.threads):
            for done, (key, part) in enumerate(needed.items(), 1):
                result = measure_module(
                    part.make,
                    (self.batch_size, *part.input_shape),
                    device=self.device,
                    dtype=self.dtype,
                    runtime=self.runtime,
                    timing=self.timing,
                    key=key,
                )
                measured[key] = (result.median_ms, result.samples)
                if progress is not None:
                    progress(done, len(needed))
        self.registry.add_part_latencies(
            self.label, self.runtime, self.batch_size, self.dtype, measured, library_versions()
        )
        self.table.update({key: median for key, (median, _) in measured.items()})
        return len(measured)

    def predict(self, spec: ArchSpec, measuring: Callable[[], AbstractContextManager[None]] = nullcontext) -> float:
        """Predicted median latency in ms: the sum of the net's parts, measuring missing ones first.

        ``measuring``: the context missing parts are timed in (a search's quiet lock); the
        table is read again inside it, since another process may have timed them meanwhile.
        """
        counts, found = parts(spec)
        if any(key not in self.table for key in counts):
            with measuring():
                self.refresh()
                self._measure({key: part for key, part in found.items() if key not in self.table})
        return sum(self.table[key] * n for key, n in counts.items())


def _distinct_parts(specs: Iterable[ArchSpec]) -> dict[str, Part]:
    """Every distinct part of ``specs``, by key."""
    found: dict[str, Part] = {}
    for spec in specs:
        for key, part in parts(spec)[1].items():
            found.setdefault(key, part)
    return found


@dataclass(frozen=True)
class PredictionCheck:
    spec: ArchSpec
    predicted_ms: float
    measured_ms: float

    @property
    def error(self) -> float:
        """Relative error of the prediction: +0.1 means 10% above the measurement."""
        return self.predicted_ms / self.measured_ms - 1


def _ranks(values: list[float]) -> list[int]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0] * len(values)
    for rank, index in enumerate(order):
        ranks[index] = rank
    return ranks


def summarize(checks: list[PredictionCheck]) -> dict[str, float]:
    """Error distribution, and Spearman's rank correlation: a search needs the
    predictor to order candidates right even where its figures are off."""
    errors = sorted(abs(c.error) for c in checks)
    n = len(checks)
    predicted, measured = _ranks([c.predicted_ms for c in checks]), _ranks([c.measured_ms for c in checks])
    spearman = 1 - 6 * sum((p - m) ** 2 for p, m in zip(predicted, measured)) / (n * (n * n - 1)) if n > 1 else 1.0
    return {
        "specs": len(checks),
        "within_10pct": sum(e <= 0.10 for e in errors) / len(errors),
        "within_20pct": sum(e <= 0.20 for e in errors) / len(errors),
        "median_abs_error": statistics.median(errors),
        "max_abs_error": errors[-1],
        "mean_error": statistics.fmean(c.error for c in checks),
        "spearman": spearman,
    }
