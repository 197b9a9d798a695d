"""Training curves in the style of the paper's Figure 6: thin dashed training
error and bold test error against iterations, one colour per net."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from reszoo.errors import ReszooError
from reszoo.zoo.records import EntryRecord


def plot_curves(entries: Sequence[EntryRecord], out: str | os.PathLike, *, title: str | None = None,
                labels: Sequence[str] | None = None) -> Path:
    """Draw every entry's per-epoch history into one PNG (or any format matplotlib knows by suffix),
    one colour per entry; ``labels`` name the curves in the legend (default: the entries' names)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    missing = [e.ref for e in entries if not e.history]
    if missing:
        raise ReszooError(f"no training history stored for {', '.join(missing)}; only trained entries have curves")
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    try:
        return _draw(figure, axes, plt, entries, out, title, labels)
    finally:
        plt.close(figure)


def _draw(figure, axes, plt, entries: Sequence[EntryRecord], out: str | os.PathLike, title: str | None,
          labels: Sequence[str] | None) -> Path:
    import textwrap

    from matplotlib.lines import Line2D

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, entry in enumerate(entries):
        colour = colours[index % len(colours)]
        steps = [h["iteration"] for h in entry.history]
        axes.plot(steps, [100 * h["train_err"] for h in entry.history], "--", linewidth=0.9, color=colour)
        axes.plot(steps, [100 * h["test_err"] for h in entry.history], "-", linewidth=2.2, color=colour,
                  label=labels[index] if labels else f"{entry.name} ({entry.spec.family}-{entry.spec.depth})")
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole: no "2.5" ticks on short runs
    axes.set_xlabel("iterations")
    axes.set_ylabel("error (%)")
    axes.set_ylim(bottom=0)
    heading = title or f"{entries[0].dataset or ''}"
    # Wrapped and small enough that a README's 700-pixel view shows all of it.
    axes.set_title("\n".join(textwrap.fill(line, 72) for line in heading.splitlines()), fontsize=9)
    axes.grid(alpha=0.3)
    handles, _ = axes.get_legend_handles_labels()
    styles = [Line2D([], [], color="grey", linestyle="--", linewidth=0.9, label="training error"),
              Line2D([], [], color="grey", linestyle="-", linewidth=2.2, label="test error")]
    axes.legend(handles=handles + styles, fontsize=8)
    figure.tight_layout()
    path = Path(out)
    figure.savefig(path)
    return path
