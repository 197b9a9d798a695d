"""An entry's record: the facts :meth:`Registry.add <reszoo.zoo.registry.Registry.add>`
takes, checked where they come in and turned into the columns stored.

Every check names the value, what is expected and what to do, and runs before
anything is written.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from typing import Any

from reszoo.errors import InputError
from reszoo.zoo.records import parse_ref
from reszoo.zoo.spec import canonical_json

MAX_INT32 = 2**31 - 1
#: The longest text each free-text fact may be, in characters.
TEXT_LIMITS = {"dataset": 200, "device": 200, "study": 500, "created_by": 200}


def entry_columns(
    *,
    dataset: Any,
    metrics: Any,
    history: Any,
    recipe: Any,
    data: Any,
    device: Any,
    parent: Any,
    study: Any,
    trial: Any,
    notes: Any,
    created_by: Any,
) -> dict[str, Any]:
    """The entry's columns (all but its name, version and links) from what ``add`` was given."""
    if trial is not None:
        check_int("trial", trial, 0, MAX_INT32)
    for field_name, text in (("dataset", dataset), ("device", device), ("study", study), ("created_by", created_by)):
        check_text(field_name, text, TEXT_LIMITS[field_name])
    metrics = check_mapping("metrics", metrics)
    top1 = metrics.get("top1")
    if top1 is not None and not (isinstance(top1, (int, float)) and not isinstance(top1, bool) and 0 <= top1 <= 1):
        raise InputError(f"metrics top1 is a fraction between 0 and 1 (0.91 for 91%), got {top1!r}", field="top1")
    if history is not None and (
        isinstance(history, (str, bytes, Mapping)) or not all(isinstance(h, Mapping) for h in history)
    ):
        raise InputError("history must be a list of per-epoch dicts ([{'epoch': 1, 'test_err': 0.3}, ...])",
                         field="history")
    return dict(
        dataset=dataset,
        top1=float(top1) if top1 is not None else None,
        metrics_json=json_text(metrics, "metrics"),
        history_json=json_text([dict(h) for h in history or []], "history"),
        recipe_json=json_text(check_mapping("recipe", recipe), "recipe"),
        data_json=json_text(check_mapping("data", data), "data"),
        device=device,
        parent=str(parse_ref(parent)) if parent else None,
        study=study,
        trial=trial,
        created_by=created_by or _user(),
        notes=notes,
    )


def check_text(field: str, value: Any, limit: int) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise InputError(f"{field} must be text of at most {limit} characters, got {value!r:.80}", field=field)


def check_int(field: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InputError(f"{field} must be an integer from {low} to {high}, got {value!r}", field=field, value=value)


def check_mapping(field: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{field} must be a dict, got {type(value).__name__}", field=field)
    return dict(value)


def json_text(value: Any, what: str) -> str:
    try:
        return canonical_json(value if value is not None else {})
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be JSON-serialisable without NaN or infinity: {exc}", field=what) from None


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return None
