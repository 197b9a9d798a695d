"""Building a release: train what the target registry lacks, publish it, measure it.

``build_release`` reads nothing but the manifest and the target. For each
entry, in priority order, it works out the recipe for this hardware kind and
its key (a digest of recipe, runtime, seed and data set). An entry the
target already holds under that key is done; a finished but unpublished
result is published; the rest are trained, ``jobs`` at a time (one process
per net on a CPU, one thread each by default; nets on CUDA streams in one
process on a GPU), each from its checkpoint if an earlier run was cut off.
A net that the remaining budget cannot fit is not started. Each result is
published as it arrives (one writer: this process), then latency is
measured with the machine otherwise idle, and the report is drawn.
Running it again adds nothing.
"""

from __future__ import annotations

import math
import os
import queue
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reszoo.errors import ConflictError, ManifestError, ReszooError
from reszoo.release.manifest import Manifest
from reszoo.release.worker import (
    Job,
    WorkerPlan,
    cpu_threads_per_worker,
    final_weights,
    read_result,
    run_worker,
    with_stop,
)
from reszoo.search.latency import DEFAULT_TIMING, Timing, latency, resolve_device
from reszoo.train.data import Dataset, fit_spec
from reszoo.train.data import load as load_dataset
from reszoo.train.steps import default_precision
from reszoo.train.publish import TrainedEntry, publish_trained
from reszoo.train.recipes import Recipe
from reszoo.zoo import weights as W
from reszoo.zoo.counting import count
from reszoo.zoo.hub import home
from reszoo.zoo.records import EntryRecord
from reszoo.zoo.registry import Registry
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
CPU_FLOPS_PER_THREAD = {"bfloat16": 133e9, "float32": 66e9}
GPU_GRAPH_S_PER_LAYER = 0.1e-3
GPU_EAGER_S_PER_LAYER = 0.5e-3
GPU_TRAIN_FLOPS = 150e12  # bf16 arithmetic an H100 sustains on these convolutions (estimate)
GPU_STREAM_GAIN_PER_NET = 0.3  # 4 nets on streams: 1 + 0.3 * 3 = 1.9x one net's throughput
START_S = {"cpu": 10.0, "cuda": 25.0}  # a worker's imports, data and (GPU) graph capture
LATENCY_S_PER_NET = {"cpu": 12.0, "cuda": 6.0}  # the measurement after training, per runtime


def step_seconds(spec: ArchSpec, batch: int, device_type: str, runtime: str, precision: str,
                 threads: int = 1) -> float:
    """Predicted seconds of one training step of ``spec`` alone (see the sizing note)."""
    flops = 6 * count(spec).macs * batch
    if device_type == "cpu":
        return flops / (CPU_FLOPS_PER_THREAD[precision] * threads**0.9)
    per_layer = GPU_GRAPH_S_PER_LAYER if runtime == "graph" else GPU_EAGER_S_PER_LAYER
    return max(per_layer * spec.depth * max(1.0, batch / 128) ** 0.6, flops / GPU_TRAIN_FLOPS)


