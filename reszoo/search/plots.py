"""The search's picture: every trial, the feasible Pareto front and the reference presets."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reszoo.errors import SearchError
from reszoo.search.results import TrialResult, pareto_front


def plot_pareto(
    results: list[TrialResult],
    out: str | os.PathLike,
    *,
    references: Mapping[str, Mapping[str, Any]] | None = None,
    max_ms: float | None = None,
    title: str | None = None,
) -> Path:
    """Accuracy against latency: trained trials, the front as a step line, presets as labelled
    stars and the limit as a vertical line; below, on a strip of its own that has no accuracy
    axis, the trials over the limit (never trained, so they have a latency and no accuracy)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    figure = pareto_figure(results, references=references, max_ms=max_ms, title=title)
    try:
        path = Path(out)
        figure.savefig(path)
        return path
    finally:
        plt.close(figure)


def pareto_figure(
    results: list[TrialResult],
    *,
    references: Mapping[str, Mapping[str, Any]] | None = None,
    max_ms: float | None = None,
    title: str | None = None,
) -> Any:
    """The figure :func:`plot_pareto` saves (a matplotlib Figure; the caller closes it)."""
    import matplotlib.pyplot as plt

    trained = [r for r in results if r.state == "COMPLETE" and r.feasible is not False and r.latency_ms is not None]
    over = [r for r in results if r.feasible is False and r.latency_ms is not None]
    if not trained and not over:
        raise SearchError("the study has no finished trial to plot yet")
    figure, (axes, strip) = plt.subplots(
        2, 1, sharex=True, figsize=(7, 5.2), dpi=120, height_ratios=(6, 1), layout="constrained"
    )
    feasible = [r for r in trained if r.usable]
    # Presets over the limit were never trained: they have a latency and no accuracy, and are not drawn.
    references = {name: ref for name, ref in (references or {}).items() if ref.get("accuracy") is not None}
    accuracies = [100 * r.known_accuracy for r in feasible] + [100 * ref["accuracy"] for ref in references.values()]
    # The accuracy axis spans what was trained, not 0-100: the feasible nets are what a reader compares.
    low, high = min(accuracies, default=0.0), max(accuracies, default=100.0)
    pad = max(1.0, 0.08 * (high - low))
    axes.set_ylim(low - pad, high + pad)
    if feasible:
        axes.scatter(
            [r.latency_ms for r in feasible],
            [100 * r.known_accuracy for r in feasible],
            s=18,
            color="tab:blue",
            alpha=0.6,
            label="trained trials",
            zorder=2,
        )
    front = pareto_front(results, by="accuracy")  # drawn on the accuracy axis
    if front:
        axes.step(
            [r.latency_ms for r in front],
            [100 * r.known_accuracy for r in front],
            where="post",
            color="tab:blue",
            linewidth=2,
            label="Pareto front",
            zorder=1,
        )
    for name, ref in references.items():
        # Hollow, so a trial of the same net stays visible under it.
        axes.scatter(
            [ref["latency_ms"]],
            [100 * ref["accuracy"]],
            marker="*",
            s=160,
            facecolors="none",
            edgecolors="tab:red",
            linewidths=1.4,
            zorder=3,
        )
        axes.annotate(
            name,
            (ref["latency_ms"], 100 * ref["accuracy"]),
            textcoords="offset points",
            xytext=(7, 5),
            color="tab:red",
            fontsize=8,
        )
    # The strip has no accuracy: over-limit trials sit on its one line, where only their latency reads.
    strip.scatter(
        [r.latency_ms for r in over],
        [0.0] * len(over),
        marker="x",
        s=18,
        color="tab:gray",
        label="over the limit (not trained)",
        zorder=2,
    )
    strip.set_yticks([])
    strip.set_ylim(-1, 1)
    strip.set_ylabel("over the\nlimit", rotation=0, ha="right", va="center", fontsize=7)
    if max_ms is not None:
        for panel in (axes, strip):
            panel.axvline(
                max_ms,
                color="tab:red",
                linestyle=":",
                linewidth=1,
                label=f"limit {max_ms:.3g} ms" if panel is axes else None,
            )
    latencies = (
        [r.latency_ms for r in trained + over]
        + [ref["latency_ms"] for ref in references.values()]
        + ([max_ms] if max_ms is not None else [])
    )
    if max(latencies) > 4 * min(latencies):
        axes.set_xscale("log")  # latencies spanning decades: linear would squeeze the fast nets together
    strip.set_xlabel("latency (ms, median)" + (", log scale" if axes.get_xscale() == "log" else ""))
    axes.set_ylabel("proxy validation accuracy (%)")
    # Wrapped to the figure's width: a long study name or device must not run off the edge.
    axes.set_title(textwrap.fill(title or "search: accuracy against latency", 80), fontsize=9)
    axes.grid(alpha=0.3, which="both")
    strip.grid(alpha=0.3, axis="x", which="both")
    handles, labels = axes.get_legend_handles_labels()
    strip_handles, strip_labels = strip.get_legend_handles_labels()
    figure.legend(
        handles + strip_handles, labels + strip_labels, loc="outside lower center", ncol=4, fontsize=7, frameon=False
    )
    return figure
