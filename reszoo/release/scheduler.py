"""Scheduling a release's training: which nets start, together or in parallel, within a budget.

On a CPU each net trains in its own process (``jobs`` at a time, the cores
split between them); on a GPU ``jobs`` nets train together in one process, on
CUDA streams. A net starts only when its predicted time fits what is left of
the budget; predictions come from a sizing model scaled by the step rate the
running nets measure. Every worker reports on one event queue.
"""

from __future__ import annotations

import math
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reszoo.errors import ReszooError
from reszoo.release.worker import Job, WorkerPlan, run_worker, with_stop
from reszoo.zoo.counting import count
from reszoo.zoo.spec import ArchSpec

Log = Callable[[str], None]


# ---------------------------------------------------------------- sizing
#
# Predicted seconds decide which nets fit a budget; the measured step rate of
# the runs replaces the prediction's scale once they report (``Calibration``).
# CPU (CPU-CALIBRATION.md, batch 128, 1 thread): resnet20 (40.8 MMACs an
# image) 236 ms a step in bf16 + channels_last, 472 ms in float32: about
# 133 and 66 GFLOP/s a thread at 6 FLOPs per MAC (forward and backward).
# GPU (GPU-CALIBRATION.md, H100, one CUDA graph a step): about 0.1 ms a layer
# at batch 128 (resnet20 2.1 ms, resnet56 5.7 ms, resnet110 11.1 ms);
# several nets on streams overlap, 1.9x for 4.
CPU_FLOPS_PER_THREAD = {"bfloat16": 133e9, "bfloat16-norm32": 100e9, "float32": 66e9}
GPU_GRAPH_S_PER_LAYER = 0.1e-3
GPU_EAGER_S_PER_LAYER = 0.5e-3
GPU_TRAIN_FLOPS = 150e12  # bf16 arithmetic an H100 sustains on these convolutions (estimate)
GPU_STREAM_GAIN_PER_NET = 0.3  # 4 nets on streams: 1 + 0.3 * 3 = 1.9x one net's throughput
START_S = {"cpu": 10.0, "cuda": 25.0}  # a worker's imports, data and (GPU) graph capture
LATENCY_S_PER_NET = {"cpu": 12.0, "cuda": 6.0}  # the measurement after training, per runtime
STOP_S = 20.0  # what a worker gets to stop after Ctrl-C: a checkpoint write is well under a second


def step_seconds(spec: ArchSpec, batch: int, device_type: str, runtime: str, precision: str, threads: int = 1) -> float:
    """Predicted seconds of one training step of ``spec`` alone (see the sizing note)."""
    flops = 6 * count(spec).macs * batch
    if device_type == "cpu":
        return flops / (CPU_FLOPS_PER_THREAD[precision] * threads**0.9)
    per_layer = GPU_GRAPH_S_PER_LAYER if runtime == "graph" else GPU_EAGER_S_PER_LAYER
    return max(per_layer * spec.depth * max(1.0, batch / 128) ** 0.6, flops / GPU_TRAIN_FLOPS)


def stream_gain(nets: int) -> float:
    return 1.0 + GPU_STREAM_GAIN_PER_NET * (nets - 1)


@dataclass
class NetRun:
    """One manifest entry in this release run, as the parent follows it."""

    name: str
    spec: ArchSpec
    key: str
    job: Job
    status: str = "pending"  # held, pending, running, trained, published, cut, failed, skipped, conflict,
    # over-cap, interrupted (Ctrl-C)
    detail: str = ""
    ref: str | None = None
    predicted_s: float = 0.0
    step: int = 0
    total: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None


# ---------------------------------------------------------------- scheduling