def stream_gain(nets: int) -> float:
    return 1.0 + GPU_STREAM_GAIN_PER_NET * (nets - 1)


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``45m``, ``2h`` or ``1.5h`` (a bare number is minutes)."""
    units = {"s": 1, "m": 60, "h": 3600}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "m")
    try:
        seconds = float(value) * units[unit]
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ManifestError(f"budget {text!r} is not a duration; give e.g. 90s, 45m or 2h")
    return seconds


# ---------------------------------------------------------------- the plan


@dataclass
class NetRun:
    """One manifest entry in this release run, as the parent follows it."""

    name: str
    spec: ArchSpec
    key: str
    job: Job
    status: str = "pending"  # held, pending, running, trained, published, cut, failed, skipped, conflict, over-cap
    detail: str = ""
    ref: str | None = None
    predicted_s: float = 0.0
    step: int = 0
    total: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None


@dataclass
class ReleaseReport:
    """What a release run did: one row per manifest entry, in priority order."""

    manifest: Manifest
    kind: str
    device: str
    runtime: str
    precision: str
    target: str
    nets: list[NetRun]
    elapsed_s: float
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def trained_now(self) -> list[NetRun]:
        return [n for n in self.nets if n.status == "published" and n.result is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "release": self.manifest.name, "kind": self.kind, "device": self.device, "runtime": self.runtime,
            "precision": self.precision, "target": self.target, "elapsed_s": self.elapsed_s, "files": self.files,
            "nets": [
                {"name": n.name, "status": n.status, "detail": n.detail, "ref": n.ref, "key": n.key,
                 "steps": n.step, "total_steps": n.total, "train_seconds": (n.result or {}).get("train_seconds"),
                 "top1_float32": ((n.result or {}).get("metrics_float32") or {}).get("top1"),
                 "weights_dtype": (n.result or {}).get("weights_dtype"),
                 "history": (n.result or {}).get("history") or n.history,
                 "latency": self.latency.get(n.name)}
                for n in self.nets
            ],
        }


def release_key_of(entry: EntryRecord) -> tuple[str | None, str | None]:
    """(release name, recipe key) an entry was published with, if a release made it."""
    info = entry.recipe.get("release") or {}
    return info.get("name"), info.get("key")


def git_commit(folder: Path) -> dict[str, Any] | None:
    """The commit the release code and manifest came from, and whether tracked files
    differed from it (a run from a dirty tree is not that commit's), if in a git checkout."""
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(status.strip())} if head else None


def run_folder(manifest: Manifest, kind: str) -> Path:
    """Where this release's checkpoints and results live: under $RESZOO_HOME, so
    that a run cut off by a session's end resumes in the next one."""
    return home() / "release" / manifest.name / kind


def plan_nets(manifest: Manifest, kind: str, dataset: Dataset, target: Registry, runtime: str, precision: str,
              only: list[str] | None = None) -> list[NetRun]:
    kind_recipe = manifest.kind(kind)
    folder = run_folder(manifest, kind)
    names = [e.name for e in manifest.entries]
    for name in only or []:
        manifest.entry(name)  # an unknown name is an error, with the list
    nets = []
    for entry in manifest.entries:
        if only and entry.name not in only:
            continue
        spec = fit_spec(entry.spec, dataset)
        key = manifest.recipe_key(entry.name, kind)
        job = Job(name=f"{entry.name}-{key}", spec=spec, recipe=manifest.recipe_for(entry.name, kind),
                  runtime=runtime, precision=precision, seed=manifest.seed, folder=folder,
                  float16_tolerance=manifest.float16_tolerance)
        net = NetRun(entry.name, spec, key, job)
        versions = target.list(entry.name, all_versions=True)
        held = [e for e in versions if release_key_of(e) == (manifest.name, key)]
        if held:
            net.status, net.ref, net.detail = "held", held[-1].ref, f"already in the target as {held[-1].ref}"
        elif kind_recipe.version is not None and any(e.version == kind_recipe.version for e in versions):
            net.status = "conflict"
            net.detail = (f"{entry.name}@{kind_recipe.version} exists in the target from another recipe or release; "
                          f"remove it (reszoo rm) or give [recipes.{kind}] another version")
        else:
            net.result = read_result(job)
            if net.result is not None:
                net.status, net.detail = "trained", "trained by an earlier run, not yet published"
        nets.append(net)
    assert all(n.name in names for n in nets)
    return nets


# ---------------------------------------------------------------- publishing


