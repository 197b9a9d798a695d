"""Training a release's nets: what one worker process does.

A worker trains its jobs (one on a CPU, where each process gets its own
cores; several at once on CUDA streams on a GPU, where one process
overlaps them), checkpointing each at every epoch end under the release's
run folder, so that a killed or cut-off run resumes where it stopped. A
finished net is evaluated in float32 and with float16 weights, and its
result (history, metrics, timings) is written beside its checkpoint, which
holds the final weights. Publishing is the parent's job: it alone writes to
the target registry, one entry at a time.

Every outcome reaches the parent as an event on a queue, so that it never
has to guess from a silent dead process.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reszoo.devices import device_label, resolve_device
from reszoo.errors import ReszooError
from reszoo.files import atomic_write_text
from reszoo.processes import die_with_parent
from reszoo.train.checkpoints import load_checkpoint
from reszoo.train.data import Dataset, fit_spec
from reszoo.train.data import load as load_dataset
from reszoo.train.interleave import train_many
from reszoo.train.loop import TrainingRun
from reszoo.train.metrics import evaluate
from reszoo.train.recipes import Recipe
from reszoo.zoo import weights as W
from reszoo.zoo.spec import ArchSpec


class BudgetExceeded(ReszooError):
    """A run still going when the budget ran out: stopped at its last checkpoint, to resume later."""


class Deferred(BudgetExceeded):
    """A run stopped so that the nets trained with it finish in time; it may resume
    from its checkpoint in a later group of the same release run."""


@dataclass(frozen=True)
class Job:
    """One net to train, as a worker receives it."""

    name: str
    spec: ArchSpec  # fitted to the data set
    recipe: Recipe
    runtime: str  # eager, graph or compile
    precision: str
    seed: int
    folder: Path  # the release's run folder for this kind and recipe
    float16_tolerance: float
    stop_at: float = float("inf")  # time.time() after which the run stops at its checkpoint

    @property
    def checkpoint(self) -> Path:
        return self.folder / f"{self.name}.safetensors"

    @property
    def result_file(self) -> Path:
        return self.folder / f"{self.name}.json"


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker process is given: its jobs and where the data is."""

    jobs: tuple[Job, ...]
    dataset: str
    data_root: str | None
    device: str
    threads: int | None  # CPU threads for this process (the workers share the cores)


def read_result(job: Job) -> dict[str, Any] | None:
    """The finished net's result file, if the run got that far."""
    try:
        return json.loads(job.result_file.read_text())
    except (OSError, ValueError):
        return None


def final_weights(job: Job) -> dict[str, torch.Tensor]:
    """The trained weights (float32), from the run's last checkpoint."""
    model_state, _, _ = load_checkpoint(job.checkpoint)
    return model_state


class _Outcomes:
    """The worker's side of the event queue: each job's outcome is sent once, so a
    crash late in the worker fails only the jobs that had none yet."""

    def __init__(self, events: Any) -> None:
        self.events = events
        self.sent: set[str] = set()  # names of the jobs whose outcome was sent

    def put(self, event: tuple[str, str, Any]) -> None:
        if event[0] in ("done", "cut", "deferred", "failed"):
            self.sent.add(event[1])
        self.events.put(event)


def run_worker(plan: WorkerPlan, events: Any, parent: int | None = None) -> None:
    """Process entry point: train ``plan.jobs``, report each outcome on ``events``. With
    ``parent`` (the release's pid), the worker stops as on SIGTERM when that process dies."""
    outcomes = _Outcomes(events)
    # The parent alone decides on Ctrl-C: a terminal's SIGINT reaches every process of the
    # group, and a second interruption could land in the clean-up of a checkpoint write.
    # The parent's SIGTERM is this worker's one interruption.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    if parent is not None:
        die_with_parent(parent, signal.SIGTERM)
    try:
        if plan.threads is not None:
            torch.set_num_threads(plan.threads)
        device = resolve_device(plan.device)
        dataset = load_dataset(plan.dataset, root=plan.data_root)
        monitor = GroupMonitor([job.name for job in plan.jobs])
        runs = {}
        for job in plan.jobs:
            try:
                runs[job.name] = _make_run(job, dataset, device, outcomes, monitor)
            except ReszooError as exc:
                monitor.finished(job.name)
                outcomes.put(("failed", job.name, str(exc)))
        if runs:
            _train(plan, runs, dataset, device, outcomes, monitor)
    except KeyboardInterrupt:
        return  # the parent asked (SIGTERM): it knows, and says what each checkpoint holds
    except BaseException as exc:  # CUDA errors included: the parent hears of every job
        for job in plan.jobs:
            if job.name not in outcomes.sent:
                outcomes.put(("failed", job.name, f"{type(exc).__name__}: {exc}"))


