"""Building a release: train what the target registry lacks, publish it, measure it.

(The scheduling of the training is reszoo.release.scheduler's.)

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
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reszoo.devices import resolve_device, usable_cores
from reszoo.errors import ConflictError, Interrupted, ManifestError, ReszooError
from reszoo.latency.measure import DEFAULT_TIMING, Timing, latency
from reszoo.limits import CPU_PROCESSES, STREAMS
from reszoo.release.manifest import Manifest
from reszoo.release.scheduler import LATENCY_S_PER_NET, NetRun, Scheduler, checkpointed_epochs
from reszoo.release.worker import (
    Job,
    cpu_threads_per_worker,
    final_weights,
    read_result,
)
from reszoo.train.data import Dataset, fit_spec
from reszoo.train.data import load as load_dataset
from reszoo.train.precision import default_precision
from reszoo.train.publish import TrainedEntry, publish_trained
from reszoo.train.recipes import Recipe
from reszoo.zoo import weights as W
from reszoo.zoo.hub import home
from reszoo.zoo.records import EntryRecord
from reszoo.zoo.registry import Registry

Log = Callable[[str], None]

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


# ---------------------------------------------------------------- the plan


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


def release_key_of(entry: EntryRecord) -> tuple[str | None, str | None]:
    """(release name, recipe key) an entry was published with, if a release made it."""
    info = entry.recipe.get("release") or {}
    return info.get("name"), info.get("key")


def release_entries(manifest: Manifest, registry: Registry, kind: str | None = None) -> dict[str, list[EntryRecord]]:
    """Each manifest entry's versions in ``registry`` that this release made (of ``kind``, if given)."""
    out: dict[str, list[EntryRecord]] = {}
    for entry in manifest.entries:
        records = [
            e
            for e in registry.list(entry.name, all_versions=True)
            if release_key_of(e)[0] == manifest.name
            and (kind is None or (e.recipe.get("release") or {}).get("kind") == kind)
        ]
        if records:
            out[entry.name] = records
    return out


def git_commit(folder: Path) -> dict[str, Any] | None:
    """The commit the release code and manifest came from, and whether tracked files
    differed from it (a run from a dirty tree is not that commit's), if in a git checkout."""
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(status.strip())} if head else None


def run_folder(manifest: Manifest, kind: str) -> Path:
    """Where this release's checkpoints and results live: under $RESZOO_HOME, so
    that a run cut off by a session's end resumes in the next one."""
    return home() / "release" / manifest.name / kind


def plan_nets(
    manifest: Manifest,
    kind: str,
    dataset: Dataset,
    target: Registry,
    runtime: str,
    precision: str,
    only: list[str] | None = None,
) -> list[NetRun]:
    """Each entry's run (in priority order) and its state in ``target``; ``precision`` is the
    kind's, resolved for the device, which an entry's own ``precision`` replaces."""
    kind_recipe = manifest.kind(kind)
    folder = run_folder(manifest, kind)
    for name in only or []:
        manifest.entry(name)  # an unknown name is an error, with the list
    nets = []
    for entry in manifest.entries:
        if only and entry.name not in only:
            continue
        spec = fit_spec(entry.spec, dataset)
        key = manifest.recipe_key(entry.name, kind)
        own = entry.precisions.get(kind, "auto")
        job = Job(
            name=f"{entry.name}-{key}",
            spec=spec,
            recipe=manifest.recipe_for(entry.name, kind),
            runtime=runtime,
            precision=precision if own == "auto" else own,
            seed=manifest.seed,
            folder=folder,
            float16_tolerance=manifest.float16_tolerance,
        )
        net = NetRun(entry.name, spec, key, job)
        versions = target.list(entry.name, all_versions=True)
        held = [e for e in versions if release_key_of(e) == (manifest.name, key)]
        if held:
            net.status, net.ref, net.detail = "held", held[-1].ref, f"already in the target as {held[-1].ref}"
        elif kind_recipe.version is not None and any(e.version == kind_recipe.version for e in versions):
            net.status = "conflict"
            net.detail = (
                f"{entry.name}@{kind_recipe.version} exists in the target from another recipe or release; "
                f"remove it (reszoo rm) or give [recipes.{kind}] another version"
            )
        else:
            net.result = read_result(job)
            if net.result is not None:
                net.status, net.detail = "trained", "trained by an earlier run, not yet published"
        nets.append(net)
    return nets


# ---------------------------------------------------------------- publishing


def publish_net(
    manifest: Manifest, kind: str, net: NetRun, dataset: Dataset, target: Registry, commit: dict[str, Any] | None
) -> EntryRecord | None:
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
        size = sum(
            p.stat().st_size for p in (target.path, target.path.with_name(target.path.name + "-wal")) if p.exists()
        )
        blob = len(W.serialize(state))
        if size + blob > cap * 1e6:
            net.status = "over-cap"
            net.detail = (
                f"not published: {blob / 1e6:.1f} MB of weights would take {target.path.name} from "
                f"{size / 1e6:.1f} MB past its {cap:.0f} MB cap (max_registry_mb); its history and "
                "metrics are kept in the release summary"
            )
            return None
    delta = 100 * (result["metrics_float16"]["top1"] - result["metrics_float32"]["top1"])
    entry = TrainedEntry(
        dataset=dataset,
        metrics=result["metrics_float16" if half else "metrics_float32"],
        history=result["history"],
        recipe=Recipe.from_dict(result["recipe"]),
        seed=result["seed"],
        runtime=result["runtime"],
        precision=result["precision"],
        steps=result["steps"],
        seconds=result["train_seconds"],
        device=result["device"],
        extra_metrics={
            "top1_float32": result["metrics_float32"]["top1"],
            "top1_float16": result["metrics_float16"]["top1"],
            "weights_dtype": result["weights_dtype"],
        },
        extra_data={"label": manifest.dataset_label},
        release={
            "name": manifest.name,
            "kind": kind,
            "key": net.key,
            "manifest": manifest.path.name,
            **(commit or {"commit": None}),
        },
        notes=(
            f"release {manifest.name} ({kind} recipe); weights stored in {result['weights_dtype']} "
            f"(top-1 as float16 vs float32: {delta:+.2f} points)"
        ),
    )
    return publish_trained(target, net.name, state, net.spec, entry, version=manifest.kind(kind).version)


def _publish(
    manifest: Manifest,
    kind: str,
    net: NetRun,
    dataset: Dataset,
    target: Registry,
    commit: dict[str, Any] | None,
    log: Log,
) -> None:
    try:
        record = publish_net(manifest, kind, net, dataset, target, commit)
    except ConflictError as exc:
        net.status, net.detail = "conflict", str(exc)
        log(f"{net.name}: {exc}")
        return
    except ReszooError as exc:  # one net's bad checkpoint or a busy registry must not end the release
        net.status, net.detail = "failed", f"trained, but not published: {exc}"
        log(f"{net.name}: {net.detail}")
        return
    if record is None:
        log(f"{net.name}: {net.detail}")
        return
    net.status, net.ref = "published", record.ref
    top1 = 100 * (record.top1 or 0)
    net.detail = f"published {record.ref}: top-1 {top1:.2f}% ({record.dtypes})"
    log(f"{net.name}: {net.detail}")


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
                _publish(manifest, kind, net, dataset, target, commit, log)
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
        scheduler.run(lambda net: _publish(manifest, kind, net, dataset, target, commit, log))
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
