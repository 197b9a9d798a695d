"""A release's plan: each manifest entry's run, keyed by its recipe, and its state in the
target (held, in conflict, trained and waiting to be published, or to be trained), and
the entries of the target a release made."""

from __future__ import annotations

from pathlib import Path

from reszoo.release.manifest import Manifest
from reszoo.release.scheduler import NetRun
from reszoo.release.worker import Job, read_result
from reszoo.train.data import Dataset, fit_spec
from reszoo.zoo.hub import home
from reszoo.zoo.records import EntryRecord
from reszoo.zoo.registry import Registry


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
