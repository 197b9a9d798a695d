"""Building a release: train what the target registry lacks, publish it, measure it.

(The plan, net by net, is reszoo.release.plan's; the scheduling of the training
reszoo.release.scheduler's; publishing a finished net reszoo.release.publish's.)

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
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from reszoo.devices import resolve_device, usable_cores
from reszoo.errors import Interrupted, ManifestError
from reszoo.latency.measure import DEFAULT_TIMING, Timing, latency
from reszoo.limits import CPU_PROCESSES, STREAMS
from reszoo.release.manifest import Manifest
from reszoo.release.plan import plan_nets, release_entries
from reszoo.release.plan import run_folder as run_folder  # re-exported: its home until it moved
from reszoo.release.publish import git_commit, publish_finished
from reszoo.release.scheduler import LATENCY_S_PER_NET, Log, NetRun, Scheduler, checkpointed_epochs
from reszoo.release.worker import cpu_threads_per_worker
from reszoo.train.data import load as load_dataset
from reszoo.train.precision import default_precision
from reszoo.zoo.registry import Registry

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``45m``, ``2h``, ``1.5h`` or ``2h30m`` (a bare number is minutes)."""
    given, text = text, text.strip().lower()
    try:
        seconds = float(text) * 60
    except ValueError:
        match = _DURATION.fullmatch(text)
        seconds = (
            sum(float(value or 0) * unit for value, unit in zip(match.groups(), (3600, 60, 1)))
            if match and any(match.groups())
            else math.nan
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ManifestError(f"budget {given!r} is not a duration; give e.g. 90s, 45m, 2h or 2h30m")
    return seconds


# ---------------------------------------------------------------- the report


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
            "release": self.manifest.name,
            "kind": self.kind,
            "device": self.device,
            "runtime": self.runtime,
            "precision": self.precision,
            "target": self.target,
            "elapsed_s": self.elapsed_s,
            "files": self.files,
            "nets": [
                {
                    "name": n.name,
                    "status": n.status,
                    "detail": n.detail,
                    "ref": n.ref,
                    "key": n.key,
                    "steps": n.step,
                    "total_steps": n.total,
                    "train_seconds": (n.result or {}).get("train_seconds"),
                    "top1_float32": ((n.result or {}).get("metrics_float32") or {}).get("top1"),
                    "weights_dtype": (n.result or {}).get("weights_dtype"),
                    "history": (n.result or {}).get("history") or n.history,
                    "latency": self.latency.get(n.name),
                }
                for n in self.nets
            ],
        }


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
    # Processes on a CPU (each needs a core), CUDA streams in one process on a GPU.
    jobs = (
        int((STREAMS if kind == "cuda" else CPU_PROCESSES).check(jobs, "jobs"))
        if jobs is not None
        else (4 if kind == "cuda" else usable_cores())
    )
    threads = cpu_threads_per_worker(jobs) if kind == "cpu" else None
    nets: list[NetRun] = []  # filled once planned: what an interrupted run reports
    with _reporting_interruption(nets):
        dataset = load_dataset(manifest.dataset, root=data_root)  # decoded once here; the workers read the cache
        log(
            f"release {manifest.name}: {kind} recipe on {torch_device} ({runtime}, {precision}), {jobs} at a time"
            f"{f', {threads} thread(s) each' if threads else ''}; data {manifest.dataset_label} "
            f"({len(dataset.train)} training, {len(dataset.test)} test images); target {target.display_url}"
        )
        nets.extend(plan_nets(manifest, kind, dataset, target, runtime, precision, only))
        commit = git_commit(manifest.path.parent)
        for net in nets:
            if net.status == "trained":
                publish_finished(manifest, kind, net, dataset, target, commit, log)
            elif net.status in ("held", "conflict"):
                log(f"{net.name}: {net.detail}")
        budget = budget_s if budget_s is not None else math.inf
        # What follows training: publishing, and latency of the nets a run can train (a GPU group at most).
        to_time = min(len(nets), jobs) if kind == "cuda" else len(nets)
        reserve = 20.0 + (LATENCY_S_PER_NET[kind] * to_time * (2 if kind == "cuda" else 1) if measure_latency else 0.0)
        partners = {name: tuple(n for n in pair if n != name) for pair in manifest.pairs for name in pair}
        scheduler = Scheduler(
            nets,
            {
                "kind": kind,
                "runtime": runtime,
                "precision": precision,
                "threads": threads,
                "jobs": jobs,
                "dataset": dataset,
                "dataset_ref": manifest.dataset,
                "data_root": data_root,
                "device": str(torch_device),
                "budget_s": budget - (time.monotonic() - began),
                "reserve_s": reserve,
                "partners": partners,
            },
            log,
        )
        scheduler.run(lambda net: publish_finished(manifest, kind, net, dataset, target, commit, log))
        report = ReleaseReport(manifest, kind, str(torch_device), runtime, precision, target.display_url, nets, 0.0)
        if measure_latency:
            left = budget - (time.monotonic() - began) - 10
            report.latency = measure_latencies(manifest, target, torch_device, kind, left, timing, log, only)
        report.elapsed_s = time.monotonic() - began
        return report