def publish_net(manifest: Manifest, kind: str, net: NetRun, dataset: Dataset, target: Registry,
                commit: dict[str, Any] | None) -> EntryRecord | None:
    """Add a finished net to the target as ``name@version`` (the kind's version, or the
    next free one); ``None`` when the weights would take the target past its size cap."""
    result = net.result
    assert result is not None
    state = final_weights(net.job)
    half = result["weights_dtype"] == "float16"
    if half:
        state, _ = W.cast_floating(state, torch.float16)
    cap = manifest.max_registry_mb
    if cap is not None and target.path is not None:
        size = sum(p.stat().st_size for p in (target.path, target.path.with_name(target.path.name + "-wal"))
                   if p.exists())
        blob = len(W.serialize(state))
        if size + blob > cap * 1e6:
            net.status = "over-cap"
            net.detail = (f"not published: {blob / 1e6:.1f} MB of weights would take {target.path.name} from "
                          f"{size / 1e6:.1f} MB past its {cap:.0f} MB cap (max_registry_mb); its history and "
                          "metrics are kept in the release summary")
            return None
    delta = 100 * (result["metrics_float16"]["top1"] - result["metrics_float32"]["top1"])
    entry = TrainedEntry(
        dataset=dataset, metrics=result["metrics_float16" if half else "metrics_float32"], history=result["history"],
        recipe=Recipe.from_dict(result["recipe"]), seed=result["seed"], runtime=result["runtime"],
        precision=result["precision"], steps=result["steps"], seconds=result["train_seconds"],
        device=result["device"],
        extra_metrics={"top1_float32": result["metrics_float32"]["top1"],
                       "top1_float16": result["metrics_float16"]["top1"], "weights_dtype": result["weights_dtype"]},
        extra_data={"label": manifest.dataset_label},
        release={"name": manifest.name, "kind": kind, "key": net.key, "manifest": manifest.path.name,
                 **(commit or {"commit": None})},
        notes=(f"release {manifest.name} ({kind} recipe); weights stored in {result['weights_dtype']} "
               f"(top-1 as float16 vs float32: {delta:+.2f} points)"),
    )
    return publish_trained(target, net.name, state, net.spec, entry, version=manifest.kind(kind).version)


