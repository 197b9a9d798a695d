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
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import torch

from reszoo.errors import InputError
from reszoo.zoo.records import parse_ref
from reszoo.zoo.spec import canonical_json
from reszoo.zoo.store import _as_utc

MAX_INT32 = 2**31 - 1
#: The longest text each free-text fact may be, in characters.
TEXT_LIMITS = {"dataset": 200, "device": 200, "study": 500, "created_by": 200, "notes": 20_000}
#: The dtypes weights may be stored in (``add(weights_dtype=...)``); each loads back as float32.
WEIGHTS_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


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
    for field_name, text in (
        ("dataset", dataset),
        ("device", device),
        ("study", study),
        ("created_by", created_by),
        ("notes", notes),
    ):
        check_text(field_name, text, TEXT_LIMITS[field_name])
    if parent is not None and not isinstance(parent, str):
        raise InputError(
            f"parent must be a reference such as 'resnet20@1', got {parent!r}", field="parent", value=parent
        )
    metrics = check_mapping("metrics", metrics)
    top1 = metrics.get("top1")
    if top1 is not None:
        check_fraction("metrics top1", top1)
    if history is not None and (
        isinstance(history, (str, bytes, Mapping)) or not all(isinstance(h, Mapping) for h in history)
    ):
        raise InputError(
            "history must be a list of per-epoch dicts ([{'epoch': 1, 'test_err': 0.3}, ...])", field="history"
        )
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
    "name",
    "version",
    "arch_digest",
    "blob_sha256",
    "blob_size",
    "dtypes",
    "dataset",
    "top1",
    "metrics_json",
    "history_json",
    "recipe_json",
    "data_json",
    "device",
    "parent",
    "study",
    "trial",
    "created_at",
    "created_by",
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
    text = json.dumps(
        [_RECORD_SCHEME, record], sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def check_weights_dtype(value: Any) -> torch.dtype | None:
    """The dtype ``add(weights_dtype=...)`` names (``torch.float16`` or ``"float16"``), if any."""
    if value is None:
        return None
    name = str(value).removeprefix("torch.") if isinstance(value, (str, torch.dtype)) else None
    if name not in WEIGHTS_DTYPES:
        raise InputError(
            f"weights_dtype must be a floating dtype to store weights in: float16, bfloat16 or float32 "
            f"(torch.float16 or 'float16'), got {value!r}; leave it out to keep the weights' own dtypes",
            field="weights_dtype",
            value=value,
        )
    return WEIGHTS_DTYPES[name]


def check_fraction(field: str, value: Any) -> float:
    """A top-1 accuracy as a fraction: a real number from 0 to 1 (never NaN, a bool or text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InputError(
            f"{field} is a top-1 fraction from 0 to 1 (0.91 for 91%), got {value!r}", field=field, value=value
        )
    return float(value)


def check_positive(field: str, value: Any, unit: str) -> float:
    """A finite number above 0 (a latency, a limit)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InputError(
            f"{field} must be a number of {unit} above 0 (e.g. 2.5), got {value!r}", field=field, value=value
        )
    return float(value)


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
