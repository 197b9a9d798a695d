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
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    try:
        feasible = [r for r in trained if r.usable]
        infeasible = [r for r in trained if r.feasible is False]
        if feasible:
            axes.scatter([r.latency_ms for r in feasible], [100 * r.accuracy for r in feasible], s=18,
                         color="tab:blue", alpha=0.5, label="feasible trials")
        if infeasible:
            # Never trained: drawn at the bottom, where their latency still shows.
            axes.scatter([r.latency_ms for r in infeasible], [0.0] * len(infeasible), marker="x", s=18,
                         color="tab:gray", label="over the limit (not trained)")
        front = pareto_front(results)
        if front:
            axes.step([r.latency_ms for r in front], [100 * r.accuracy for r in front], where="post",
                      color="tab:blue", linewidth=2, label="Pareto front")
        for name, ref in (references or {}).items():
            axes.scatter([ref["latency_ms"]], [100 * ref["accuracy"]], marker="*", s=140, color="tab:red", zorder=3)
            axes.annotate(name, (ref["latency_ms"], 100 * ref["accuracy"]), textcoords="offset points", xytext=(6, 4))
        if max_ms is not None:
            axes.axvline(max_ms, color="tab:red", linestyle=":", linewidth=1, label=f"limit {max_ms:g} ms")
        axes.set_xlabel("latency (ms, median)")
        axes.set_ylabel("proxy validation accuracy (%)")
        axes.set_title(title or "search: accuracy against latency")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right", fontsize="small")
        figure.tight_layout()
        path = Path(out)
        figure.savefig(path)
        return path
    finally:
        plt.close(figure)
