"""``write_site``: a registry's entries as a static HTML site in one folder.

The folder holds ``index.html`` (a sortable table of every entry and the
accuracy-latency charts), one page per entry (``NAME-vVERSION.html``, with its
training curves ``NAME-vVERSION.png``), ``style.css``, ``sort.js`` and
``site.json`` (what was written, for the next run to remove what it no
longer writes). Plain files: they open from disk, with no server and nothing
fetched from the network. Everything is read from the registry, so writing the
site again from the same registry writes the same pages.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

from reszoo.files import atomic_write_text, ensure_folder
from reszoo.site.assets import SORT_JS, STYLE_CSS
from reszoo.site.chart import ChartPoint, plot_accuracy_latency
from reszoo.site.pages import EntryPage, Setting, entry_page, index_page
from reszoo.zoo.facts import has_curves
from reszoo.zoo.presets import natural_key
from reszoo.zoo.records import LatencyRecord
from reszoo.zoo.registry import Registry

MANIFEST = "site.json"
#: Accuracy-latency charts drawn at most (the settings covering the most entries).
MAX_CHARTS = 4


def _settings(pages: list[EntryPage]) -> list[Setting]:
    """Batch-1 float32 settings by how many entries they time, CPUs and eager first on ties."""
    covered: Counter[Setting] = Counter()
    for page in pages:
        for setting in {
            Setting(row.device, row.runtime) for row in page.latency if row.batch_size == 1 and row.dtype == "float32"
        }:
            covered[setting] += 1
    return sorted(
        covered, key=lambda s: (-covered[s], not s.device.startswith("cpu"), s.runtime != "eager", s.device, s.runtime)
    )


def _median(rows: tuple[LatencyRecord, ...], setting: Setting) -> float | None:
    for row in rows:
        if (row.device, row.runtime, row.batch_size, row.dtype) == (setting.device, setting.runtime, 1, "float32"):
            return row.median_ms
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def write_site(registry: Registry, out: str | os.PathLike[str], *, source: str | None = None) -> list[Path]:
    """Write the site of every entry (every version) of ``registry`` into the folder ``out``.

    Args:
        source: How the registry is named on the pages (default: its file name, or its URL
            without the password).

    Returns:
        The files written.
    """
    from reszoo.train.plots import plot_curves

    out = ensure_folder(out, "the site folder")
    records = sorted(registry.list(all_versions=True), key=lambda r: (natural_key(r.name), r.version))
    rows_by_digest = {digest: tuple(registry.latency(digest)) for digest in {r.arch_digest for r in records}}
    written: list[Path] = []
    pages = []
    for record in records:
        figure = None
        if has_curves(record):
            figure = f"{record.name}-v{record.version}.png"
            written.append(plot_curves([record], out / figure, title=f"{record.ref} on {record.dataset}"))
        pages.append(EntryPage(record, rows_by_digest[record.arch_digest], figure))
    settings = _settings(pages)
    charts = []
    for setting in settings[:MAX_CHARTS]:
        points = [
            ChartPoint(p.record.ref, p.record.spec.family, ms, p.record.top1)
            for p in pages
            if p.record.top1 is not None and (ms := _median(p.latency, setting)) is not None
        ]
        if len(points) >= 2:
            file = f"chart-{_slug(setting.runtime + '-' + setting.device)}.png"
            title = f"the zoo: top-1 against latency, {setting}"
            written.append(plot_accuracy_latency(points, out / file, title=title))
            charts.append((file, setting))
    primary = settings[0] if settings else None
    latency = {p.record.arch_digest: ms for p in pages if primary and (ms := _median(p.latency, primary)) is not None}
    source = source or (registry.path.name if registry.path is not None else registry.display_url)
    known = {p.record.ref for p in pages}
    for page in pages:
        versions = [r for r in records if r.name == page.record.name]
        written.append(atomic_write_text(out / page.file, entry_page(page, versions, known)))
    written += [
        atomic_write_text(out / "index.html", index_page(pages, latency, primary, charts, source)),
        atomic_write_text(out / "style.css", STYLE_CSS),
        atomic_write_text(out / "sort.js", SORT_JS),
    ]
    _remove_stale(out, {path.name for path in written} | {MANIFEST})
    summary = {
        "source": source,
        "entries": [p.record.ref for p in pages],
        "latency": str(primary) if primary else None,
        "files": sorted(path.name for path in written),
    }
    written.append(atomic_write_text(out / MANIFEST, json.dumps(summary, indent=1) + "\n"))
    return written


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Remove the files an earlier run listed in ``site.json`` that this run did not write
    (an entry removed since); files the site never wrote are left alone."""
    try:
        earlier = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return
    for name in earlier:
        if isinstance(name, str) and name not in keep and "/" not in name and name not in ("", ".", ".."):
            (out / name).unlink(missing_ok=True)