def _publish(manifest: Manifest, kind: str, net: NetRun, dataset: Dataset, target: Registry,
             commit: dict[str, Any] | None, log: Log) -> None:
    try:
        record = publish_net(manifest, kind, net, dataset, target, commit)
    except ConflictError as exc:
        net.status, net.detail = "conflict", str(exc)
        log(f"{net.name}: {exc}")
        return
    if record is None:
        log(f"{net.name}: {net.detail}")
        return
    net.status, net.ref = "published", record.ref
    top1 = 100 * (record.top1 or 0)
    net.detail = f"published {record.ref}: top-1 {top1:.2f}% ({record.dtypes})"
    log(f"{net.name}: {net.detail}")


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
        return step_seconds(net.spec, net.job.recipe.batch_size, p["kind"], p["runtime"], p["precision"],
                            p["threads"] or 1)

    def remaining_s(self, net: NetRun) -> float:
        """Predicted wall seconds to finish ``net`` alone, from its checkpoint (evaluations included)."""
        steps_per_epoch = max(1, len(self.plan["dataset"].train) // net.job.recipe.batch_size)
        total = net.job.recipe.total_steps(steps_per_epoch)
        done = net.step or _checkpointed_steps(net, steps_per_epoch)
        evals = math.ceil((total - done) / steps_per_epoch) * len(self.plan["dataset"].test) / net.job.recipe.batch_size / 3
        return (total - done + evals) * self.step_s(net) * self.calibration.scale

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
            partners = [n for n in self.nets if n.name in self.plan["partners"].get(net.name, ())
                        and n.status == "pending" and n not in group] if cuda else []
            trial = [*group, net, *partners]
            if len(trial) > size:
                if len(partners) + 1 <= size:
                    continue  # the pair may fit a later group
                trial = [*group, net]
            gain = stream_gain(len(trial)) if cuda else 1.0
            needed = START_S[self.plan["kind"]] + sum(self.remaining_s(n) for n in trial) / gain
            if self.plan["kind"] == "cuda":
                # The running group shares the GPU: its remaining work comes first.
                needed += sum(self.remaining_s(n) for w in self.running() for n in w.nets if n.status == "running")
            left = self.deadline() - self.now()
            added = trial[len(group):]
            if needed > left:
                # Not now; a later group (with a measured rate) may still fit it. What is
                # still pending when the run ends is reported as skipped, with this reason.
                for waiting in added:
                    waiting.detail = (f"did not fit: {', '.join(n.name for n in trial)} need about "
                                      f"{needed / 60:.1f} min, {max(left, 0) / 60:.1f} min of the budget left")
                continue
            for n in added:
                n.predicted_s = needed
            group = trial
        return group

    def start(self, group: list[NetRun]) -> None:
        stop_at = time.time() + (self.deadline() - self.now())
        jobs = tuple(with_stop(n.job, stop_at) for n in group)
        plan = WorkerPlan(jobs=jobs, dataset=self.plan["dataset_ref"], data_root=self.plan["data_root"],
                          device=self.plan["device"], threads=self.plan["threads"])
        process = self.context.Process(target=run_worker, args=(plan, self.events), daemon=True)
        process.start()
        for net in group:
            net.status = "running"
        self.workers.append(Worker(process, group))
        self.log(f"start {', '.join(n.name for n in group)} (predicted {group[-1].predicted_s / 60:.1f} min"
                 f"{f', x{self.calibration.scale:.2f} measured' if self.calibration.ratios else ''})")

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
        if kind == "started":
            net.step, net.total = payload["step"], payload["total"]
            if payload["epochs_done"]:
                self.log(f"{net.name}: resumed after epoch {payload['epochs_done']} of {payload['epochs']}")
        elif kind == "progress":
            net.step, net.total, net.seconds = payload["step"], payload["total"], payload["seconds"]
            self.calibration.update(net.name, net.step, net.seconds, self.step_s(net))
        elif kind == "epoch":
            net.history.append(payload)
            self.log(f"{net.name:<10} epoch {payload['epoch']:>3}  train err {100 * payload['train_err']:5.2f}%  "
                     f"test err {100 * payload['test_err']:5.2f}%  {payload['seconds'] / 60:5.1f} min")
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
                    self.handle(*self.events.get(timeout=1.0), on_done)
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
        finally:
            for worker in self.workers:
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join(5)

    def _drain(self, on_done: Callable[[NetRun], None]) -> None:
        while True:
            try:
                self.handle(*self.events.get(timeout=0.5), on_done)
            except queue.Empty:
                return


def _checkpointed_steps(net: NetRun, steps_per_epoch: int) -> int:
    """Steps an earlier, cut-off run of ``net`` already checkpointed (0 if none)."""
    if not net.job.checkpoint.is_file():
        return 0
    from reszoo.train.checkpoints import load_checkpoint

    try:
        _, _, meta = load_checkpoint(net.job.checkpoint)
    except ReszooError:
        return 0
    return int(meta.get("epochs_done", 0)) * steps_per_epoch


# ---------------------------------------------------------------- the release


def build_release(
    manifest: Manifest,
    target: Registry,
    *,
    device: str = "auto",
    jobs: int | None = None,
    budget_s: float | None = None,
    data_root: str | None = None,
    only: list[str] | None = None,
    measure_latency: bool = True,
    timing: Timing = DEFAULT_TIMING,
    log: Log = print,
) -> ReleaseReport:
    """Train, publish and measure what ``target`` lacks of ``manifest`` on ``device``.

    Args:
        device: ``auto`` (a GPU if there is one), ``cpu``, ``cuda`` or ``cuda:N``;
            its type picks the manifest's recipe.
        jobs: Nets trained at once: processes on a CPU (default: one per core,
            each with cores / jobs threads), CUDA streams in one process on a GPU
            (default 4).
        budget_s: Wall seconds for the whole run; nets that cannot fit are not
            started, and runs still going near the end stop at their last
            checkpoint (the next run resumes them).
        only: Entry names to build (default: every entry, in priority order).
    """
    began = time.monotonic()
    torch_device = resolve_device(device)
    kind = torch_device.type
    kind_recipe = manifest.kind(kind)
    runtime = kind_recipe.runtime if kind_recipe.runtime != "auto" else ("graph" if kind == "cuda" else "eager")
    precision = default_precision(torch_device) if kind_recipe.precision == "auto" else kind_recipe.precision
    jobs = jobs or (4 if kind == "cuda" else (os.cpu_count() or 1))
    if jobs < 1:
        raise ManifestError(f"jobs must be at least 1, got {jobs}")
    threads = cpu_threads_per_worker(jobs) if kind == "cpu" else None
    dataset = load_dataset(manifest.dataset, root=data_root)  # decoded once here; the workers read the cache
    log(f"release {manifest.name}: {kind} recipe on {torch_device} ({runtime}, {precision}), {jobs} at a time"
        f"{f', {threads} thread(s) each' if threads else ''}; data {manifest.dataset_label} "
        f"({len(dataset.train)} training, {len(dataset.test)} test images); target {target.display_url}")
    nets = plan_nets(manifest, kind, dataset, target, runtime, precision, only)
    commit = git_commit(manifest.path.parent)
    for net in nets:
        if net.status == "trained":
            _publish(manifest, kind, net, dataset, target, commit, log)
        elif net.status in ("held", "conflict"):
            log(f"{net.name}: {net.detail}")
    budget = budget_s if budget_s is not None else math.inf
    # What follows training: publishing, and latency of the nets a run can train (a GPU group at most).
    to_time = min(len(nets), jobs) if kind == "cuda" else len(nets)
    reserve = 20.0 + (LATENCY_S_PER_NET[kind] * to_time * (2 if kind == "cuda" else 1) if measure_latency else 0.0)
    partners = {name: tuple(n for n in pair if n != name) for pair in manifest.pairs for name in pair}
    scheduler = Scheduler(nets, {
        "kind": kind, "runtime": runtime, "precision": precision, "threads": threads, "jobs": jobs,
        "dataset": dataset, "dataset_ref": manifest.dataset, "data_root": data_root, "device": str(torch_device),
        "budget_s": budget - (time.monotonic() - began), "reserve_s": reserve, "partners": partners,
    }, log)
    scheduler.run(lambda net: _publish(manifest, kind, net, dataset, target, commit, log))
    report = ReleaseReport(manifest, kind, str(torch_device), runtime, precision, target.display_url, nets, 0.0)
    if measure_latency:
        left = budget - (time.monotonic() - began) - 10
        report.latency = measure_latencies(manifest, target, torch_device, kind, left, timing, log, only)
    report.elapsed_s = time.monotonic() - began
    return report


def measure_latencies(manifest: Manifest, target: Registry, device: torch.device, kind: str, seconds_left: float,
                      timing: Timing, log: Log, only: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Batch-1 float32 latency of every release entry in the target, on ``device``
    (eager; and one CUDA graph on a GPU), stored in the target by architecture.
    Rows already there are reused, so a second run measures nothing."""
    runtimes = ("eager", "graph") if kind == "cuda" else ("eager",)
    began = time.monotonic()
    out: dict[str, dict[str, Any]] = {}
    for entry in manifest.entries:
        if only and entry.name not in only:
            continue
        held = [e for e in target.list(entry.name, all_versions=True) if release_key_of(e)[0] == manifest.name]
        if not held:
            continue
        if time.monotonic() - began > seconds_left:
            log(f"{entry.name}: latency not measured, the budget is spent")
            continue
        rows = {}
        for runtime in runtimes:
            row = latency(held[-1].spec, device=str(device), runtime=runtime, registry=target, timing=timing)
            rows[runtime] = {"median_ms": row.median_ms, "p90_ms": row.p90_ms, "device": row.device}
        out[entry.name] = rows
        log(f"{entry.name}: batch-1 latency " + ", ".join(f"{r} {v['median_ms']:.3f} ms" for r, v in rows.items()))
    return out


def ship_from(manifest: Manifest, source: Registry, target: Registry, log: Log = print) -> list[str]:
    """Copy every entry a run of this release published into ``source`` (a GPU
    machine's release registry, say) into ``target``, versions kept, sha256
    checked, and every latency row measured there (the GPU figures come home
    with the weights); what the target holds already is left alone."""
    copied = []
    for entry in manifest.entries:
        for record in source.list(entry.name, all_versions=True):
            if release_key_of(record)[0] != manifest.name:
                continue
            copy = target.pull(record.ref, source)
            copied.append(copy.ref)
            log(f"{record.ref}: in {target.display_url} ({record.device}, top-1 {100 * (record.top1 or 0):.2f}%)")
    rows = 0
    for arch in source.architectures():
        for row in source.latency(arch.digest):
            if target.latency_row(row.arch_digest, row.device, row.batch_size, row.dtype, row.runtime) is None:
                target.add_architecture(arch.spec, arch.name)
                target.add_latency(row)
                rows += 1
    if rows:
        log(f"{rows} latency rows measured in {source.display_url} added to {target.display_url}")
    return copied
