"""Several training runs at once, one optimisation step of each in turn: on a GPU
each run on its own CUDA stream, so that the small nets' steps overlap (``train_many``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from reszoo.errors import ReszooError, TrainingError

if TYPE_CHECKING:
    from reszoo.train.loop import TrainingRun, TrainResult


def train_many(
    runs: list[TrainingRun], *, evaluate_at_end: bool = True, on_finish: Callable[[int], None] | None = None
) -> list[TrainResult | ReszooError]:
    """Train several nets at once, one step of each in turn.

    On a GPU every run gets its own CUDA stream: the paper's nets are too small
    to fill an H100 alone, and graph replays on separate streams overlap
    (4 resnet20s: 1.9x the steps per second of one, GPU-CALIBRATION.md), while
    separate processes only time-slice it. Each run is exactly what
    :func:`train` would do with the same arguments. On a CPU the runs simply
    alternate (use one process per run there instead: each gets its cores).

    Returns, per run, its result or the reszoo error that stopped it (a
    non-finite loss, a budget its ``on_step`` enforces, the device's memory
    running out): one run stopping never stops the others. ``on_finish(i)``
    is told when run ``i`` ends either way; ``evaluate_at_end=False`` leaves
    the results' metrics empty (a caller that evaluates the saved weights).
    """
    import contextlib

    streams = [torch.cuda.Stream(run.device) if run.device.type == "cuda" else None for run in runs]
    outcomes: list[TrainResult | ReszooError | None] = [None] * len(runs)
    active = [(i, run.steps(), stream) for i, (run, stream) in enumerate(zip(runs, streams, strict=True))]
    while active:
        still = []
        for i, steps, stream in active:
            with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                try:
                    if next(steps, None) is not None:
                        still.append((i, steps, stream))
                        continue
                except ReszooError as exc:
                    outcomes[i] = exc
                except torch.OutOfMemoryError as exc:
                    outcomes[i] = TrainingError(
                        f"out of memory training {runs[i].spec.summary()}: {str(exc).splitlines()[0]}"
                    )
            if on_finish is not None:
                on_finish(i)
        active = still
    for stream in streams:
        if stream is not None:
            stream.synchronize()
    return [
        outcome if outcome is not None else run.result(evaluate_at_end)
        for run, outcome in zip(runs, outcomes, strict=True)
    ]
