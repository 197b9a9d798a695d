"""Frozen records the registry hands to callers (never ORM rows), and references.

A reference names an entry as ``name`` (its latest version), ``name@3`` or
``name:alias``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from reszoo.errors import InputError
from reszoo.zoo.spec import ArchSpec

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,99}")
#: Resolved by the registry (highest version), never stored.
LATEST = "latest"


@dataclass(frozen=True)
class Ref:
    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.alias is not None:
            return f"{self.name}:{self.alias}"
        return self.name


#: The highest version number a reference can name (versions are 32-bit in every backend).
MAX_VERSION = 2**31 - 1


def check_version(version: object) -> int:
    """One rule for a version however it arrives (add, publish, pull, a reference):
    a whole number from 1 to MAX_VERSION; never a bool, a string or 0."""
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_VERSION:
        raise InputError(
            f"version must be a whole number from 1 to {MAX_VERSION}, got {version!r}", field="version", value=version
        )
    return version


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InputError(
            f"entry name {name!r} is not valid: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 200 characters",
            field="name",
            value=name,
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
        raise InputError(
            f"alias {alias!r} is not valid: start with a letter, then letters, digits, '.', '_' or '-'",
            field="alias",
            value=alias,
        )
    return alias


_REF_RE = re.compile(r"(?P<name>[^@:]+)(?:@(?P<version>[0-9]+)|:(?P<alias>[^@:]+))?")


def parse_ref(ref: str | Ref) -> Ref:
    """``resnet56``, ``resnet56@3`` or ``resnet56:best`` to a :class:`Ref`."""
    if isinstance(ref, Ref):
        return ref
    text = str(ref).strip()
    match = _REF_RE.fullmatch(text)
    if match is None:
        raise InputError(
            f"bad reference {text!r}: write NAME, NAME@VERSION (a positive number) or NAME:ALIAS",
            field="ref",
            value=text,
        )
    name = check_name(match["name"])
    if match["version"] is not None:
        version = int(match["version"])
        if not 1 <= version <= MAX_VERSION:
            raise InputError(f"bad reference {text!r}: versions run from 1 to {MAX_VERSION}", field="ref", value=text)
        return Ref(name, version=version)
    if match["alias"] is not None and match["alias"] != LATEST:
        return Ref(name, alias=check_alias(match["alias"]))
    return Ref(name)


@dataclass(frozen=True)
class ArchitectureRecord:
    digest: str
    spec: ArchSpec
    name: str | None
    params: int
    macs: int


#: A latency row whose p90 is over this many times its median was taken on a busy
#: machine. Quiet rows on this project's 2-core CPU read p90/median 1.02-1.3 and
#: on an H200 1.00-1.12; a resnet20 row stored while other processes ran read
#: 10.8 ms median with a 60 ms p90 (5.5x) against about 2 ms quiet.
NOISY_P90_RATIO = 1.5


@dataclass(frozen=True)
class LatencyRecord:
    arch_digest: str
    device: str
    batch_size: int
    dtype: str
    runtime: str
    median_ms: float
    p90_ms: float
    samples: int
    versions: dict[str, str]
    measured_at: datetime

    @property
    def noisy(self) -> bool:
        """Measured while the machine was busy (p90 over NOISY_P90_RATIO x the median):
        retried when measured, re-measured when found stored, never silently trusted."""
        return self.p90_ms > NOISY_P90_RATIO * self.median_ms


@dataclass(frozen=True)
class EntryRecord:
    """One published model: ``name@version``, its architecture, weights and provenance."""

    name: str
    version: int
    spec: ArchSpec
    blob_sha256: str
    blob_size: int
    dtypes: str
    dataset: str | None
    top1: float | None
    device: str | None
    parent: str | None
    study: str | None
    trial: int | None
    created_at: datetime
    created_by: str | None
    notes: str | None
    aliases: tuple[str, ...] = ()
    params: int = 0
    macs: int = 0
    # JSON text as stored; parsed on first use, since listings rarely need it.
    metrics_json: str = field(default="{}", repr=False)
    history_json: str = field(default="[]", repr=False)
    recipe_json: str = field(default="{}", repr=False)
    data_json: str = field(default="{}", repr=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def arch_digest(self) -> str:
        return self.spec.digest

    @cached_property
    def metrics(self) -> dict[str, Any]:
        return json.loads(self.metrics_json)

    @cached_property
    def history(self) -> list[dict[str, Any]]:
        return json.loads(self.history_json)

    @cached_property
    def recipe(self) -> dict[str, Any]:
        return json.loads(self.recipe_json)

    @cached_property
    def data(self) -> dict[str, Any]:
        """Data-set facts that travel with the weights: normalisation, class names."""
        return json.loads(self.data_json)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "aliases": list(self.aliases),
            "arch_digest": self.arch_digest,
            "spec": self.spec.to_dict(),
            "params": self.params,
            "macs": self.macs,
            "blob_sha256": self.blob_sha256,
            "blob_size": self.blob_size,
            "dtypes": self.dtypes,
            "dataset": self.dataset,
            "top1": self.top1,
            "metrics": self.metrics,
            "history": self.history,
            "recipe": self.recipe,
            "data": self.data,
            "device": self.device,
            "parent": self.parent,
            "study": self.study,
            "trial": self.trial,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "notes": self.notes,
        }
