"""The zoo's accuracy-latency chart: every entry's top-1 against its latency in one
setting (device, runtime, batch size), the entries no other beats on both drawn
as a front."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FAMILY_COLOURS = {"residual": "tab:blue", "plain": "tab:orange", "highway": "tab:green"}


@dataclass(frozen=True)
class ChartPoint:
    label: str  # name@version
    family: str
    latency_ms: float
    top1: float  # a fraction


def front(points: Sequence[ChartPoint]) -> list[ChartPoint]:
    """The points no other is both quicker (or as quick) and more accurate than, quickest first."""
    best: list[ChartPoint] = []
    for point in sorted(points, key=lambda p: (p.latency_ms, -p.top1)):
        if not best or point.top1 > best[-1].top1:
            best.append(point)
    return best


def plot_accuracy_latency(
    points: Sequence[ChartPoint],
    out: str | os.PathLike[str],
    *,
    title: str,
    limit_ms: float | None = None,
    limit_label: str = "latency limit",
) -> Path:
    """Draw ``points`` into a PNG at ``out``: top-1 (%) against median latency (ms), log
    scale where latencies span more than 4x, one colour per family, the front as a step line,
    and ``limit_ms`` (a search's latency limit, say) as a vertical line."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=100)
    try:
        for family, colour in FAMILY_COLOURS.items():
            chosen = [p for p in points if p.family == family]
            if chosen:
                axes.scatter(
                    [p.latency_ms for p in chosen],
                    [100 * p.top1 for p in chosen],
                    s=28,
                    color=colour,
                    label=family,
                    zorder=3,
                )
        best = front(points)
        axes.step(
            [p.latency_ms for p in best],
            [100 * p.top1 for p in best],
            where="post",
            color="grey",
            linewidth=1,
            linestyle="--",
            label="front",
            zorder=2,
        )
        if limit_ms is not None:
            axes.axvline(limit_ms, color="tab:red", linewidth=1, linestyle=":", label=limit_label, zorder=1)
        latencies = [p.latency_ms for p in points]
        if max(latencies) > 4 * min(latencies):
            from matplotlib.ticker import LogLocator, ScalarFormatter

            axes.set_xscale("log")
            axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axes.xaxis.set_major_formatter(ScalarFormatter())  # 2, 5, 10 ms rather than 2x10^0
            axes.xaxis.set_minor_formatter("")
        axes.set_xlabel("latency (ms, median)" + (", log scale" if axes.get_xscale() == "log" else ""))
        axes.set_ylabel("top-1 (%)")
        low, high = min(100 * p.top1 for p in points), max(100 * p.top1 for p in points)
        axes.set_ylim(low - 0.08 * (high - low) - 0.5, high + 0.15 * (high - low) + 0.5)  # room for the labels
        _label(figure, axes, points)
        axes.set_title(title, fontsize=9)
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=8, loc="best")
        figure.tight_layout()
        path = Path(out)
        figure.savefig(path)
        return path
    finally:
        plt.close(figure)


def _label(figure: Figure, axes: Axes, points: Sequence[ChartPoint]) -> None:
    """Name every point, each label moved up or down until it clears the ones placed before
    (nets of one size sit close together)."""
    figure.canvas.draw()  # settles the limits and scale, so data maps to pixels
    placed: list[tuple[float, float, float]] = []  # left, bottom and width of each label, in pixels
    height = 9.0 * figure.dpi / 72
    for point in sorted(points, key=lambda p: (-p.top1, p.latency_ms)):
        x, y = axes.transData.transform((point.latency_ms, 100 * point.top1))
        width = 0.6 * 7 * len(point.label) * figure.dpi / 72
        for shift in (3, 13, -11, 23, -21, 33, -31, -41):
            bottom = y + shift * figure.dpi / 72
            if all(
                not (abs(bottom - b) < height and x + 5 < left + w and left < x + 5 + width) for left, b, w in placed
            ):
                break
        placed.append((x + 5, bottom, width))
        axes.annotate(
            point.label,
            (point.latency_ms, 100 * point.top1),
            textcoords="offset points",
            xytext=(5, shift),
            fontsize=7,
            arrowprops=None if abs(shift) < 12 else {"arrowstyle": "-", "color": "grey", "linewidth": 0.5},
        )
