"""Copying an entry between registries: what ``pull`` and ``publish`` do.

The entry, its architecture, its weights blob and the architecture's latency
rows travel together in one write transaction on the target. The blob is
hashed as it arrives and refused if it does not match its sha256, and a
``name@version`` the target holds with other content is refused; identical
content is a no-op, so a copy can be repeated safely.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from reszoo.errors import IntegrityError
from reszoo.zoo import weights as W
from reszoo.zoo.counting import count
from reszoo.zoo.describe import pretrained_cfg
from reszoo.zoo.latency_store import latency_record
from reszoo.zoo.network import ReszooNet
from reszoo.zoo.records import EntryRecord, Ref, check_version, parse_ref
from reszoo.zoo.schema import Alias, Architecture, Latency
from reszoo.zoo.spec import ArchSpec
from reszoo.zoo.store import SqlStore

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class Transfer(SqlStore):
    """``pull`` and ``publish`` of :class:`~reszoo.zoo.registry.Registry` (a mixin: one
    class, so the copy uses the registry's own transaction and checks, and this
    module needs no import of the registry's)."""

    def pull(self, ref: str | Ref, remote: SqlStore | str, *, progress: Progress | None = None) -> EntryRecord:
        """Copy ``ref`` from ``remote`` into this registry (idempotent)."""
        source = remote if isinstance(remote, SqlStore) else type(self)(remote, readonly=True)
        return _copy_entry(source, self, ref, progress=progress)[0]

    def pull_and_load(self, ref: str | Ref, remote: SqlStore | str) -> tuple[EntryRecord, ReszooNet]:
        """:meth:`pull`, then the model built from the bytes just verified (with the
        entry pulled): a first ``reszoo.load`` reads and hashes the weights once, not twice."""
        source = remote if isinstance(remote, SqlStore) else type(self)(remote, readonly=True)
        record, data = _copy_entry(source, self, ref)
        model = W.model_from_state_dict(record.spec, W.deserialize(data))
        model.pretrained_cfg = pretrained_cfg(
            record.spec, record.data, ref=record.ref, dataset=record.dataset, sha256=record.blob_sha256
        )
        return record, model

    def publish(
        self, ref: str | Ref, remote: SqlStore | str, *, version: int | None = None, progress: Progress | None = None
    ) -> EntryRecord:
        """Copy ``ref`` from this registry into ``remote``, as ``version`` if given."""
        target = remote if isinstance(remote, SqlStore) else type(self)(remote, create=False)
        return _copy_entry(self, target, ref, version=version, progress=progress)[0]


def _copy_entry(
    source: Any,
    target: Any,
    ref: str | Ref,
    *,
    version: int | None = None,
    progress: Progress | None = None,
) -> tuple[EntryRecord, bytes]:
    """Copy the entry ``ref`` names from ``source`` into ``target`` (both registries);
    the target's record and the weights' bytes, verified.

    Args:
        version: The version number in ``target``; by default the source's.
        progress: Called with (bytes hashed, total bytes) while the weights are verified.
    """
    with source._session() as s:
        entry = source._resolve(s, ref)
        arch = s.get(Architecture, entry.arch_digest)
        what = f"weights of {entry.name}@{entry.version} in {source.display_url}"
        blob = source._stored_blob(s, entry.blob_sha256, what=what)
        if blob is None:
            raise IntegrityError(f"{what} are missing: the entry points at no stored blob; nothing was copied")
        latency = s.scalars(sa.select(Latency).where(Latency.arch_digest == entry.arch_digest)).all()
        aliases = s.scalars(
            sa.select(Alias.alias).where(Alias.name == entry.name, Alias.version == entry.version)
        ).all()
        s.expunge_all()  # plain objects from here on: copied field by field below
    data, size, dtypes = blob
    source._check_record(entry, size, dtypes)
    if len(data) != size:
        raise IntegrityError(
            f"weights of {entry.name}@{entry.version} in {source.display_url} are {len(data)} bytes, expected "
            f"{size}: truncated; nothing was copied"
        )
    done = 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, len(data))

    actual = W.sha256(data, progress=report)
    if actual != entry.blob_sha256:
        raise IntegrityError(
            f"weights of {entry.name}@{entry.version} in {source.display_url} hash to {actual}, not their recorded "
            f"sha256 {entry.blob_sha256}; nothing was copied"
        )
    spec = ArchSpec.from_json(arch.spec_json)
    if spec.digest != arch.digest:
        raise IntegrityError(f"architecture {arch.digest[:12]} in {source.display_url} does not hash to its digest")
    fields = {
        column: getattr(entry, column)
        for column in (
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
    }

    new_version = entry.version if version is None else check_version(version)
    count(spec)  # outside the target's write lock

    def work(t: Session) -> int:
        target._ensure_architecture(t, spec, arch.name)
        target._ensure_blob(t, entry.blob_sha256, data, dtypes)
        for row in latency:
            target._upsert_latency(t, latency_record(row), replace=False)
        entry_id = target._insert_entry(t, entry.name, new_version, entry.arch_digest, entry.blob_sha256, fields)
        # The source's aliases of this version come along where the target has
        # none of that name; an alias the copy was asked for by always does.
        asked = parse_ref(ref).alias
        for alias in aliases:
            row = t.get(Alias, (entry.name, alias))
            if row is None:
                t.add(Alias(name=entry.name, alias=alias, version=new_version))
            elif alias == asked:
                row.version = new_version
        return entry_id

    return target._get_by_id(target._write(work)), data
