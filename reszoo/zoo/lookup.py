"""Reading a registry's entries and architectures: references, lookups,
listings, and the checks every read makes before it hands anything out.

A read is refused (``IntegrityError``) when a spec does not hash to its
architecture's digest, an entry does not match its record digest
(``entry_record.py``), or weights do not hash to their sha256. A mixin of
:class:`~reszoo.zoo.registry.Registry`, on the sessions of ``store.py``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, undefer

from reszoo.errors import EntryNotFoundError, InputError, IntegrityError, suggest
from reszoo.limits import MAX_BATCH
from reszoo.zoo import weights as W
from reszoo.zoo.blob_codec import RAW, decode
from reszoo.zoo.entry_record import (
    RECORD_FIELDS,
    TEXT_LIMITS,
    check_fraction,
    check_int,
    check_positive,
    check_text,
    record_digest,
)
from reszoo.zoo.records import ArchitectureRecord, EntryRecord, Ref, check_name, parse_ref
from reszoo.zoo.schema import BLOB_ENCODING_REVISION, RECORD_DIGEST_REVISION, Alias, Architecture, Blob, Entry, Latency
from reszoo.zoo.spec import FAMILIES, ArchSpec
from reszoo.zoo.store import SqlStore, _as_utc

#: Entry columns an EntryRecord carries as they are stored.
_RECORD_COLUMNS = (
    "name",
    "version",
    "blob_sha256",
    "dataset",
    "top1",
    "device",
    "parent",
    "study",
    "trial",
    "created_by",
    "notes",
    "metrics_json",
    "history_json",
    "recipe_json",
    "data_json",
)


class Lookup(SqlStore):
    """Entries and architectures as frozen records (on a SqlStore's ``_session``)."""

    _blob_encoding: bool | None = None  # whether an older-labelled schema's blobs table has the encoding column

    def _spec(self, digest: str, spec_json: str | None) -> ArchSpec:
        """The checked spec of architecture ``digest``; ``spec_json`` is its stored row's
        (``None``: the registry has no such row)."""
        cache: dict[str, ArchSpec] = self.__dict__.setdefault("_spec_cache", {})  # checked specs, by digest
        spec = cache.get(digest)
        if spec is None:
            if spec_json is None:
                raise IntegrityError(
                    f"{self.display_url} holds no architecture {digest[:12]}, which an entry names; "
                    "nothing was built. Pull the entry again from a good registry"
                )
            spec = ArchSpec.from_json(spec_json)
            if spec.digest != digest:  # checked on every read, as blobs are against their sha256
                raise IntegrityError(
                    f"architecture {digest[:12]} in {self.display_url} does not hash to its digest (its spec was "
                    f"changed to one hashing to {spec.digest[:12]}); nothing was built from it. Pull the entry "
                    "again from a good registry"
                )
            cache[digest] = spec
        return spec

    def architecture(self, digest_or_name: str) -> ArchitectureRecord:
        with self._session() as s:
            row = (
                s.get(Architecture, digest_or_name)
                or s.scalars(sa.select(Architecture).where(Architecture.name == digest_or_name).limit(1)).first()
            )
            if row is None:
                raise EntryNotFoundError(f"no architecture {digest_or_name!r} in {self.display_url}")
            return self._arch_record(row)

    def architectures(self) -> list[ArchitectureRecord]:
        with self._session() as s:
            rows = s.scalars(sa.select(Architecture).order_by(Architecture.name, Architecture.digest)).all()
            return [self._arch_record(r) for r in rows]

    def _arch_record(self, row: Architecture) -> ArchitectureRecord:
        return ArchitectureRecord(row.digest, self._spec(row.digest, row.spec_json), row.name, row.params, row.macs)

    _ENTRY_COLUMNS = (Entry, Architecture.spec_json, Architecture.params, Architecture.macs, Blob.size, Blob.dtypes)

    def _entry_select(self) -> sa.Select:
        # Explicit columns: the blob's bytes are never read by a lookup or a listing.
        return (
            self._with_record_digest(sa.select(*self._ENTRY_COLUMNS))
            .join(Architecture, Architecture.digest == Entry.arch_digest)
            .join(Blob, Blob.sha256 == Entry.blob_sha256)
        )

    @property
    def record_digests(self) -> bool:
        """Whether this registry's entries carry record digests, checked on every read: yes
        from schema 0003 on; a registry from before, read without upgrading it, has none
        (its first write adds them)."""
        return self._schema_has(RECORD_DIGEST_REVISION)

    def _with_record_digest(self, query: sa.Select) -> sa.Select:
        return query.options(undefer(Entry.record_digest)) if self.record_digests else query

    def _check_record(self, entry: Entry, blob_size: int, dtypes: str) -> None:
        """Refuse an entry whose columns or links are not those its record digest was made of."""
        if not self.record_digests:
            return
        values = {key: getattr(entry, key) for key in RECORD_FIELDS if key not in ("blob_size", "dtypes")}
        if entry.record_digest != record_digest({**values, "blob_size": blob_size, "dtypes": dtypes}):
            ref = f"{entry.name}@{entry.version}"
            raise IntegrityError(
                f"entry {ref} in {self.display_url} does not match its record digest: its architecture, weights, "
                "metrics or other facts were changed after it was written (a link re-pointed, or a damaged file); "
                f"nothing was read from it. Remove it (reszoo rm {ref}) and pull it again from a good registry"
            )

    def _aliases(self, session: Session, names: list[str]) -> dict[tuple[str, int], list[str]]:
        out: dict[tuple[str, int], list[str]] = {}
        if not names:
            return out
        query = sa.select(Alias)
        if len(names) < 500:
            query = query.where(Alias.name.in_(names))
        for alias in session.scalars(query):
            out.setdefault((alias.name, alias.version), []).append(alias.alias)
        return out

    def _to_record(self, row: sa.Row, aliases: Mapping[tuple[str, int], list[str]]) -> EntryRecord:
        entry, spec_json, params, macs, size, dtypes = row
        self._check_record(entry, size, dtypes)
        return EntryRecord(
            **{column: getattr(entry, column) for column in _RECORD_COLUMNS},
            spec=self._spec(entry.arch_digest, spec_json),
            blob_size=size,
            dtypes=dtypes,
            created_at=_as_utc(entry.created_at),
            aliases=tuple(sorted(aliases.get((entry.name, entry.version), ()))),
            params=params,
            macs=macs,
        )

    def _resolve(self, session: Session, ref: str | Ref) -> Entry:
        ref = parse_ref(ref)
        query = self._with_record_digest(sa.select(Entry)).where(Entry.name == ref.name)
        if ref.version is not None:
            query = query.where(Entry.version == ref.version)
        elif ref.alias is not None:
            version = session.scalar(sa.select(Alias.version).where(Alias.name == ref.name, Alias.alias == ref.alias))
            if version is None:
                known = session.scalars(sa.select(Alias.alias).where(Alias.name == ref.name)).all()
                raise EntryNotFoundError(
                    f"no alias {ref.alias!r} for {ref.name!r} in {self.display_url}"
                    + (f" (aliases: {', '.join(sorted(known))})" if known else "")
                )
            query = query.where(Entry.version == version)
        else:
            query = query.order_by(Entry.version.desc()).limit(1)
        entry = session.scalars(query).first()
        if entry is None:
            raise EntryNotFoundError(self._not_found_message(session, ref))
        return entry

    def _not_found_message(self, session: Session, ref: Ref) -> str:
        versions = session.scalars(sa.select(Entry.version).where(Entry.name == ref.name).order_by(Entry.version)).all()
        # A registry one writes into (the local one) fills from a remote: say how.
        fetch = "" if self.readonly else f"; reszoo pull {ref} fetches it from the remote (the zoo by default)"
        if versions:
            return (
                f"{ref} is not in {self.display_url}; versions of {ref.name!r}: {', '.join(map(str, versions))}" + fetch
            )
        arch = session.scalar(sa.select(Architecture.digest).where(Architecture.name == ref.name).limit(1))
        if arch is not None:
            return (
                f"{ref.name!r} has no trained weights in {self.display_url} yet (its architecture is there: "
                f"reszoo.create_model({ref.name!r}) builds it untrained)"
            )
        names = session.scalars(sa.select(Entry.name).distinct()).all()
        close = suggest(ref.name, names)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"no entry {str(ref)!r} in {self.display_url}{hint}{fetch}; reszoo list --registry ... shows the entries"

    def get(self, ref: str | Ref) -> EntryRecord:
        """The entry ``ref`` names (``name``, ``name@version`` or ``name:alias``)."""
        with self._session() as s:
            entry = self._resolve(s, ref)
            row = s.execute(self._entry_select().where(Entry.id == entry.id)).one()
            return self._to_record(row, self._aliases(s, [entry.name]))

    def _get_by_id(self, entry_id: int) -> EntryRecord:
        with self._session() as s:
            row = s.execute(self._entry_select().where(Entry.id == entry_id)).one()
            return self._to_record(row, self._aliases(s, [row[0].name]))

    def list(
        self,
        pattern: str = "*",
        *,
        family: str | None = None,
        dataset: str | None = None,
        min_top1: float | None = None,
        max_latency_ms: float | None = None,
        device: str | None = None,
        batch_size: int = 1,
        dtype: str = "float32",
        runtime: str | None = None,
        all_versions: bool = False,
    ) -> list[EntryRecord]:
        """Entries matching every filter given; the latest version of each name unless ``all_versions``.

        ``max_latency_ms`` keeps entries with a stored latency row on ``device``
        (at ``batch_size``, ``dtype`` and, if given, ``runtime``) at or under it.
        """
        if not isinstance(pattern, str):
            raise InputError(
                f"list() takes a name pattern such as 'resnet*', got {type(pattern).__name__}; use '*' for every entry"
            )
        check_filters(
            family=family,
            dataset=dataset,
            min_top1=min_top1,
            max_latency_ms=max_latency_ms,
            device=device,
            batch_size=batch_size,
            dtype=dtype,
            runtime=runtime,
        )
        conditions = []
        if pattern not in ("*", ""):
            if not any(ch in pattern for ch in "*?["):
                conditions.append(Entry.name == pattern)
            elif "[" not in pattern:  # LIKE narrows; fnmatch below decides (LIKE ignores case on SQLite)
                conditions.append(Entry.name.like(_glob_to_like(pattern), escape="\\"))
        if family is not None:
            conditions.append(Architecture.family == family)
        if dataset is not None:
            conditions.append(Entry.dataset == dataset)
        if min_top1 is not None:
            conditions.append(Entry.top1 >= min_top1)
        if max_latency_ms is not None:
            fast = sa.select(Latency.id).where(
                Latency.arch_digest == Entry.arch_digest,
                Latency.device == device,
                Latency.batch_size == batch_size,
                Latency.dtype == dtype,
                Latency.median_ms <= max_latency_ms,
            )
            if runtime is not None:
                fast = fast.where(Latency.runtime == runtime)
            conditions.append(fast.exists())
        query = self._entry_select().where(*conditions)
        if not all_versions:
            # The latest version among those that pass the filters.
            latest = (
                sa.select(Entry.name.label("name"), sa.func.max(Entry.version).label("version"))
                .join(Architecture, Architecture.digest == Entry.arch_digest)
                .where(*conditions)
                .group_by(Entry.name)
                .subquery()
            )
            query = query.join(latest, sa.and_(latest.c.name == Entry.name, latest.c.version == Entry.version))
        query = query.order_by(Entry.name, Entry.version)
        with self._session() as s:
            rows = s.execute(query).all()
            if pattern not in ("*", ""):
                rows = [r for r in rows if fnmatch.fnmatchcase(r[0].name, pattern)]
            aliases = self._aliases(s, sorted({r[0].name for r in rows}))
            return [self._to_record(row, aliases) for row in rows]

    def _stored_blob(self, session: Session, sha: str, *, what: str = "weights") -> tuple[bytes, int, str] | None:
        """(safetensors bytes, size, dtypes) of the blob ``sha``, decoded as it was stored (not yet
        verified: the caller checks them against the sha256); ``None`` when there is none."""
        encoded = self._schema_has(BLOB_ENCODING_REVISION)
        if not encoded and self._blob_encoding is None:
            # A schema read as it is may still have the column (written by a newer reszoo and
            # labelled older); it is the column, not the label, that says how blobs are stored.
            columns_now = sa.inspect(session.connection()).get_columns("blobs")
            self._blob_encoding = any(c["name"] == "encoding" for c in columns_now)
        encoded = encoded or bool(self._blob_encoding)
        columns = (Blob.data, Blob.size, Blob.dtypes, *((Blob.encoding,) if encoded else ()))
        row = session.execute(sa.select(*columns).where(Blob.sha256 == sha)).first()
        if row is None:
            return None
        data = decode(bytes(row.data), row.encoding if encoded else RAW, what=what)
        return data, row.size, row.dtypes

    def _blob_bytes(self, session: Session, entry: Entry) -> bytes:
        """The entry's weights, checked against their sha256 and size, the entry against its record digest."""
        what = f"weights of {entry.name}@{entry.version}"
        stored = self._stored_blob(session, entry.blob_sha256, what=what)
        if stored is None:
            raise IntegrityError(f"{what} are missing from {self.display_url}: the entry points at no stored blob")
        data, size, dtypes = stored
        self._check_record(entry, size, dtypes)
        W.verify(data, entry.blob_sha256, size, what=what)
        return data

    def verify(self, ref: str | Ref) -> EntryRecord:
        """The entry ``ref`` names, once its weights are read and checked against their
        sha256 (as load, export and pull check them) and the entry against its record
        digest: what ``reszoo show`` shows."""
        with self._session() as s:
            entry = self._resolve(s, ref)
            self._blob_bytes(s, entry)
            entry_id = entry.id
        return self._get_by_id(entry_id)

    def holding(self, name: str, spec: ArchSpec, state_dict: Mapping[str, Any]) -> EntryRecord | None:
        """The latest entry ``name`` that holds exactly these weights for ``spec``, if any:
        what ``reszoo import`` names instead of adding the same weights again."""
        check_name(name)
        sha = W.sha256(W.serialize(state_dict))
        same = [e for e in self.list(name, all_versions=True) if e.blob_sha256 == sha and e.arch_digest == spec.digest]
        return same[-1] if same else None

    def resolve(self, ref: str | Ref) -> str:
        """The ``name@version`` that ``ref`` names now; the entry itself is not read."""
        with self._session() as s:
            entry = self._resolve(s, ref)
            return f"{entry.name}@{entry.version}"


def check_filters(
    *,
    family: object,
    dataset: object,
    min_top1: object,
    max_latency_ms: object,
    device: object,
    batch_size: object,
    dtype: object,
    runtime: object,
) -> None:
    """Refuse a filter that could only ever match nothing by mistake (``min_top1='abc'``, NaN)."""
    if family is not None and family not in FAMILIES:
        raise InputError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}", field="family", value=family)
    for field, text in (("dataset", dataset), ("device", device), ("dtype", dtype), ("runtime", runtime)):
        check_text(field, text, TEXT_LIMITS["device"])
    if min_top1 is not None:
        check_fraction("min_top1", min_top1)
    if max_latency_ms is not None:
        check_positive("max_latency_ms", max_latency_ms, "milliseconds")
        if not device:
            raise InputError("max_latency_ms needs a device: latency is only known per device", field="device")
    check_int("batch_size", batch_size, 1, MAX_BATCH)


def _glob_to_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")
