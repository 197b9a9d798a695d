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
from reszoo.release.build import ReleaseReport
from reszoo.release.front import cpu_label, draw_front, searched_section
from reszoo.release.manifest import Manifest
from reszoo.release.plan import release_entries
from reszoo.zoo.counting import count
from reszoo.zoo.records import EntryRecord
from reszoo.zoo.registry import Registry


def figure_file(name: str, kind: str) -> str:
    """The CPU build draws the manifest's file names; another kind adds its name
    (``degradation-20-56-cuda.png``), so neither overwrites the other."""
    if kind == "cpu":
        return name
    path = Path(name)
    return f"{path.stem}-{kind}{path.suffix}"


#: Recipe keys that record how a run went, not how it was asked to train: they differ
#: between any two nets and never make two curves incomparable.
_RUN_RECORD = {"release", "steps", "train_seconds", "precision"}


def mixed_recipes(entries: list[EntryRecord], manifest: Manifest) -> str | None:
    """Why ``entries`` cannot share one figure (``None`` if they can): every curve comes
    from one recipe and version; precisions may differ only among the manifest's
    ``interchangeable_precisions`` (those shown to learn alike)."""
    first = entries[0]
    asked = {k: v for k, v in first.recipe.items() if k not in _RUN_RECORD}
    for entry in entries[1:]:
        if entry.version != first.version:
            return f"{first.ref} and {entry.ref} are different versions"
        other = {k: v for k, v in entry.recipe.items() if k not in _RUN_RECORD}
        differ = sorted(k for k in asked.keys() | other.keys() if asked.get(k) != other.get(k))
        if differ:
            return f"{first.ref} and {entry.ref} were trained differently ({', '.join(differ)})"
    precisions = {e.recipe.get("precision", "float32") for e in entries}
    if len(precisions) > 1 and not precisions <= set(manifest.interchangeable_precisions):
        return (
            f"it mixes precisions {', '.join(sorted(precisions))}, not all listed in [release] "
            f"interchangeable_precisions"
        )
    return None


def draw_figures(manifest: Manifest, target: Registry, kind: str, folder: Path) -> dict[str, str]:
    """The manifest's figures from the latest ``kind`` version of each entry; a figure
    whose curves came from different recipes is not drawn (its status says why)."""
    from reszoo.train.plots import curve_label, curves_title, plot_curves

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
        mixed = mixed_recipes(entries, manifest)
        if mixed:
            status[file] = f"not drawn: {mixed}"
            continue
        precisions = [e.recipe.get("precision", "float32") for e in entries]
        devices = list(dict.fromkeys(e.device or "an unrecorded device" for e in entries))
        title = f"{figure.title}\n{curves_title(entries)}"
        title += f", {precisions[0]}" if len(set(precisions)) == 1 else ""
        title += f"\ntrained on {', '.join(devices)}" if len(devices) > 1 else ""
        title += f"\nnot yet trained: {', '.join(missing)}" if missing else ""
        # Several precisions in one figure: the legend says which curve is which.
        labels = None if len(set(precisions)) == 1 else [f"{curve_label(e)}, {p}" for e, p in zip(entries, precisions)]
        plot_curves(entries, folder / file, title=title, labels=labels)
        status[file] = (
            "drawn: "
            + ", ".join(e.ref for e in entries)
            + (f" (not yet trained: {', '.join(missing)})" if missing else "")
        )
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
        "plain56 ends with higher training error than plain20 (degradation)": compare(
            "plain56", "plain20", final_train_err
        ),
        "resnet56 ends with lower training error than resnet20": compare("resnet20", "resnet56", final_train_err),
        "resnet56's test error is below plain56's": compare("plain56", "resnet56", test_err),
        "resnet34 beats plain34 on test accuracy": compare("plain34", "resnet34", test_err),
    }


def _ordering(points: list[tuple[int, str, float]], rising: bool, what: str) -> str:
    """Whether ``what`` (``(depth, ref, value)`` in depth order) rises (or falls) with every
    step of depth; where it does not, the pair that breaks it."""
    if len(points) < 2:
        return "not enough depths trained yet"
    broken = [(a, b) for a, b in zip(points, points[1:]) if (b[2] > a[2]) != rising or b[2] == a[2]]
    shown = ", ".join(f"{ref} {100 * value:.2f}" for _, ref, value in points)
    if not broken:
        return f"holds ({what} %: {shown})"
    pairs = "; ".join(f"{b[1]} {100 * b[2]:.2f} vs {a[1]} {100 * a[2]:.2f}" for a, b in broken)
    return f"does not hold: {pairs} ({what} %: {shown})"


def _error_cell(record: EntryRecord | None) -> str:
    """``14.64 (resnet20)``: test error %, the entry, and its precision where not float32."""
    if record is None or record.top1 is None:
        return "—"
    precision = record.recipe.get("precision", "float32")
    return f"{100 * (1 - record.top1):.2f} ({record.name}{'' if precision == 'float32' else ', ' + precision})"