class Calibration:
    """Measured seconds a step against predicted, over the runs so far: scales every prediction."""

    def __init__(self) -> None:
        self.ratios: dict[str, float] = {}
        self.first: dict[str, tuple[int, float]] = {}  # a run's first report: start-up stays out of its rate

    def update(self, name: str, step: int, seconds: float, predicted_step_s: float) -> None:
        first_step, first_seconds = self.first.setdefault(name, (step, seconds))
        if step - first_step >= 20:
            self.ratios[name] = (seconds - first_seconds) / (step - first_step) / predicted_step_s

    @property
    def scale(self) -> float:
        if not self.ratios:
            return 1.0
        values = sorted(self.ratios.values())
        return values[len(values) // 2]


@dataclass
class Worker:
    process: Any
    nets: list[NetRun]


class Scheduler:
    """Starts worker processes in priority order within the budget and follows their events."""

    def __init__(self, nets: list[NetRun], plan: dict[str, Any], log: Log) -> None:
        self.nets, self.plan, self.log = nets, plan, log
        self.context = torch.multiprocessing.get_context("spawn")  # CUDA cannot live in a forked child
        self.events = self.context.Queue()
        self.workers: list[Worker] = []
        self.calibration = Calibration()
        self.began = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.began

    def step_s(self, net: NetRun) -> float:
        p = self.plan
        return step_seconds(
            net.spec, net.job.recipe.batch_size, p["kind"], p["runtime"], net.job.precision, p["threads"] or 1
        )

    def remaining_s(self, net: NetRun) -> float:
        """Predicted wall seconds to finish ``net`` alone, from its checkpoint (evaluations included)."""
        steps_per_epoch = self.steps_per_epoch(net)
        total = net.job.recipe.total_steps(steps_per_epoch)
        done = net.step or _checkpointed_steps(net, steps_per_epoch)
        evals = (
            math.ceil((total - done) / steps_per_epoch) * len(self.plan["dataset"].test) / net.job.recipe.batch_size / 3
        )
        return (total - done + evals) * self.step_s(net) * self.calibration.scale

    def steps_per_epoch(self, net: NetRun) -> int:
        """As TrainingRun counts them: a graph drops the last partial batch, eager keeps it."""
        images, batch = len(self.plan["dataset"].train), net.job.recipe.batch_size
        return max(1, images // batch if self.plan["runtime"] == "graph" else math.ceil(images / batch))

    def deadline(self) -> float:
        return self.plan["budget_s"] - self.plan["reserve_s"]

    def running(self) -> list[Worker]:
        return [w for w in self.workers if any(n.status == "running" for n in w.nets)]

    def next_group(self) -> list[NetRun]:
        """The next nets to start together: one on a CPU; on CUDA as many as ``jobs``
        (one process, a stream each), in priority order, skipping what cannot fit."""
        cuda = self.plan["kind"] == "cuda"
        size = self.plan["jobs"] if cuda else 1
        group: list[NetRun] = []
        for net in self.nets:
            if len(group) == size:
                break
            if net.status != "pending" or net in group:
                continue
            # On a GPU a pair trains together or not at all: half a comparison is no figure.
            partners = (
                [
                    n
                    for n in self.nets
                    if n.name in self.plan["partners"].get(net.name, ()) and n.status == "pending" and n not in group
                ]
                if cuda
                else []
            )
            trial = [*group, net, *partners]
            if len(trial) > size:
                if len(partners) + 1 <= size:
                    continue  # the pair may fit a later group
                trial = [*group, net]
            gain = stream_gain(len(trial)) if cuda else 1.0
            # On a GPU a group starts only when the last has ended (one slot), so nothing runs beside it.
            needed = START_S[self.plan["kind"]] + sum(self.remaining_s(n) for n in trial) / gain
            left = self.deadline() - self.now()
            added = trial[len(group) :]
            if needed > left:
                # Not now; a later group (with a measured rate) may still fit it. What is
                # still pending when the run ends is reported as skipped, with this reason.
                for waiting in added:
                    waiting.detail = (
                        f"did not fit: {', '.join(n.name for n in trial)} need about "
                        f"{needed / 60:.1f} min, {max(left, 0) / 60:.1f} min of the budget left"
                    )
                continue
            for n in added:
                n.predicted_s = needed
            group = trial
        return group

    def start(self, group: list[NetRun]) -> None:
        stop_at = time.time() + (self.deadline() - self.now())
        jobs = tuple(with_stop(n.job, stop_at) for n in group)
        plan = WorkerPlan(
            jobs=jobs,
            dataset=self.plan["dataset_ref"],
            data_root=self.plan["data_root"],
            device=self.plan["device"],
            threads=self.plan["threads"],
        )
        # The worker is told this process's pid: if this one is killed (SIGKILL gives it no say), the
        # worker stops at once instead of training on unseen for hours.
        process = self.context.Process(target=run_worker, args=(plan, self.events, os.getpid()), daemon=True)
        process.start()
        for net in group:
            net.status = "running"
        self.workers.append(Worker(process, group))
        self.log(
            f"start {', '.join(n.name for n in group)} (predicted {group[-1].predicted_s / 60:.1f} min"
            f"{f', x{self.calibration.scale:.2f} measured' if self.calibration.ratios else ''})"
        )

    def admit(self) -> None:
        slots = 1 if self.plan["kind"] == "cuda" else self.plan["jobs"]
        while len(self.running()) < slots:
            group = self.next_group()
            if not group:
                return
            self.start(group)

    def net(self, job_name: str) -> NetRun:
        return next(n for n in self.nets if n.job.name == job_name)

    def handle(self, kind: str, job_name: str, payload: Any, on_done: Callable[[NetRun], None]) -> None:
        net = self.net(job_name)
        if kind in ("done", "cut", "failed", "deferred") and net.status != "running":
            return  # a late word about a net already settled (a crashing worker reports every job)
        if kind == "started":
            net.step, net.total = payload["step"], payload["total"]
            # A resumed net's clock and step count start again: its old rate would mislead.
            self.calibration.first.pop(net.name, None)
            self.calibration.ratios.pop(net.name, None)
            if payload["epochs_done"]:
                self.log(f"{net.name}: resumed after epoch {payload['epochs_done']} of {payload['epochs']}")
        elif kind == "progress":
            net.step, net.total, net.seconds = payload["step"], payload["total"], payload["seconds"]
            self.calibration.update(net.name, net.step, net.seconds, self.step_s(net))
        elif kind == "epoch":
            net.history.append(payload)
            self.log(
                f"{net.name:<10} epoch {payload['epoch']:>3}  train err {100 * payload['train_err']:5.2f}%  "
                f"test err {100 * payload['test_err']:5.2f}%  {payload['seconds'] / 60:5.1f} min"
            )
        elif kind == "done":
            net.status, net.result = "trained", payload
            on_done(net)
        elif kind == "deferred":  # back in the queue: a later group resumes it from its checkpoint
            net.status, net.detail = "pending", payload
            self.log(f"{net.name}: {payload}")
        else:  # cut, failed
            net.status, net.detail = kind, payload
            self.log(f"{net.name}: {kind}: {payload}")

    def run(self, on_done: Callable[[NetRun], None]) -> None:
        try:
            while True:
                self.admit()
                if not self.running():
                    break
                try:
                    kind, job_name, payload = self.events.get(timeout=1.0)
                    self.handle(kind, job_name, payload, on_done)
                    continue
                except queue.Empty:
                    pass
                for worker in self.running():
                    if not worker.process.is_alive():
                        self._drain(on_done)
                        for net in worker.nets:
                            if net.status == "running":
                                net.status = "failed"
                                net.detail = f"its worker exited with code {worker.process.exitcode} and no report"
                                self.log(f"{net.name}: {net.detail}")
                self.admit()
            self._drain(on_done)
            for net in self.nets:
                if net.status == "pending":
                    net.status = "skipped"
                    self.log(f"skip {net.name}: {net.detail or 'not started'}")
        except KeyboardInterrupt:
            self.stop()
            raise
        finally:
            for worker in self.workers:
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join(5)

    def stop(self) -> None:
        """Ctrl-C: ask every worker still training to stop (SIGTERM, which a worker turns
        into its own KeyboardInterrupt, so a checkpoint it is writing is kept whole or
        not at all) and wait for them; kill only one that has not stopped in STOP_S."""
        alive = [w for w in self.running() if w.process.is_alive()]
        for worker in alive:
            worker.process.terminate()
        deadline = time.monotonic() + STOP_S
        for worker in alive:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        self._drain(lambda net: None)  # a net that finished meanwhile is trained (the next run publishes it)
        for net in (n for w in alive for n in w.nets if n.status == "running"):
            net.status = "interrupted"

    def _drain(self, on_done: Callable[[NetRun], None]) -> None:
        while True:
            try:
                kind, job_name, payload = self.events.get(timeout=0.5)
                self.handle(kind, job_name, payload, on_done)
            except queue.Empty:
                return


def _checkpointed_steps(net: NetRun, steps_per_epoch: int) -> int:
    """Steps an earlier, cut-off run of ``net`` already checkpointed (0 if none)."""
    return checkpointed_epochs(net.job.checkpoint) * steps_per_epoch


def checkpointed_epochs(path: Path) -> int:
    """Epochs the checkpoint at ``path`` holds (0 if there is none, or none readable)."""
    if not path.is_file():
        return 0
    from reszoo.train.checkpoints import load_checkpoint

    try:
        _, _, meta = load_checkpoint(path)
    except ReszooError:
        return 0
    return int(meta.get("epochs_done", 0))
