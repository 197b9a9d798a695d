"""Training curves in the style of the paper's Figure 6: thin dashed training
error and bold test error against iterations, one colour per net, all trained
the same way (one axis of iterations takes one recipe)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from reszoo.errors import InputError, ReszooError
from reszoo.zoo.records import EntryRecord

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def recipe_key(entry: EntryRecord) -> tuple[Any, ...]:
    """What must match for curves to share an axis: data set, recipe, length and batch."""
    recipe = entry.recipe or {}
    return (
        entry.dataset,
        recipe.get("name"),
        recipe.get("iterations") or None,
        None if recipe.get("iterations") else recipe.get("epochs"),
        recipe.get("batch_size"),
    )


def recipe_text(entry: EntryRecord) -> str:
    """``onecycle recipe, 15 epochs (5,865 iterations), batch 128``."""
    recipe = entry.recipe or {}
    if not recipe.get("name"):
        return "recipe not recorded"
    steps = recipe.get("steps")
    length = (
        f"{recipe['iterations']:,} iterations"
        if recipe.get("iterations")
        else f"{recipe.get('epochs')} epochs" + (f" ({steps:,} iterations)" if isinstance(steps, int) else "")
    )
    return f"{recipe['name']} recipe, {length}, batch {recipe.get('batch_size')}"


def curves_title(entries: Sequence[EntryRecord]) -> str:
    """The data set as the entries label it, the recipe they share, and the device if they share one."""
    first = entries[0]
    devices = {e.device for e in entries}
    return f"{(first.data or {}).get('label') or first.dataset or 'data set not recorded'}, {recipe_text(first)}" + (
        f", on {first.device}" if len(devices) == 1 and first.device else ""
    )


def alike(requests: Sequence[tuple[Sequence[EntryRecord], EntryRecord | None]]) -> list[EntryRecord]:
    """One entry per request, all trained alike, so that their curves share an axis.

    Args:
        requests: Per reference, every version of its name (oldest first) and the
            entry it pins (``name@2``, ``name:alias``), or ``None`` for a bare name.

    A bare name gets its newest version trained as every other reference can
    be (``plain56`` has only the CPU recipe's @1: ``resnet20`` then draws
    @1 as well, not its GPU @2). References that cannot be trained alike are
    refused, with the versions that are, if there are such.
    """

    def keys(versions: Sequence[EntryRecord], pinned: EntryRecord | None) -> list[tuple[Any, ...]]:
        return [recipe_key(pinned)] if pinned is not None else [recipe_key(e) for e in reversed(versions)]

    def pick(key: tuple[Any, ...], pins: bool = True) -> list[EntryRecord]:
        return [
            pinned if pins and pinned is not None else next(e for e in reversed(versions) if recipe_key(e) == key)
            for versions, pinned in requests
        ]

    def shared(pins: bool) -> tuple[Any, ...] | None:
        options = [keys(versions, pinned if pins else None) for versions, pinned in requests]
        return next((key for key in options[0] if all(key in other for other in options[1:])), None)

    key = shared(pins=True)
    if key is not None:
        return pick(key)
    first, *rest = [pinned or versions[-1] for versions, pinned in requests]
    differ = next(e for e in rest if recipe_key(e) != recipe_key(first))
    free = shared(pins=False)
    hint = (
        f"draw {' '.join(e.ref for e in pick(free, pins=False))} (trained alike)"
        if free is not None
        else "draw each recipe in a figure of its own (reszoo list --all-versions shows how each was trained)"
    )
    raise InputError(
        f"{first.ref} ({recipe_text(first)}) and {differ.ref} ({recipe_text(differ)}) were trained "
        f"differently, and one axis of iterations takes one recipe; {hint}"
    )


def curve_label(entry: EntryRecord) -> str:
    """``resnet20@1``; a name that does not say the depth also gets the architecture (``mine@1 (plain-20)``)."""
    spec = entry.spec
    return entry.ref if str(spec.depth) in entry.name else f"{entry.ref} ({spec.family}-{spec.depth})"


def plot_curves(
    entries: Sequence[EntryRecord],
    out: str | os.PathLike,
    *,
    title: str | None = None,
    labels: Sequence[str] | None = None,
) -> Path:
    """Draw every entry's per-epoch history into one PNG (or any format matplotlib knows by suffix);
    ``labels`` name the curves in the legend (default :func:`curve_label`)."""
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


def _draw(
    figure: Figure,
    axes: Axes,
    plt: ModuleType,  # matplotlib.pyplot, imported by the caller once the backend is chosen
    entries: Sequence[EntryRecord],
    out: str | os.PathLike,
    title: str | None,
    labels: Sequence[str] | None,
) -> Path:
    import textwrap

    from matplotlib.lines import Line2D

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, entry in enumerate(entries):
        colour = colours[index % len(colours)]
        steps = [h["iteration"] for h in entry.history]
        axes.plot(steps, [100 * h["train_err"] for h in entry.history], "--", linewidth=0.9, color=colour)
        axes.plot(
            steps,
            [100 * h["test_err"] for h in entry.history],
            "-",
            linewidth=2.2,
            color=colour,
            label=labels[index] if labels else curve_label(entry),
        )
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole: no "2.5" ticks on short runs
    axes.set_xlabel("iterations")
    axes.set_ylabel("error (%)")
    axes.set_ylim(bottom=0)
    heading = title or curves_title(entries)
    # Wrapped and small enough that a README's 700-pixel view shows all of it.
    axes.set_title("\n".join(textwrap.fill(line, 72) for line in heading.splitlines()), fontsize=9)
    axes.grid(alpha=0.3)
    handles, _ = axes.get_legend_handles_labels()
    styles = [
        Line2D([], [], color="grey", linestyle="--", linewidth=0.9, label="training error"),
        Line2D([], [], color="grey", linestyle="-", linewidth=2.2, label="test error"),
    ]
    axes.legend(handles=handles + styles, fontsize=8)
    figure.tight_layout()
    path = Path(out)
    figure.savefig(path)
    return path