@contextmanager
def _reporting_interruption(nets: list[NetRun]) -> Iterator[None]:
    """Ctrl-C: an Interrupted that says what the run had done, once its workers have stopped."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(interruption_summary(nets)) from None


def interruption_summary(nets: list[NetRun]) -> str:
    """What a release run cut short had done, net by net (checkpoints and results are
    only ever replaced whole, so each is as its last epoch end left it)."""
    if not nets:
        return "before any net started; nothing was trained or published"

    def names(status: str, describe: Callable[[NetRun], str] = lambda net: net.name) -> str:
        return ", ".join(describe(net) for net in nets if net.status == status)

    def epochs(net: NetRun) -> str:
        done = checkpointed_epochs(net.job.checkpoint)
        return f"{net.name} ({done} epoch{'s' if done != 1 else ''} in its checkpoint)"

    parts = [
        (f"published {names('published', lambda n: n.ref or n.name)}", "published"),
        (f"stopped {names('interrupted', epochs)}", "interrupted"),
        (f"trained but not yet published {names('trained')}", "trained"),
        (f"already held {names('held')}", "held"),
        (f"not started {names('pending')}", "pending"),
    ]
    done = "; ".join(text for text, status in parts if any(net.status == status for net in nets))
    return done or "no net had changed"


def measure_latencies(
    manifest: Manifest,
    target: Registry,
    device: torch.device,
    kind: str,
    seconds_left: float,
    timing: Timing,
    log: Log,
    only: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Batch-1 float32 latency of every release entry in the target, on ``device``
    (eager; and one CUDA graph on a GPU), stored in the target by architecture.
    Rows already there are reused, so a second run measures nothing."""
    runtimes = ("eager", "graph") if kind == "cuda" else ("eager",)
    began = time.monotonic()
    out: dict[str, dict[str, Any]] = {}
    for name, held in release_entries(manifest, target).items():
        if only and name not in only:
            continue
        if time.monotonic() - began > seconds_left:
            log(f"{name}: latency not measured, the budget is spent")
            continue
        rows = {}
        for runtime in runtimes:
            row = latency(held[-1].spec, device=str(device), runtime=runtime, registry=target, timing=timing)
            rows[runtime] = {"median_ms": row.median_ms, "p90_ms": row.p90_ms, "device": row.device}
        out[name] = rows
        log(f"{name}: batch-1 latency " + ", ".join(f"{r} {v['median_ms']:.3f} ms" for r, v in rows.items()))
    return out


def ship_from(manifest: Manifest, source: Registry, target: Registry, log: Log = print) -> list[str]:
    """Copy every entry a run of this release published into ``source`` (a GPU
    machine's release registry, say) into ``target``, versions kept, sha256
    checked, and every latency row measured there (the GPU figures come home
    with the weights); what the target holds already is left alone."""
    copied = []
    for records in release_entries(manifest, source).values():
        for record in records:
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
