"""The registry: architectures, weights (blobs), entries and aliases.

Callers get frozen records (``records.py``), never ORM rows. Weights are
verified against their sha256 and size, and specs against their digest, before
anything is built from them. One publish is one transaction over all four
tables, which is why they stay in one class here (about 600 lines); the
database itself (engine, migrations, the write transaction) is ``store.py``'s,
the latency tables ``latency_store.py``'s, and ``pull``/``publish``
``transfer.py``'s (mixins of one class, so no module reaches into another's
privates from outside).
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from torch import nn

from reszoo.errors import (
    ConflictError,
    EntryNotFoundError,
    InputError,
    IntegrityError,
    ReszooError,
    WeightsError,
    suggest,
)
from reszoo.files import atomic_write_bytes
from reszoo.zoo import weights as W
from reszoo.zoo.counting import count
from reszoo.zoo.describe import pretrained_cfg
from reszoo.zoo.entry_record import entry_columns
from reszoo.zoo.factory import SpecLike, resolve_spec
from reszoo.zoo.records import (
    LATEST,
    MAX_VERSION,
    ArchitectureRecord,
    EntryRecord,
    Ref,
    check_alias,
    check_name,
    check_version,
    parse_ref,
)
from reszoo.zoo.latency_store import LatencyStore
from reszoo.zoo.schema import Alias, Architecture, Blob, Entry, Latency
from reszoo.zoo.spec import ArchSpec
from reszoo.zoo.store import SqlStore, _as_utc, now
from reszoo.zoo.transfer import Transfer

class Registry(Transfer, LatencyStore, SqlStore):
    """A registry of models at a SQLAlchemy URL (or a SQLite file path).

    Args:
        url: ``sqlite:///path/registry.db``, ``postgresql+psycopg://...``, or a path.
        create: Create a missing SQLite file; off, a missing file is an error.
        readonly: Never write: no schema migration, no switch to WAL, writes
            refused. For remotes one only pulls from; implies ``create=False``.
        busy_timeout_s: How long a SQLite writer waits for the write lock.

    Example:
        >>> reg = Registry("registry.db")
        >>> record = reg.add("tiny", model, dataset="cifar10", metrics={"top1": 0.91})
        >>> model = reg.load("tiny@1")
    """

    # ---------------------------------------------------------- architectures

    def _spec(self, digest: str, spec_json: str) -> ArchSpec:
        cache: dict[str, ArchSpec] = self.__dict__.setdefault("_spec_cache", {})  # checked specs, by digest
        spec = cache.get(digest)
        if spec is None:
            spec = ArchSpec.from_json(spec_json)
            if spec.digest != digest:  # checked on every read, as blobs are against their sha256
                raise IntegrityError(
                    f"architecture {digest[:12]} in {self.display_url} does not hash to its digest (its spec was "
                    f"changed to one hashing to {spec.digest[:12]}); nothing was built from it. Pull the entry "
                    "again from a good registry"
                )
            cache[digest] = spec
        return spec

    def _ensure_architecture(self, session: Session, spec: ArchSpec, name: str | None = None) -> None:
        """Record ``spec``; call ``count(spec)`` before the transaction (it is
        cached) so that the write lock is not held while counting."""
        row = session.get(Architecture, spec.digest)
        if row is None:
            counts = count(spec)
            session.add(
                Architecture(
                    digest=spec.digest,
                    spec_json=spec.to_json(),
                    name=name,
                    family=spec.family,
                    block=spec.block,
                    depth=spec.depth,
                    params=counts.params,
                    macs=counts.macs,
                    created_at=now(),
                )
            )
            session.flush()
        elif name is not None and row.name is None:
            row.name = name

    def add_architecture(self, spec: SpecLike, name: str | None = None) -> ArchitectureRecord:
        """Record an architecture (idempotent); ``name`` is its preset name, if any."""
        spec = resolve_spec(spec)
        count(spec)  # outside the write lock; cached for the transaction
        self._write(lambda s: self._ensure_architecture(s, spec, name))
        return self.architecture(spec.digest)

    def architecture(self, digest_or_name: str) -> ArchitectureRecord:
        with self._session() as s:
            row = s.get(Architecture, digest_or_name) or s.scalars(
                sa.select(Architecture).where(Architecture.name == digest_or_name).limit(1)
            ).first()
            if row is None:
                raise EntryNotFoundError(f"no architecture {digest_or_name!r} in {self.display_url}")
            return self._arch_record(row)

    def architectures(self) -> list[ArchitectureRecord]:
        with self._session() as s:
            rows = s.scalars(sa.select(Architecture).order_by(Architecture.name, Architecture.digest)).all()
            return [self._arch_record(r) for r in rows]

    def _arch_record(self, row: Architecture) -> ArchitectureRecord:
        return ArchitectureRecord(row.digest, self._spec(row.digest, row.spec_json), row.name, row.params, row.macs)

    # ---------------------------------------------------------------- entries

    _ENTRY_COLUMNS = (Entry, Architecture.spec_json, Architecture.params, Architecture.macs, Blob.size, Blob.dtypes)

    def _entry_select(self) -> sa.Select:
        # Explicit columns: the blob's bytes are never read by a lookup or a listing.
        return (
            sa.select(*self._ENTRY_COLUMNS)
            .join(Architecture, Architecture.digest == Entry.arch_digest)
            .join(Blob, Blob.sha256 == Entry.blob_sha256)
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
        return EntryRecord(
            name=entry.name,
            version=entry.version,
            spec=self._spec(entry.arch_digest, spec_json),
            blob_sha256=entry.blob_sha256,
            blob_size=size,
            dtypes=dtypes,
            dataset=entry.dataset,
            top1=entry.top1,
            device=entry.device,
            parent=entry.parent,
            study=entry.study,
            trial=entry.trial,
            created_at=_as_utc(entry.created_at),
            created_by=entry.created_by,
            notes=entry.notes,
            aliases=tuple(sorted(aliases.get((entry.name, entry.version), ()))),
            params=params,
            macs=macs,
            metrics_json=entry.metrics_json,
            history_json=entry.history_json,
            recipe_json=entry.recipe_json,
            data_json=entry.data_json,
        )

    def _resolve(self, session: Session, ref: str | Ref) -> Entry:
        ref = parse_ref(ref)
        query = sa.select(Entry).where(Entry.name == ref.name)
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
        if versions:
            return f"{ref} is not in {self.display_url}; versions of {ref.name!r}: {', '.join(map(str, versions))}"
        arch = session.scalar(sa.select(Architecture.digest).where(Architecture.name == ref.name).limit(1))
        if arch is not None:
            return (
                f"{ref.name!r} has no trained weights in {self.display_url} yet (its architecture is there: "
                f"reszoo.create_model({ref.name!r}) builds it untrained)"
            )
        names = session.scalars(sa.select(Entry.name).distinct()).all()
        close = suggest(ref.name, names)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"no entry {str(ref)!r} in {self.display_url}{hint} (reszoo list --registry ... shows the entries)"

    def get(self, ref: str | Ref) -> EntryRecord:
        """The entry ``ref`` names (``name``, ``name@version`` or ``name:alias``)."""
        with self._session() as s:
            entry = self._resolve(s, ref)
            row = s.execute(self._entry_select().where(Entry.id == entry.id)).one()
            return self._to_record(row, self._aliases(s, [entry.name]))

    def add(
        self,
        name: str,
        weights: nn.Module | Mapping[str, Any],
        spec: SpecLike | None = None,
        *,
        version: int | None = None,
        dataset: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        history: list[Mapping[str, Any]] | None = None,
        recipe: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        device: str | None = None,
        parent: str | None = None,
        study: str | None = None,
        trial: int | None = None,
        notes: str | None = None,
        created_by: str | None = None,
        weights_dtype: Any = None,
    ) -> EntryRecord:
        """Store weights as a new entry ``name@version`` (next free version by default).

        Args:
            name: Entry name.
            weights: A model built by reszoo, or a state_dict.
            spec: Its architecture; taken from ``weights.spec`` when omitted.
            weights_dtype: Store floating tensors in this dtype (e.g. ``torch.float16``).
            metrics: ``{"top1": 0.91, ...}``; ``top1`` is indexed for filtering.

        Raises:
            WeightsError: the weights do not fit the spec or are not finite.
            ConflictError: ``version`` exists with other content.
        """
        check_name(name)
        if spec is None:
            spec = getattr(weights, "spec", None)
            if spec is None:
                raise WeightsError("add() needs spec= when the weights are a state_dict rather than a reszoo model")
        spec = resolve_spec(spec)
        if version is not None:
            check_version(version)
        fields = entry_columns(dataset=dataset, metrics=metrics, history=history, recipe=recipe, data=data,
                               device=device, parent=parent, study=study, trial=trial, notes=notes,
                               created_by=created_by)
        state_dict = W.to_state_dict(weights)
        W.check_fits(state_dict, spec)
        W.check_finite(state_dict)
        blob = W.serialize(state_dict, dtype=weights_dtype)
        sha = W.sha256(blob)
        dtypes = W.dtype_summary(W.deserialize(blob)) if weights_dtype is not None else W.dtype_summary(state_dict)

        count(spec)  # outside the write lock; cached for the transaction

        def work(s: Session) -> int:
            self._ensure_architecture(s, spec)
            self._ensure_blob(s, sha, blob, dtypes)
            return self._insert_entry(s, name, version, spec.digest, sha, fields)

        entry_id = self._write(work)
        return self._get_by_id(entry_id)

    def _get_by_id(self, entry_id: int) -> EntryRecord:
        with self._session() as s:
            row = s.execute(self._entry_select().where(Entry.id == entry_id)).one()
            return self._to_record(row, self._aliases(s, [row[0].name]))

    def _ensure_blob(self, session: Session, sha: str, data: bytes, dtypes: str) -> None:
        """Store verified ``data`` under ``sha`` unless good bytes are there already;
        damaged stored bytes are replaced, so pulling again repairs a registry."""
        stored = session.execute(sa.select(Blob.data).where(Blob.sha256 == sha)).first()
        if stored is None:
            session.add(Blob(sha256=sha, size=len(data), dtypes=dtypes, data=data, created_at=now()))
            session.flush()
        elif W.sha256(bytes(stored.data)) != sha:
            session.execute(sa.update(Blob).where(Blob.sha256 == sha).values(data=data, size=len(data)))

    def _insert_entry(
        self, session: Session, name: str, version: int | None, arch_digest: str, sha: str, fields: Mapping[str, Any]
    ) -> int:
        if session.get_bind().dialect.name == "postgresql":
            # Serialise writers of one name: max(version) + 1 is then never
            # chosen twice. (SQLite's BEGIN IMMEDIATE already serialises.)
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(name))))
        if version is None:
            latest = session.scalar(sa.select(sa.func.max(Entry.version)).where(Entry.name == name)) or 0
            if latest >= MAX_VERSION:
                raise ConflictError(f"{name} has reached version {MAX_VERSION}, the last a reference can name; "
                                    "publish under another name")
            version = latest + 1
        else:
            existing = session.scalars(sa.select(Entry).where(Entry.name == name, Entry.version == version)).first()
            if existing is not None:
                if (existing.arch_digest, existing.blob_sha256) == (arch_digest, sha):
                    return existing.id  # identical content: nothing to do
                raise ConflictError(
                    f"{name}@{version} already exists in {self.display_url} with other content "
                    f"(architecture {existing.arch_digest[:12]}, weights sha256 {existing.blob_sha256[:12]}); "
                    "publish under another version (--version) or name"
                )
        entry = Entry(
            name=name,
            version=version,
            arch_digest=arch_digest,
            blob_sha256=sha,
            created_at=fields.get("created_at") or now(),
            **{k: v for k, v in fields.items() if k != "created_at"},
        )
        session.add(entry)
        session.flush()
        return entry.id

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
        if max_latency_ms is not None and not device:
            raise InputError("max_latency_ms needs a device: latency is only known per device", field="device")
        if not isinstance(pattern, str):
            raise InputError(f"list() takes a name pattern such as 'resnet*', got {type(pattern).__name__}; use '*' "
                             "for every entry")
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

    # ---------------------------------------------------------------- weights

    def _blob_bytes(self, session: Session, entry: Entry) -> bytes:
        row = session.execute(
            sa.select(Blob.data, Blob.size).where(Blob.sha256 == entry.blob_sha256)
        ).one()
        data = bytes(row.data)
        W.verify(data, entry.blob_sha256, row.size, what=f"weights of {entry.name}@{entry.version}")
        return data

    def blob(self, ref: str | Ref) -> bytes:
        """The verified safetensors bytes of an entry."""
        with self._session() as s:
            return self._blob_bytes(s, self._resolve(s, ref))

    def state_dict(self, ref: str | Ref) -> dict[str, Any]:
        return W.deserialize(self.blob(ref))

    def load(self, ref: str | Ref) -> nn.Module:
        """The entry's model, float32, in eval mode; weights checked against their
        sha256 and against the spec before any tensor is copied.

        The model carries its ``pretrained_cfg`` as timm's models do (input size,
        mean and std of its data set, class names, the entry and its sha256), so
        ``timm.data.resolve_data_config(model=m)`` and :func:`reszoo.data_transform`
        preprocess images the way it was trained.
        """
        with self._session() as s:
            entry = self._resolve(s, ref)
            spec_json, data, size = s.execute(
                sa.select(Architecture.spec_json, Blob.data, Blob.size)
                .join(Blob, Blob.sha256 == entry.blob_sha256)
                .where(Architecture.digest == entry.arch_digest)
            ).one()
            data_info = json.loads(entry.data_json or "{}")
            name, version, dataset, sha = entry.name, entry.version, entry.dataset, entry.blob_sha256
        data = bytes(data)
        W.verify(data, sha, size, what=f"weights of {name}@{version}")
        spec = self._spec(entry.arch_digest, spec_json)
        model = W.model_from_state_dict(spec, W.deserialize(data))
        model.pretrained_cfg = pretrained_cfg(spec, data_info, ref=f"{name}@{version}", dataset=dataset, sha256=sha)
        return model

    def import_weights(self, path: str | os.PathLike[str], arch: SpecLike, name: str, **metadata: Any) -> EntryRecord:
        """Add a ``.safetensors`` file of weights for ``arch`` as entry ``name``."""
        if not isinstance(path, (str, os.PathLike)):
            raise InputError(f"import_weights needs the path of a .safetensors file, got {type(path).__name__}")
        return self.add(name, W.read_weights_file(path), resolve_spec(arch), **metadata)

    def export(self, ref: str | Ref, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the entry's weights, byte for byte as stored (same sha256), to ``path``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise ConflictError(f"{path} already exists; choose another path or allow overwriting (--force)")
        data = self.blob(ref)
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise ReszooError(f"cannot write {path}: {exc.strerror or exc}") from None
        return path

    # ----------------------------------------------------- aliases and removal

    def tag(self, ref: str | Ref, alias: str) -> EntryRecord:
        """Point ``name:alias`` at the entry ``ref`` names (moving it if it existed)."""
        check_alias(alias)
        if alias == LATEST:
            raise InputError("'latest' always means the highest version and cannot be set", field="alias", value=alias)

        def work(s: Session) -> int:
            entry = self._resolve(s, ref)
            row = s.get(Alias, (entry.name, alias))
            if row is None:
                s.add(Alias(name=entry.name, alias=alias, version=entry.version))
            else:
                row.version = entry.version
            return entry.id

        return self._get_by_id(self._write(work))

    def remove(self, ref: str | Ref) -> EntryRecord:
        """Delete one entry, its aliases, and its weights if no other entry uses them."""
        record = self.get(ref)

        def work(s: Session) -> None:
            entry = self._resolve(s, record.ref)
            s.execute(sa.delete(Alias).where(Alias.name == entry.name, Alias.version == entry.version))
            s.delete(entry)
            s.flush()
            still_used = s.scalar(sa.select(Entry.id).where(Entry.blob_sha256 == entry.blob_sha256).limit(1))
            if still_used is None:
                s.execute(sa.delete(Blob).where(Blob.sha256 == entry.blob_sha256))

        self._write(work)
        return record


def _glob_to_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")
