"""What a release shows: the degradation figures, the zoo table and the checks.

Everything here is read back from the target registry (the entries and
their stored histories and latency rows), so the figures and the table
describe exactly what a user pulls, and drawing them again changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reszoo.files import atomic_write_text
from reszoo.release.build import ReleaseReport, release_entries
from reszoo.release.manifest import Manifest
from reszoo.zoo.records import EntryRecord
from reszoo.zoo.registry import Registry


def figure_file(name: str, kind: str) -> str:
    """The CPU build draws the manifest's file names; another kind adds its name
    (``degradation-20-56-cuda.png``), so neither overwrites the other."""
    if kind == "cpu":
        return name
    path = Path(name)
    return f"{path.stem}-{kind}{path.suffix}"


def draw_figures(manifest: Manifest, target: Registry, kind: str, folder: Path) -> dict[str, str]:
    """The manifest's figures from the latest ``kind`` version of each entry."""
    from reszoo.train.plots import curves_title, plot_curves

    held = release_entries(manifest, target, kind)
    status = {}
    folder.mkdir(parents=True, exist_ok=True)
    for figure in manifest.figures:
        file = figure_file(figure.file, kind)
        entries = [held[name][-1] for name in figure.entries if name in held]
        missing = [name for name in figure.entries if name not in held]
        if not entries:
            status[file] = "not drawn: none of its entries are trained yet"
            continue
        plot_curves(entries, folder / file, title=f"{figure.title}\n{curves_title(entries)}")
        status[file] = "drawn: " + ", ".join(e.ref for e in entries) + (
            f" (not yet trained: {', '.join(missing)})" if missing else "")
    return status


def final_train_err(entry: EntryRecord | None) -> float | None:
    return entry.history[-1]["train_err"] if entry is not None and entry.history else None


def degradation_checks(manifest: Manifest, target: Registry, kind: str) -> dict[str, bool | None]:
    """The paper's findings, from the stored histories of this kind's latest versions
    (``None``: an entry is not trained yet)."""
    held = {name: records[-1] for name, records in release_entries(manifest, target, kind).items()}

    def compare(a: str, b: str, value: Callable[[EntryRecord], float | None]) -> bool | None:
        va = value(held[a]) if a in held else None
        vb = value(held[b]) if b in held else None
        return None if va is None or vb is None else va > vb

    def test_err(entry: EntryRecord) -> float | None:
        return None if entry.top1 is None else 1 - entry.top1

    return {
        "plain56 ends with higher training error than plain20 (degradation)":
            compare("plain56", "plain20", final_train_err),
        "resnet56 ends with lower training error than resnet20": compare("resnet20", "resnet56", final_train_err),
        "resnet56's test error is below plain56's": compare("plain56", "resnet56", test_err),
        "resnet34 beats plain34 on test accuracy": compare("plain34", "resnet34", test_err),
    }


def _fmt(value: float | None, digits: int = 2, scale: float = 100.0) -> str:
    return "—" if value is None else f"{scale * value:.{digits}f}"


def zoo_table(manifest: Manifest, target: Registry, cpu_device: str | None = None) -> str:
    """``docs/zoo.md``: every trained version of every entry, with the paper's figure beside it."""
    held = release_entries(manifest, target)
    cpu_rows = [d for d in target.latency_devices() if d.startswith("cpu")]
    digests = {record.arch_digest for records in held.values() for record in records}

    def covered(device: str) -> int:  # how many of the zoo's nets have a row at this label
        return sum(target.latency_row(d, device, 1, "float32", "eager") is not None for d in digests)

    # The label (CPU model and threads) that times the most nets: a release run at other threads, or a
    # bench of one net, adds a label with a row or two, which must not empty the column.
    cpu = cpu_device if cpu_device in cpu_rows else max(cpu_rows, key=covered, default=None)
    lines = [
        f"# The zoo ({manifest.name})",
        "",
        f"Built by `reszoo release {manifest.path.name}` from the entries of the shipped `registry.db`; "
        "regenerated on every release run, never edited by hand.",
        "",
        f"Top-1 is on the whole {manifest.dataset_label} test split, evaluated in float32 with the weights as "
        "stored. The paper's Table 6 error is on the original CIFAR-10 after its full schedule (64k "
        "iterations, about 164 epochs); these nets saw other data and the recipe shown, so the two columns "
        "are context, not a like-for-like comparison.",
        "",
        f"Batch-1 CPU latency: eager float32, measured on {cpu or 'no CPU yet'}. Training minutes are wall "
        "time on the device named, whatever else ran there (the CPU builds shared a 2-core machine, one "
        "thread each, with other work).",
        "",
        "| net | version | params | top-1 % | test error % | paper Table 6 error % | recipe | device | "
        "training min | weights | batch-1 CPU latency ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in manifest.entries:
        for record in held.get(entry.name, []):
            recipe = record.recipe
            length = f"{recipe['epochs']} ep" if recipe.get("epochs") else f"{recipe.get('iterations')} it"
            row = target.latency_row(record.arch_digest, cpu, 1, "float32", "eager") if cpu else None
            minutes = recipe.get("train_seconds")
            lines.append(
                f"| {record.name} | @{record.version} | {record.params / 1e6:.2f}M | {_fmt(record.top1)} | "
                f"{_fmt(None if record.top1 is None else 1 - record.top1)} | "
                f"{'—' if entry.paper_error is None else f'{entry.paper_error:.2f}'} | "
                f"{recipe.get('name')}, {length}, batch {recipe.get('batch_size')} | {record.device} | "
                f"{'—' if minutes is None else f'{minutes / 60:.1f}'} | {record.metrics.get('weights_dtype', '—')} | "
                f"{'—' if row is None else f'{row.median_ms:.2f}'} |"
            )
    for kind in manifest.recipes:
        checks = degradation_checks(manifest, target, kind)
        if all(v is None for v in checks.values()):
            continue
        lines += ["", f"Checks on the {kind} build (from the stored histories):", ""]
        lines += [f"- {claim}: {'not trained yet' if ok is None else ('yes' if ok else 'NO')}"
                  for claim, ok in checks.items()]
    return "\n".join(lines) + "\n"


def write_report(manifest: Manifest, kind: str, target: Registry, folder: Path | None,
                 report: ReleaseReport | None = None) -> list[str]:
    """Figures and ``zoo.md`` into ``folder``; with a run's ``report``, also its summary
    (``zoo-release-KIND.json``, which keeps the history of nets trained but not published)."""
    if folder is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file, status in draw_figures(manifest, target, kind, folder).items():
        if status.startswith("drawn"):
            written.append(str(folder / file))
    atomic_write_text(folder / "zoo.md", zoo_table(manifest, target))
    written.append(str(folder / "zoo.md"))
    # A run that found every net already held only redraws: the summary of the last run that did
    # something (its histories, its timings) is kept rather than replaced by an empty one.
    if report is not None and any(net.status != "held" for net in report.nets):
        summary: dict[str, Any] = {**report.to_dict(), "checks": degradation_checks(manifest, target, kind)}
        atomic_write_text(folder / f"zoo-release-{kind}.json", json.dumps(summary, indent=1) + "\n")
        written.append(str(folder / f"zoo-release-{kind}.json"))
    if report is not None:
        report.files = written
    return written
