"""Timing a callable: a warm-up, then rounds of samples (CUDA events on a GPU,
``perf_counter`` on a CPU), reported as the median and p90 of the quickest round;
and the CPU conditions a timing runs under (threads, denormals flushed).

How a net is built, copied and run for timing is reszoo.latency.measure's.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from reszoo.errors import InputError
from reszoo.zoo.records import NOISY_P90_RATIO


@dataclass(frozen=True)
class Timing:
    """How long to warm up and how many samples to take.

    Samples are taken in ``rounds``; the reported median is the lowest round
    median and the p90 that round's. A burst of load from another process
    then spoils one round, not the figure: on a shared 2-core machine this
    took repeat measurements from 15% apart to a few percent.
    """

    warmup_s: float = 0.1  # at least 3 calls either way
    rounds: int = 3
    #: Freshly built copies of the module to time, median kept. On a CPU two
    #: copies of one architecture can differ by 25% (where their tensors
    #: landed in memory), so a figure from one copy is not the architecture's.
    instances: int = 3
    min_samples: int = 15  # per round
    min_time_s: float = 0.1  # per round
    max_samples: int = 1000  # per round
    #: Whole measurements taken one after another; the quickest steady one is kept
    #: (a noisy one only when all are; see reszoo.latency.measure.LIMIT_TIMING).
    attempts: int = 1


DEFAULT_TIMING = Timing()


@dataclass(frozen=True)
class Measurement:
    median_ms: float
    p90_ms: float
    samples: int
    times_ms: tuple[float, ...]

    @property
    def noisy(self) -> bool:
        """Taken while the machine was busy, by the rule stored rows are flagged with (LatencyRecord.noisy)."""
        return self.p90_ms > NOISY_P90_RATIO * self.median_ms


def time_callable(run: Callable[[], Any], device: torch.device, timing: Timing = DEFAULT_TIMING) -> Measurement:
    """Median and p90 of ``run()`` after a warm-up, synchronised on a GPU (see :class:`Timing`)."""
    cuda = device.type == "cuda"
    start_warmup = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - start_warmup < timing.warmup_s:
        run()
        calls += 1
    if cuda:
        torch.cuda.synchronize(device)
    rounds = [_sample_round(run, cuda, timing) for _ in range(max(1, timing.rounds))]
    best = min(rounds, key=statistics.median)
    p90 = statistics.quantiles(best, n=10)[-1] if len(best) >= 2 else best[0]
    every = tuple(t for times in rounds for t in times)
    return Measurement(statistics.median(best), p90, len(every), every)


def _sample_round(run: Callable[[], Any], cuda: bool, timing: Timing) -> list[float]:
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < timing.max_samples and (
        len(times) < timing.min_samples or time.perf_counter() - began < timing.min_time_s
    ):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op CPU threads (``None``: leave as is).

    One thread gives the steadiest CPU figures on a busy machine: with more
    threads than free cores, OpenMP barriers can cost milliseconds per op.
    """
    if threads is None:
        yield
        return
    if not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive integer, got {threads!r}", field="threads")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def flushed_denormals(device: torch.device) -> Iterator[None]:
    """Flush denormal floats to zero while timing on a CPU, as inference
    runtimes do: with them, one small block timed 0.20 to 0.49 ms from one
    fresh copy to the next on this project's CPU; flushed, 0.19 to 0.21 ms."""
    if device.type != "cpu":
        yield
        return
    # set_flush_denormal returns whether the CPU supports it; the old state
    # cannot be read back, and reszoo never turns it on elsewhere.
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)