def _interrupt(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the clean-up then runs undisturbed
    raise KeyboardInterrupt


class GroupMonitor:
    """Watches nets trained together (CUDA streams in one process) against their stop time.

    In lockstep every net advances one step a round, so they would all end
    together, and all miss the budget together. Once the measured round time
    says the group cannot finish by its stop time, the lowest-priority net
    still running is stopped (at its last checkpoint) and the rest speed up;
    the rate is then measured afresh before the next judgement.
    """

    WINDOW = 40  # steps a rate is measured over; the first window (graph capture) is never judged

    def __init__(self, names: list[str]) -> None:
        self.active = list(names)  # the nets still training, in priority order
        self.mark: tuple[int, float] | None = None
        self.windows = 0
        self.dropped: set[str] = set()

    def finished(self, name: str) -> None:
        """``name`` ended (done, cut or failed): the next one judges, from a fresh measurement."""
        if name in self.active:
            if self.active[0] == name:
                self.mark, self.windows = None, 0
            self.active.remove(name)

    def check(self, name: str, step: int, total: int, stop_at: float) -> None:
        if name in self.dropped:
            raise Deferred(
                f"stopped at step {step} of {total}: the nets trained with it could not all "
                "finish within the budget, and it had the lowest priority"
            )
        if time.time() > stop_at:
            raise BudgetExceeded(f"stopped at step {step} of {total} as the budget ran out")
        if name != self.active[0] or len(self.active) == 1:
            return
        now = time.time()
        if self.mark is None or step < self.mark[0]:
            self.mark = (step, now)
            return
        if step - self.mark[0] < self.WINDOW:
            return
        round_s = (now - self.mark[1]) / (step - self.mark[0])
        self.mark, self.windows = (step, now), self.windows + 1
        if self.windows >= 2 and now + (total - step) * round_s > stop_at:
            self.dropped.add(self.active.pop())  # stopped at its own next report
            self.windows = 0


def _make_run(job: Job, dataset: Dataset, device: torch.device, events: Any, monitor: GroupMonitor) -> TrainingRun:
    job.folder.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()

    def on_step(state: dict[str, Any]) -> None:
        events.put(
            (
                "progress",
                job.name,
                {"step": state["step"], "total": state["total"], "seconds": time.monotonic() - began},
            )
        )
        try:
            monitor.check(job.name, state["step"], state["total"], job.stop_at)
        except BudgetExceeded as exc:
            raise type(exc)(f"{exc}; it resumes from {job.checkpoint} (last epoch end)") from None

    run = TrainingRun(
        fit_spec(job.spec, dataset),
        dataset,
        job.recipe,
        device=device,
        seed=job.seed,
        runtime=job.runtime,
        precision=job.precision,
        checkpoint=job.checkpoint,
        resume=True,
        on_step=on_step,
        on_epoch=lambda record: events.put(("epoch", job.name, record)),
    )
    events.put(
        (
            "started",
            job.name,
            {"epochs_done": run.start_epoch, "epochs": run.epochs, "total": run.total, "step": run.step},
        )
    )
    return run


def _train(
    plan: WorkerPlan,
    runs: dict[str, TrainingRun],
    dataset: Dataset,
    device: torch.device,
    events: Any,
    monitor: GroupMonitor,
) -> None:
    jobs = {job.name: job for job in plan.jobs}
    names = list(runs)
    # finish() evaluates the saved weights, in float32 and float16: no evaluation at the end of training too.
    results = train_many(
        list(runs.values()), evaluate_at_end=False, on_finish=lambda index: monitor.finished(names[index])
    )
    for name, result in zip(runs, results, strict=True):
        if isinstance(result, BudgetExceeded):
            events.put(("deferred" if isinstance(result, Deferred) else "cut", name, str(result)))
            continue
        if isinstance(result, ReszooError):
            events.put(("failed", name, str(result)))
            continue
        try:
            events.put(
                ("done", name, finish(jobs[name], result.history, result.steps, result.seconds, dataset, device))
            )
        except ReszooError as exc:
            events.put(("failed", name, str(exc)))


def finish(
    job: Job, history: list[dict[str, Any]], steps: int, seconds: float, dataset: Dataset, device: torch.device
) -> dict[str, Any]:
    """Evaluate the final weights in float32 and as float16, and write the result file.

    float16 halves what every clone of the zoo carries; it is kept when top-1
    moves by at most ``job.float16_tolerance``. Evaluation runs in exact float32
    (no TF32), so that ``reszoo eval`` on a CPU reproduces the stored top-1.
    """
    state = final_weights(job)
    half, _ = W.cast_floating(state, torch.float16)
    spec = fit_spec(job.spec, dataset)
    with exact_float32():
        full, halved = (
            evaluate(
                W.model_from_state_dict(spec, s).to(device), dataset.test, dataset.mean, dataset.std, device=device
            )
            for s in (state, half)
        )
    keep_half = keep_float16(full["top1"], halved["top1"], job.float16_tolerance)
    result = {
        "name": job.name,
        "spec": spec.to_dict(),
        "recipe": job.recipe.to_dict(),
        "runtime": job.runtime,
        "precision": job.precision,
        "seed": job.seed,
        "device": device_label(device),
        "history": history,
        "steps": steps,
        "train_seconds": seconds,
        "metrics_float32": full,
        "metrics_float16": halved,
        "weights_dtype": "float16" if keep_half else "float32",
        "finished_at": time.time(),
    }
    atomic_write_text(job.result_file, json.dumps(result, indent=1) + "\n")
    return result


def keep_float16(top1_float32: float, top1_float16: float, tolerance: float) -> bool:
    """Whether float16 weights are kept: top-1 moves by at most ``tolerance`` either way."""
    return abs(top1_float16 - top1_float32) <= tolerance


class exact_float32:
    """No TF32 in convolutions or matmuls while evaluating on a GPU: the stored
    top-1 then agrees with a CPU's ``reszoo eval`` to within a few images."""

    def __enter__(self) -> None:
        self._matmul = torch.backends.cuda.matmul.allow_tf32
        self._cudnn = torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc: object) -> None:
        torch.backends.cuda.matmul.allow_tf32 = self._matmul
        torch.backends.cudnn.allow_tf32 = self._cudnn


def with_stop(job: Job, stop_at: float) -> Job:
    return dataclasses.replace(job, stop_at=stop_at)


def cpu_threads_per_worker(workers: int) -> int:
    """Threads per process so that ``workers`` processes never oversubscribe the cores:
    on this 2-core machine two 2-thread runs collapsed to 2.5-7.7 s a step
    (CPU-CALIBRATION.md), while 1-thread runs kept their speed."""
    from reszoo.devices import usable_cores

    return max(1, usable_cores() // max(1, workers))