def table6(manifest: Manifest, target: Registry) -> list[str]:
    """The paper's Table 6 beside ours, one row per CIFAR depth, and the orderings of its
    Figure 6 checked on each build's stored histories."""
    held = release_entries(manifest, target)
    declared = [e for e in manifest.entries if e.spec.stem == "cifar"]  # a row for every depth, trained or not
    cifar = [e for e in declared if e.name in held]
    families = [f for f in ("residual", "plain", "highway") if any(e.spec.family == f for e in cifar)]
    versions = sorted({r.version for e in cifar for r in held[e.name]})
    columns = [
        (f, v)
        for f in families
        for v in versions
        if any(e.spec.family == f and any(r.version == v for r in held[e.name]) for e in cifar)
    ]
    lines = [
        "",
        "## Table 6: CIFAR-10 test error by depth",
        "",
        "Test error % on the whole test split (top-1 evaluated in float32); `@1` is the CPU recipe "
        "(one-cycle, 15 epochs), `@2` the paper's schedule on a GPU. The paper's column is its ResNet "
        "on the original CIFAR-10 after 64k iterations.",
        "",
        "| depth | params | paper (ResNet) | " + " | ".join(f"{f} @{v}" for f, v in columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    for depth in sorted({e.spec.depth for e in declared}):
        at_depth = [e for e in declared if e.spec.depth == depth]
        paper = next((e.paper_error for e in at_depth if e.paper_error is not None), None)
        cells = []
        for family, version in columns:
            record = next(
                (r for e in at_depth if e.spec.family == family for r in held.get(e.name, []) if r.version == version),
                None,
            )
            cells.append(_error_cell(record))
        residual = [e for e in at_depth if e.spec.family == "residual"] or at_depth
        params = count(residual[0].spec).params  # the paper's column is its ResNet's
        lines.append(
            f"| {depth} | {params / 1e6:.2f}M | {'—' if paper is None else f'{paper:.2f}'} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "The orderings of the paper's Figure 6, from the stored histories (nothing was tuned to make them hold):",
        "",
    ]

    def points(family: str, version: int, value: Callable[[EntryRecord], float | None]) -> list[tuple[int, str, float]]:
        """(depth, ref, value) of ``family``'s trained nets of ``version``, shallowest first."""
        out = []
        for entry in sorted((e for e in cifar if e.spec.family == family), key=lambda e: e.spec.depth):
            record = next((r for r in held[entry.name] if r.version == version), None)
            v = value(record) if record is not None else None
            if record is not None and v is not None:
                out.append((entry.spec.depth, record.ref, v))
        return out

    for version in versions:
        test_err = points("residual", version, lambda r: None if r.top1 is None else 1 - r.top1)
        train_err = points("plain", version, final_train_err)
        lines.append(
            f"- @{version}, residual nets, test error falls with depth: "
            f"{_ordering(test_err, rising=False, what='test error')}"
        )
        lines.append(
            f"- @{version}, plain nets, training error rises with depth: "
            f"{_ordering(train_err, rising=True, what='final training error')}"
        )
    return lines


def _fmt(value: float | None, digits: int = 2, scale: float = 100.0) -> str:
    return "—" if value is None else f"{scale * value:.{digits}f}"


def release_dataset(held: dict[str, list[EntryRecord]]) -> str | None:
    """The data set the release's entries name (``cifar10``; the manifest may give a path)."""
    return next((r.dataset for records in held.values() for r in records if r.dataset), None)


def zoo_table(manifest: Manifest, target: Registry, cpu_device: str | None = None) -> str:
    """``docs/zoo.md``: every trained version of every entry, with the paper's figure beside it."""
    held = release_entries(manifest, target)
    # The label (CPU model and threads) that times the most nets: a release run at other threads, or a
    # bench of one net, adds a label with a row or two, which must not empty the column.
    cpu = cpu_label(target, [record for records in held.values() for record in records], cpu_device)
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
    lines += table6(manifest, target)
    lines += searched_section(target, release_dataset(held), cpu)
    for kind in manifest.recipes:
        checks = degradation_checks(manifest, target, kind)
        if all(v is None for v in checks.values()):
            continue
        lines += ["", f"Checks on the {kind} build (from the stored histories):", ""]
        lines += [
            f"- {claim}: {'not trained yet' if ok is None else ('yes' if ok else 'NO')}" for claim, ok in checks.items()
        ]
    return "\n".join(lines) + "\n"


def write_report(
    manifest: Manifest,
    kind: str,
    target: Registry,
    folder: Path | None,
    report: ReleaseReport | None = None,
    log: Callable[[str], None] | None = None,
) -> list[str]:
    """Figures, ``zoo.md`` and the zoo site (``site/``, reszoo.site) into ``folder``; with a
    run's ``report``, also its summary (``zoo-release-KIND.json``, which keeps the history of
    nets trained but not published). ``log`` hears of every figure that was not drawn, and why."""
    if folder is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file, status in draw_figures(manifest, target, kind, folder).items():
        if status.startswith("drawn"):
            written.append(str(folder / file))
        elif log is not None:
            log(f"{file}: {status}")
    dataset = release_dataset(release_entries(manifest, target))
    status = draw_front(target, dataset, manifest.dataset_label, folder)
    if status.split(": ")[1] == "drawn":
        written.append(str(folder / "zoo-front.png"))
    elif log is not None:
        log(status)
    atomic_write_text(folder / "zoo.md", zoo_table(manifest, target))
    written.append(str(folder / "zoo.md"))
    from reszoo.site import write_site

    write_site(target, folder / "site")
    written.append(str(folder / "site"))
    # A run that found every net already held only redraws: the summary of the last run that did
    # something (its histories, its timings) is kept rather than replaced by an empty one.
    if report is not None and any(net.status != "held" for net in report.nets):
        summary: dict[str, Any] = {**report.to_dict(), "checks": degradation_checks(manifest, target, kind)}
        atomic_write_text(folder / f"zoo-release-{kind}.json", json.dumps(summary, indent=1) + "\n")
        written.append(str(folder / f"zoo-release-{kind}.json"))
    if report is not None:
        report.files = written
    return written
