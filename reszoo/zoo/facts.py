"""An entry's facts in words: counts, metrics, per-class accuracy, recipe, provenance.

One wording wherever an entry is described: ``reszoo show``, the Hugging Face
model card (reszoo.export.card) and the zoo site (reszoo.site).
"""

from __future__ import annotations

import json
from typing import Any

from reszoo.zoo.records import EntryRecord


def human_count(n: int) -> str:
    """0.27M, 19.4M, 1.81G: millions from 10K up, as the paper's Table 6 writes them."""
    if n < 10_000:
        return f"{n:,}"
    value, unit = (n / 1e9, "G") if n >= 1e9 else (n / 1e6, "M")
    return f"{value:.2f}{unit}" if value < 10 else f"{value:.1f}{unit}"


def metrics_text(record: EntryRecord) -> str:
    """``top-1 87.61% on 10,000 test images, top-5 99.52%, loss 0.5302``, then any other metric, rounded."""
    metrics = dict(record.metrics)
    metrics.pop("per_class_top1", None)
    parts = []
    images = metrics.pop("test_images", None) or (record.data or {}).get("test_subset")
    images = images if isinstance(images, int) and not isinstance(images, bool) else None
    for key in ("top1", "top5"):
        if isinstance(metrics.get(key), (int, float)):
            parts.append(
                f"{key[:3]}-{key[3:]} {100 * metrics.pop(key):.2f}%"
                + (f" on {images:,} test images" if key == "top1" and images else "")
            )
    for key, value in metrics.items():
        if key.startswith("top1_") and isinstance(value, float):
            parts.append(f"{key.replace('_', ' ')} {100 * value:.2f}%")
        else:
            parts.append(
                f"{key.replace('_', ' ')} {value:.4g}"
                if isinstance(value, float)
                else f"{key.replace('_', ' ')} {value}"
            )
    return ", ".join(parts)


def per_class_text(record: EntryRecord) -> str | None:
    values = record.metrics.get("per_class_top1")
    if not isinstance(values, list) or not values:
        return None
    names = (record.data or {}).get("classes") or [str(i) for i in range(len(values))]
    return ", ".join(f"{name} {100 * v:.1f}" for name, v in zip(names, values))


def recipe_text(recipe: dict[str, Any]) -> str:
    """A recipe as a reader wants it: optimiser, schedule, length, augmentation, how it ran.
    A recipe not written by reszoo's trainer (an import's free-form dict) is shown as JSON."""
    numeric = ("lr", "momentum", "weight_decay", "batch_size")
    if not all(
        isinstance(recipe.get(k), (int, float)) and not isinstance(recipe.get(k), bool) for k in numeric
    ) or not all(isinstance(m, (int, float)) for m in recipe.get("milestones") or []):
        return json.dumps(recipe)
    length = f"{recipe['iterations']:,} iterations" if recipe.get("iterations") else f"{recipe.get('epochs')} epochs"
    schedule = (
        "one-cycle"
        if recipe.get("schedule") == "onecycle"
        else f"x{recipe.get('gamma')} at {', '.join(f'{m:.0%}' for m in recipe.get('milestones', []))}"
    )
    warmup = f", warm-up lr {recipe['warmup_lr']:g}" if recipe.get("warmup_lr") else ""
    lines = [
        f"{recipe.get('name')}: SGD lr {recipe['lr']:g}{' Nesterov' if recipe.get('nesterov') else ''}, momentum "
        f"{recipe.get('momentum'):g}, weight decay {recipe.get('weight_decay'):g}, batch {recipe.get('batch_size')}, "
        f"{schedule}, {length}{warmup}",
        f"augmentation: {recipe.get('crop_padding')}-px pad and crop{', flips' if recipe.get('flip') else ''}"
        + (f"; label smoothing {recipe['label_smoothing']:g}" if recipe.get("label_smoothing") else ""),
    ]
    ran = [f"{key} {recipe[key]}" for key in ("runtime", "precision", "seed") if recipe.get(key) is not None]
    if recipe.get("train_seconds"):
        ran.append(f"{recipe['train_seconds'] / 60:.1f} min, {recipe.get('steps', 0):,} steps")
    if ran:
        lines.append("ran: " + ", ".join(ran))
    return "\n".join(lines)


def recipe_summary(recipe: dict[str, Any]) -> str:
    """``paper, 64,000 it, batch 128``: a recipe in a table cell ("" for none)."""
    if not recipe:
        return ""
    length = (
        f"{recipe['iterations']:,} it"
        if recipe.get("iterations")
        else f"{recipe['epochs']} ep"
        if recipe.get("epochs")
        else None
    )
    batch = f"batch {recipe['batch_size']}" if recipe.get("batch_size") else None
    return ", ".join(str(part) for part in (recipe.get("name") or "custom", length, batch) if part)


def release_text(record: EntryRecord) -> str | None:
    """``zoo (cuda recipe), commit aa26b8d9a28d``: the release that built the entry, if one did."""
    release = (record.recipe or {}).get("release") or {}
    if not release:
        return None
    return f"{release.get('name')} ({release.get('kind')} recipe), commit {str(release.get('commit'))[:12]}" + (
        " (uncommitted changes)" if release.get("dirty") else ""
    )


def entry_facts(record: EntryRecord) -> list[tuple[str, str]]:
    """(label, text) for every fact the entry has, in the order a card shows them; the
    digests are left to the caller, which prints them whole."""
    facts = (
        ("data set", record.dataset),
        ("metrics", metrics_text(record)),
        ("per class", per_class_text(record)),
        ("trained on", record.device),
        ("recipe", recipe_text(record.recipe) if record.recipe else None),
        ("release", release_text(record)),
        ("parent", record.parent),
        ("study", f"{record.study} trial {record.trial}" if record.study else None),
        (
            "created",
            f"{record.created_at:%Y-%m-%d %H:%M} UTC" + (f" by {record.created_by}" if record.created_by else ""),
        ),
        ("params / MACs", f"{human_count(record.params)} / {human_count(record.macs)}"),
        ("weights", f"{record.blob_size:,} bytes, {record.dtypes}"),
        ("notes", record.notes),
    )
    return [(label, str(value)) for label, value in facts if value]


def history_cell(value: Any) -> str:
    """One cell of a history table: floats to four significant figures."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def shown_history(history: list[dict[str, Any]], rows: int = 12) -> list[dict[str, Any]]:
    """At most ``rows`` epochs of a history: the first three and the last ones."""
    return history if len(history) <= rows else history[:3] + history[-(rows - 3) :]


def has_curves(record: EntryRecord) -> bool:
    """Whether the stored history can be drawn as training curves (every epoch has its
    iteration, training and test error)."""
    return bool(record.history) and all({"iteration", "train_err", "test_err"} <= set(h) for h in record.history)
