"""The registry: architectures, weights (blobs), entries and aliases.

Callers get frozen records (``records.py``), never ORM rows. Weights are
verified against their sha256 and size, specs against their digest and
entries against their record digest, before anything is built from them. One
publish is one transaction over all four tables. This module writes them and
builds models; the class is assembled from mixins, one job each, so no module
reaches into another's privates from outside: reads and their checks are
``lookup.py``'s, an entry's facts and record digest ``entry_record.py``'s,
the database itself (engine, migrations, the write transaction) ``store.py``'s,
the latency tables ``latency_store.py``'s, and ``pull``/``publish``
``transfer.py``'s. Each mixin subclasses ``SqlStore``, whose sessions and write
transaction it works on, so the type checker sees what it relies on.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from torch import nn

from reszoo.errors import ConflictError, InputError, IntegrityError, ReszooError, WeightsError
from reszoo.files import atomic_write_bytes
from reszoo.zoo import weights as W
from reszoo.zoo.blob_codec import RAW, encode
from reszoo.zoo.counting import count
from reszoo.zoo.describe import pretrained_cfg
from reszoo.zoo.entry_record import check_weights_dtype, entry_columns, record_digest
from reszoo.zoo.factory import SpecLike, resolve_spec
from reszoo.zoo.latency_store import LatencyStore
from reszoo.zoo.locations import local_url, remote_url, same_location
from reszoo.zoo.lookup import Lookup
from reszoo.zoo.network import ReszooNet
from reszoo.zoo.presets import PRESETS
from reszoo.zoo.records import (
    LATEST,
    MAX_VERSION,
    ArchitectureRecord,
    EntryRecord,
    Ref,
    check_alias,
    check_name,
    check_version,
)
from reszoo.zoo.schema import Alias, Architecture, Blob, Entry
from reszoo.zoo.spec import ArchSpec
from reszoo.zoo.store import SqlStore, _as_utc, now
from reszoo.zoo.transfer import Transfer


class Registry(Lookup, Transfer, LatencyStore, SqlStore):
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

    # ---------------------------------------------------------------- entries

    def add(
        self,
        name: str,
        weights: nn.Module | Mapping[str, Any],
        spec: SpecLike | None = None,
        *,
        version: int | None = None,
        dataset: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        history: Sequence[Mapping[str, Any]] | None = None,
        recipe: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        device: str | None = None,
        parent: str | None = None,
        study: str | None = None,
        trial: int | None = None,
        notes: str | None = None,
        created_by: str | None = None,
        weights_dtype: Any = None,
        shadow: bool = False,
    ) -> EntryRecord:
        """Store weights as a new entry ``name@version`` (next free version by default).

        Args:
            name: Entry name.
            weights: A model built by reszoo, or a state_dict.
            spec: Its architecture; taken from ``weights.spec`` when omitted.
            weights_dtype: Store floating tensors in this dtype (e.g. ``torch.float16``).
            metrics: ``{"top1": 0.91, ...}``; ``top1`` is indexed for filtering.
            shadow: Allow a public name (a preset's, or an entry of the default remote) in
                the user's local registry, knowing that ``reszoo.load(name)`` then gives
                this entry instead of the zoo's; refused without it.

        Raises:
            WeightsError: the weights do not fit the spec or are not finite.
            ConflictError: ``version`` exists with other content, or ``name`` is public (``shadow``).
        """
        self.check_new_name(name, shadow=shadow)
        if spec is None:
            spec = getattr(weights, "spec", None)
            if spec is None:
                raise WeightsError("add() needs spec= when the weights are a state_dict rather than a reszoo model")
        spec = resolve_spec(spec)
        if version is not None:
            check_version(version)
        fields = entry_columns(
            dataset=dataset,
            metrics=metrics,
            history=history,
            recipe=recipe,
            data=data,
            device=device,
            parent=parent,
            study=study,
            trial=trial,
            notes=notes,
            created_by=created_by,
        )
        dtype = check_weights_dtype(weights_dtype)
        state_dict = W.to_state_dict(weights)
        W.check_fits(state_dict, spec)
        W.check_finite(state_dict)
        blob = W.serialize(state_dict, dtype=dtype)
        sha = W.sha256(blob)
        dtypes = W.dtype_summary(W.deserialize(blob)) if weights_dtype is not None else W.dtype_summary(state_dict)

        count(spec)  # outside the write lock; cached for the transaction

        def work(s: Session) -> int:
            self._ensure_architecture(s, spec)
            self._ensure_blob(s, sha, blob, dtypes)
            return self._insert_entry(s, name, version, spec.digest, sha, fields)

        entry_id = self._write(work)
        return self._get_by_id(entry_id)

    def check_new_name(self, name: str, *, shadow: bool = False) -> str:
        """``name`` if :meth:`add` may store an entry under it: a valid entry name, and no
        public name in the user's local registry unless ``shadow`` (see :meth:`add`).
        A caller that trains first checks here before it trains."""
        check_name(name)
        if shadow or not same_location(self.url, local_url()):
            return name
        if name in PRESETS or name in self._remote_names():
            raise ConflictError(
                f"{name!r} is a public name (a preset's, or an entry of the zoo): stored in your local registry it "
                f"would be what reszoo.load({name!r}) and reszoo eval {name} give from then on, instead of the zoo's. "
                f"Choose another name (e.g. 'my-{name}'), or shadow it knowingly: shadow=True (--shadow)"
            )
        return name

    def _remote_names(self) -> set[str]:
        """Entry names of the default remote (the zoo), where it can be read; none where not."""
        try:
            url = remote_url()
            if same_location(url, self.url):
                return set()
            with type(self)(url, readonly=True) as remote, remote._session() as s:
                return set(s.scalars(sa.select(Entry.name).distinct()))
        except ReszooError:
            return set()

    def _ensure_blob(self, session: Session, sha: str, data: bytes, dtypes: str) -> None:
        """Store verified ``data`` under ``sha`` (compressed where that saves space: blob_codec.py)
        unless good bytes are there already; damaged stored bytes are replaced, so pulling again
        repairs a registry."""
        try:
            stored = self._stored_blob(session, sha)
        except IntegrityError:  # stored bytes that do not even decode: damaged, replaced below
            stored = (b"", -1, dtypes)
        if stored is not None and W.sha256(stored[0]) == sha:
            return
        packed, encoding = encode(data, dtypes)
        if stored is None:
            session.add(
                Blob(sha256=sha, size=len(data), dtypes=dtypes, data=packed, encoding=encoding, created_at=now())
            )
            session.flush()
        else:
            session.execute(
                sa.update(Blob).where(Blob.sha256 == sha).values(data=packed, size=len(data), encoding=encoding)
            )

    def compress_blobs(self) -> tuple[int, int]:
        """Store every blob kept as it is compressed, where that saves space (blob_codec.py):
        what ``tools/make_registry.py`` does before shipping. Returns (blobs rewritten, bytes saved);
        a SQLite file shrinks only once vacuumed (:meth:`settle` with ``vacuum=True``)."""
        shas = self._write(lambda s: list(s.scalars(sa.select(Blob.sha256).where(Blob.encoding == RAW))))

        def compress(session: Session, sha: str) -> int:
            data, size, dtypes = self._stored_blob(session, sha) or (b"", 0, "")
            W.verify(data, sha, size, what="weights")
            packed, encoding = encode(data, dtypes)
            if encoding == RAW:
                return 0
            session.execute(sa.update(Blob).where(Blob.sha256 == sha).values(data=packed, encoding=encoding))
            return len(data) - len(packed)

        # One blob a transaction: the 34-layer nets' are 42 MB each.
        savings = [self._write(functools.partial(compress, sha=sha)) for sha in shas]
        return sum(1 for n in savings if n), sum(savings)

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
                raise ConflictError(
                    f"{name} has reached version {MAX_VERSION}, the last a reference can name; "
                    "publish under another name"
                )
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
        size, dtypes = session.execute(sa.select(Blob.size, Blob.dtypes).where(Blob.sha256 == sha)).one()
        values = {
            **fields,
            "name": name,
            "version": version,
            "arch_digest": arch_digest,
            "blob_sha256": sha,
            "created_at": _as_utc(fields.get("created_at") or now()),
        }
        digest = record_digest({**values, "blob_size": size, "dtypes": dtypes})
        entry = Entry(**values, record_digest=digest)
        session.add(entry)
        session.flush()
        return entry.id

    # ---------------------------------------------------------------- weights

    def blob(self, ref: str | Ref) -> bytes:
        """The verified safetensors bytes of an entry."""
        with self._session() as s:
            return self._blob_bytes(s, self._resolve(s, ref))

    def state_dict(self, ref: str | Ref) -> dict[str, Any]:
        return W.deserialize(self.blob(ref))

    def load(self, ref: str | Ref) -> ReszooNet:
        """The entry's model, float32, in eval mode; weights checked against their
        sha256 and against the spec before any tensor is copied.

        The model carries its ``pretrained_cfg`` as timm's models do (input size,
        mean and std of its data set, class names, the entry and its sha256), so
        ``timm.data.resolve_data_config(model=m)`` and :func:`reszoo.data_transform`
        preprocess images the way it was trained.
        """
        with self._session() as s:
            entry = self._resolve(s, ref)
            data = self._blob_bytes(s, entry)
            spec_json = s.scalar(sa.select(Architecture.spec_json).where(Architecture.digest == entry.arch_digest))
            data_info = json.loads(entry.data_json or "{}")
            name, version, dataset, sha = entry.name, entry.version, entry.dataset, entry.blob_sha256
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

    def remove(self, ref: str | Ref) -> str:
        """Delete one entry, its aliases, and its weights if no other entry uses them;
        the ``name@version`` removed. A damaged or tampered entry can be removed too."""
        target = self.resolve(ref)

        def work(s: Session) -> None:
            entry = self._resolve(s, target)
            s.execute(sa.delete(Alias).where(Alias.name == entry.name, Alias.version == entry.version))
            s.delete(entry)
            s.flush()
            still_used = s.scalar(sa.select(Entry.id).where(Entry.blob_sha256 == entry.blob_sha256).limit(1))
            if still_used is None:
                s.execute(sa.delete(Blob).where(Blob.sha256 == entry.blob_sha256))

        self._write(work)
        return target
