"""The zoo's accuracy-latency front: every CIFAR-10 entry of a registry (the release's
and the nets a search published into it) at its batch-1 CPU latency, with the
search's limit (the reference's latency) marked; and the table of searched nets.

Drawn from the registry alone, as the release's other figures are, on the CPU label
that times the most of the zoo's nets (a release run at other threads, or one bench,
must not empty the picture).
"""

from __future__ import annotations

from pathlib import Path

from reszoo.zoo.records import EntryRecord
from reszoo.zoo.registry import Registry

#: The reference whose latency a search of the zoo's nets is limited by (the search's default).
REFERENCE = "resnet20"


def cpu_label(target: Registry, entries: list[EntryRecord], preferred: str | None = None) -> str | None:
    """The stored CPU label (model and threads) with eager float32 batch-1 rows for the most of ``entries``."""
    labels = [d for d in target.latency_devices() if d.startswith("cpu")]
    if preferred in labels:
        return preferred
    digests = {e.arch_digest for e in entries}

    def covered(label: str) -> int:
        return sum(target.latency_row(d, label, 1, "float32", "eager") is not None for d in digests)

    return max(labels, key=covered, default=None)


def cifar_entries(target: Registry, dataset: str | None) -> list[EntryRecord]:
    """Every version of every entry trained on ``dataset`` (as entries name it: ``cifar10``)."""
    return [e for e in target.list(all_versions=True) if e.dataset == dataset and e.top1 is not None]


def searched(entries: list[EntryRecord]) -> list[EntryRecord]:
    """The entries a search found (their lineage names a study)."""
    return [e for e in entries if e.study]


def draw_front(
    target: Registry, dataset: str | None, dataset_label: str, folder: Path, file: str = "zoo-front.png"
) -> str:
    """``folder/file``: top-1 against batch-1 CPU latency for ``dataset``'s entries; a status line."""
    from reszoo.site.chart import ChartPoint, plot_accuracy_latency

    entries = cifar_entries(target, dataset)
    label = cpu_label(target, entries)
    if label is None:
        return f"{file}: not drawn: no entry has a CPU latency row yet"
    points, untimed = [], []
    for entry in entries:
        row = target.latency_row(entry.arch_digest, label, 1, "float32", "eager")
        if row is None:
            untimed.append(entry.ref)
            continue
        points.append(ChartPoint(entry.ref, entry.spec.family, row.median_ms, entry.top1 or 0.0))
    if len(points) < 2:
        return f"{file}: not drawn: fewer than two entries are timed on {label}"
    reference = next((e for e in entries if e.name == REFERENCE), None)
    limit = target.latency_row(reference.arch_digest, label, 1, "float32", "eager") if reference else None
    title = (
        f"The zoo on {dataset_label}: test top-1 against batch-1 latency\n(eager float32, {label}"
        + (f"; not timed: {', '.join(untimed)}" if untimed else "")
        + ")"
    )
    plot_accuracy_latency(
        points,
        folder / file,
        title=title,
        limit_ms=None if limit is None else limit.median_ms,
        limit_label=f"{REFERENCE}'s latency (the search's limit)",
    )
    return f"{file}: drawn: {len(points)} entries on {label}"


def searched_section(target: Registry, dataset: str | None, label: str | None) -> list[str]:
    """zoo.md's table of the nets a search found and published, beside the hand-designed ones
    at their latency, and a link to the front."""
    entries = cifar_entries(target, dataset)
    found = searched(entries)
    lines = ["", "## Found by search", ""]
    if not found:
        return lines + ["No searched net is published yet.", "", "![the zoo's front](zoo-front.png)"]
    lines += [
        "Nets `reszoo search` found and trained with `--publish-best`; lineage names the study and trial "
        "(the study itself is kept in `studies/`). Latency: eager float32, batch 1, "
        f"{label or 'not measured'}.",
        "",
        "| net | version | spec | params | MACs | top-1 % | batch-1 CPU latency ms | study, trial |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in found:
        row = target.latency_row(entry.arch_digest, label, 1, "float32", "eager") if label else None
        lines.append(
            f"| {entry.name} | @{entry.version} | {entry.spec.summary()} | {entry.params / 1e6:.2f}M | "
            f"{entry.macs / 1e6:.1f}M | {100 * (entry.top1 or 0):.2f} | "
            f"{'—' if row is None else f'{row.median_ms:.2f}'} | {entry.study}, trial {entry.trial} |"
        )
    return lines + ["", "![the zoo's front: top-1 against batch-1 CPU latency](zoo-front.png)"]
