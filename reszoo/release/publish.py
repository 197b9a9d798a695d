"""Publishing a release's finished nets: each net's weights (float16 where that keeps its
top-1) with its metrics, history, recipe and provenance (the release, its key, the
git commit) as ``name@version`` in the target, through reszoo.train.publish."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import torch

from reszoo.errors import ConflictError, ReszooError
from reszoo.release.manifest import Manifest
from reszoo.release.scheduler import Log, NetRun
from reszoo.release.worker import final_weights
from reszoo.train.data import Dataset
from reszoo.train.publish import TrainedEntry, publish_trained
from reszoo.train.recipes import Recipe
from reszoo.zoo import weights as W
from reszoo.zoo.records import EntryRecord
from reszoo.zoo.registry import Registry


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


def publish_finished(
    manifest: Manifest,
    kind: str,
    net: NetRun,
    dataset: Dataset,
    target: Registry,
    commit: dict[str, Any] | None,
    log: Log,
) -> None:
    """Publish a finished net (:func:`publish_net`) and record on it how that went: a
    conflict or a failure is noted and logged, never raised, so the release goes on."""
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
