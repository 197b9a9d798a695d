"""The search's picture: every trial, the feasible Pareto front and the reference presets."""

from __future__ import annotations

import os
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
    """Accuracy against latency: feasible and infeasible trials, the front as a step line,
    presets as labelled stars, the limit as a vertical line."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    trained = [r for r in results if r.state == "COMPLETE" and r.latency_ms is not None]
    if not trained:
        raise SearchError("the study has no finished trial to plot yet")
    figure, axes = plt.subplots(figsize=(7, 4.8), dpi=120)
    try:
        feasible = [r for r in trained if r.usable]
        infeasible = [r for r in trained if r.feasible is False]
        # Presets over the limit were never trained: they have a latency and no accuracy, and are not drawn.
        references = {name: ref for name, ref in (references or {}).items() if ref.get("accuracy") is not None}
        accuracies = [100 * r.accuracy for r in feasible] + [100 * ref["accuracy"] for ref in references.values()]
        # The accuracy axis spans what was trained, not 0-100: the feasible nets are what a reader compares.
        low = min(accuracies, default=0.0)
        high = max(accuracies, default=100.0)
        pad = max(1.0, 0.08 * (high - low))
        bottom = low - 2 * pad
        axes.set_ylim(bottom, high + pad)
        if feasible:
            axes.scatter([r.latency_ms for r in feasible], [100 * r.accuracy for r in feasible], s=18,
                         color="tab:blue", alpha=0.6, label="feasible trials", zorder=2)
        if infeasible:
            # Never trained, so no accuracy: a row along the bottom edge, where their latency still shows.
            axes.scatter([r.latency_ms for r in infeasible], [bottom + 0.5 * pad] * len(infeasible), marker="x",
                         s=18, color="tab:gray", label="over the limit (not trained)", zorder=2)
        front = pareto_front(results, by="accuracy")  # drawn on the accuracy axis
        if front:
            axes.step([r.latency_ms for r in front], [100 * r.accuracy for r in front], where="post",
                      color="tab:blue", linewidth=2, label="Pareto front", zorder=1)
        for name, ref in (references or {}).items():
            # Hollow, so a trial of the same net stays visible under it.
            axes.scatter([ref["latency_ms"]], [100 * ref["accuracy"]], marker="*", s=160, facecolors="none",
                         edgecolors="tab:red", linewidths=1.4, zorder=3)
            axes.annotate(name, (ref["latency_ms"], 100 * ref["accuracy"]), textcoords="offset points",
                          xytext=(7, 5), color="tab:red", fontsize=8)
        if max_ms is not None:
            axes.axvline(max_ms, color="tab:red", linestyle=":", linewidth=1, label=f"limit {max_ms:g} ms")
        latencies = [r.latency_ms for r in trained] + [ref["latency_ms"] for ref in (references or {}).values()]
        if max(latencies) > 4 * min(latencies):
            axes.set_xscale("log")  # latencies spanning decades: linear would squeeze the fast nets together
        axes.set_xlabel("latency (ms, median)" + (", log scale" if axes.get_xscale() == "log" else ""))
        axes.set_ylabel("proxy validation accuracy (%)")
        axes.set_title(title or "search: accuracy against latency", fontsize=9)
        axes.grid(alpha=0.3, which="both")
        # Below the axes: a legend inside would cover the trials along the bottom edge.
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, fontsize=7, frameon=False)
        figure.tight_layout()
        path = Path(out)
        figure.savefig(path)
        return path
    finally:
        plt.close(figure)
