"""The bar ``reszoo train`` draws on stderr while it trains, and what a run stopped by
Ctrl-C says: how far it got and the command that carries on."""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from reszoo.cli.app import command_line, interrupted


class TrainingBar:
    """The training bar on stderr: what happens before the first step (decoding a
    data set the first time takes about a minute), then epoch, steps, loss, speed
    and time left; a line per epoch above it. It also remembers how far the run
    got, for the message of an interrupted run."""

    def __init__(self, batch_size: int, *, disable: bool, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.fields[status]}"),
            BarColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=disable,
        )
        self.batch_size = batch_size
        self.last: dict[str, Any] | None = None  # the latest step's report
        self.first: tuple[int, float] | None = None  # (step, time) of the first report: the rate starts there
        self.publishing = False
        self.epochs_seen = 0  # epochs this run finished

    def __enter__(self) -> TrainingBar:
        self.progress.__enter__()
        self.task = self.progress.add_task("train", total=None, status="")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.__exit__(exc_type, exc, tb)

    def status(self, text: str) -> None:
        self.progress.update(self.task, status=text)
        self.progress.refresh()

    def step(self, state: dict[str, Any]) -> None:
        now = time.perf_counter()
        self.first = self.first or (state["step"], now)
        self.last = state
        steps, seconds = state["step"] - self.first[0], now - self.first[1]
        rate = f"  {steps * self.batch_size / seconds:.0f} img/s" if steps and seconds > 0 else ""
        self.progress.update(
            self.task,
            completed=state["step"],
            total=state["total"],
            status=f"epoch {state['epoch']}  {state['step']:,}/{state['total']:,}  loss {state['loss']:.3f}{rate}",
        )

    def epoch(self, record: dict[str, Any]) -> None:
        self.epochs_seen += 1
        self.progress.console.print(
            f"epoch {record['epoch']:>3}  train loss {record['train_loss']:.3f}  train err "
            f"{100 * record['train_err']:5.2f}%  test err {100 * record['test_err']:5.2f}%  "
            f"{record['seconds']:.0f} s",
            highlight=False,
        )


def interrupted_training(bar: TrainingBar, checkpoint: str | None, force: bool) -> None:
    """Ctrl-C on ``reszoo train``: what was done, and the command that carries on."""
    from reszoo.errors import TrainingError
    from reszoo.train.checkpoints import load_checkpoint

    state = bar.last
    where = (
        "while publishing: a publish is one transaction, so the registry holds all of it or none (reszoo list "
        "says which)"
        if bar.publishing
        else f"at step {state['step']:,} of {state['total']:,} (epoch {state['epoch']})"
        if state
        else "before the first step"
    )
    if checkpoint is None:
        interrupted(
            f"{where}; nothing was saved (only --checkpoint FILE makes a run resumable)",
            command_line(add=("--checkpoint", "run.safetensors")),
        )
    path = Path(checkpoint)
    try:
        done = load_checkpoint(path)[2]["epochs_done"] if path.is_file() else 0
    except TrainingError:
        done = 0
    if force and not bar.epochs_seen:  # the file, if any, is still the run --force was to replace
        interrupted(f"{where}; no epoch had finished, so {checkpoint} is as it was", command_line())
    if not done:
        interrupted(f"{where}; no epoch had finished, so {checkpoint} was not written", command_line())
    interrupted(
        f"{where}; {checkpoint} holds {done} finished epoch{'s' if done != 1 else ''}",
        command_line(drop=("--force",), add=("--resume",)),
    )
