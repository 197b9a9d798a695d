"""An entry's record: the facts :meth:`Registry.add <reszoo.zoo.registry.Registry.add>`
takes, checked where they come in and turned into the columns stored, and the
record digest that covers them.

Every check names the value, what is expected and what to do, and runs before
anything is written. The record digest is one sha256 over the entry's name,
version, links (architecture digest, blob sha256), the weights' size and
dtypes, its metrics and every other column: with the blob's sha256 and the
spec's digest it makes an entry one hashed record, so that no link can be
re-pointed, nor a metric edited, unnoticed. It is stored with the entry and
checked on every read.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reszoo.errors import InputError
from reszoo.zoo.records import parse_ref
from reszoo.zoo.spec import canonical_json
from reszoo.zoo.store import _as_utc

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


#: What an entry's record digest covers: every column but its row id and the digest itself,
#: and the size and dtypes of its blob (whose bytes their sha256 covers).
RECORD_FIELDS = (
    "name", "version", "arch_digest", "blob_sha256", "blob_size", "dtypes", "dataset", "top1", "metrics_json",
    "history_json", "recipe_json", "data_json", "device", "parent", "study", "trial", "created_at", "created_by",
    "notes",
)
#: Names the scheme inside what is hashed: a later scheme cannot collide with this one.
_RECORD_SCHEME = "reszoo entry record 1"


def record_digest(values: Mapping[str, Any]) -> str:
    """The record digest of an entry whose :data:`RECORD_FIELDS` are ``values``
    (a row read back gives the digest it was stored with: times in UTC to the
    microsecond, numbers as the database returns them)."""
    record = {}
    for key in RECORD_FIELDS:
        value = values[key]
        record[key] = _as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if isinstance(value, datetime) else value
    text = json.dumps([_RECORD_SCHEME, record], sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


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
