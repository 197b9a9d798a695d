"""The latency tables of a registry: measured rows by architecture, device,
batch size, dtype and runtime, and the predictor's per-part lookup tables.

A mixin of :class:`~reszoo.zoo.registry.Registry` (it uses the store's
sessions and write transaction), kept apart because it is the latency code's
storage, not the zoo's: measuring and predicting live in reszoo.latency.measure
and reszoo.latency.predictor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from reszoo.errors import EntryNotFoundError, InputError
from reszoo.zoo.records import LatencyRecord
from reszoo.zoo.schema import Architecture, Latency, LatencyPart
from reszoo.zoo.spec import canonical_json
from reszoo.zoo.store import SqlStore, _as_utc, now


class LatencyStore(SqlStore):
    """Latency rows and lookup tables (on a SqlStore's ``_session`` and ``_write``)."""

    def add_latency(self, record: LatencyRecord) -> None:
        """Store a latency measurement, replacing any with the same key."""

        def work(s: Session) -> None:
            if s.get(Architecture, record.arch_digest) is None:
                raise EntryNotFoundError(
                    f"no architecture {record.arch_digest[:12]} in {self.display_url}; add it first"
                )
            self._upsert_latency(s, record, replace=True)

        self._write(work)

    def _upsert_latency(self, session: Session, record: LatencyRecord, *, replace: bool) -> None:
        row = session.scalars(
            sa.select(Latency).where(
                Latency.arch_digest == record.arch_digest,
                Latency.device == record.device,
                Latency.batch_size == record.batch_size,
                Latency.dtype == record.dtype,
                Latency.runtime == record.runtime,
            )
        ).first()
        values = dict(
            median_ms=record.median_ms,
            p90_ms=record.p90_ms,
            samples=record.samples,
            versions_json=canonical_json(dict(record.versions)),
            measured_at=record.measured_at,
        )
        if row is None:
            session.add(
                Latency(
                    arch_digest=record.arch_digest,
                    device=record.device,
                    batch_size=record.batch_size,
                    dtype=record.dtype,
                    runtime=record.runtime,
                    **values,
                )
            )
        elif replace:
            for key, value in values.items():
                setattr(row, key, value)

    def latency_row(
        self, arch_digest: str, device: str, batch_size: int, dtype: str, runtime: str
    ) -> LatencyRecord | None:
        """The stored measurement with exactly this key, if any (one indexed lookup)."""
        with self._session() as s:
            row = s.scalars(
                sa.select(Latency).where(
                    Latency.arch_digest == arch_digest,
                    Latency.device == device,
                    Latency.batch_size == batch_size,
                    Latency.dtype == dtype,
                    Latency.runtime == runtime,
                )
            ).first()
            return None if row is None else latency_record(row)

    def best_latency(
        self, device: str, *, batch_size: int = 1, dtype: str = "float32", runtime: str | None = None
    ) -> dict[str, float]:
        """Architecture digest -> lowest stored median latency (ms) on ``device``."""
        query = (
            sa.select(Latency.arch_digest, sa.func.min(Latency.median_ms))
            .where(Latency.device == device, Latency.batch_size == batch_size, Latency.dtype == dtype)
            .group_by(Latency.arch_digest)
        )
        if runtime is not None:
            query = query.where(Latency.runtime == runtime)
        with self._session() as s:
            return {digest: median for digest, median in s.execute(query)}

    def latency_devices(self) -> list[str]:
        """Every device name latency is stored under."""
        with self._session() as s:
            return list(s.scalars(sa.select(Latency.device).distinct().order_by(Latency.device)))

    def latency_device(self, name: str) -> str:
        """The stored device ``name`` stands for: ``cpu`` or ``cuda`` (this machine's),
        part of one stored name (``h200``), or a stored name. An InputError where it is
        part of several; an EntryNotFoundError naming the stored devices where it stands
        for none of them."""
        from reszoo.devices import device_key

        stored = self.latency_devices()
        try:
            label: str | None = device_key(name, stored)
        except InputError:
            if sum(name.lower() in label.lower() for label in stored) > 1:
                raise  # part of several stored names: which one is the user's to say
            label = None
        if label not in stored:
            here = f" ({label} here)" if label is not None and label != name else ""
            raise EntryNotFoundError(
                f"no latency stored for device {name!r}{here} in {self.display_url}; stored "
                f"devices: {', '.join(map(repr, stored)) or 'none'}"
            )
        return label

    def latency(self, arch_digest: str) -> list[LatencyRecord]:
        with self._session() as s:
            rows = s.scalars(
                sa.select(Latency)
                .where(Latency.arch_digest == arch_digest)
                .order_by(Latency.device, Latency.runtime, Latency.batch_size, Latency.dtype)
            ).all()
            return [latency_record(r) for r in rows]

    def part_latencies(self, device: str, runtime: str, batch_size: int, dtype: str) -> dict[str, float]:
        """A latency lookup table: part key -> median ms, for one device and setting."""
        if not self._schema_has("0002"):
            return {}  # a registry from before lookup tables, read without upgrading it
        with self._session() as s:
            rows = s.execute(
                sa.select(LatencyPart.part, LatencyPart.median_ms).where(
                    LatencyPart.device == device,
                    LatencyPart.runtime == runtime,
                    LatencyPart.batch_size == batch_size,
                    LatencyPart.dtype == dtype,
                )
            )
            return {part: median for part, median in rows}

    def add_part_latencies(
        self,
        device: str,
        runtime: str,
        batch_size: int,
        dtype: str,
        medians: Mapping[str, tuple[float, int]],
        versions: Mapping[str, str],
    ) -> None:
        """Store (median ms, samples) per part key, replacing rows with the same key."""
        measured_at = now()

        def work(s: Session) -> None:
            existing = {
                row.part: row
                for row in s.scalars(
                    sa.select(LatencyPart).where(
                        LatencyPart.device == device,
                        LatencyPart.runtime == runtime,
                        LatencyPart.batch_size == batch_size,
                        LatencyPart.dtype == dtype,
                        LatencyPart.part.in_(list(medians)),
                    )
                )
            }
            for part, (median, samples) in medians.items():
                row = existing.get(part)
                if row is None:
                    row = LatencyPart(device=device, runtime=runtime, batch_size=batch_size, dtype=dtype, part=part)
                    s.add(row)
                row.median_ms, row.samples = median, samples
                row.versions_json, row.measured_at = canonical_json(dict(versions)), measured_at

        self._write(work)


def latency_record(row: Latency) -> LatencyRecord:
    """The frozen record of a latency row (what latency() returns and transfer copies)."""
    return LatencyRecord(
        row.arch_digest,
        row.device,
        row.batch_size,
        row.dtype,
        row.runtime,
        row.median_ms,
        row.p90_ms,
        row.samples,
        json.loads(row.versions_json),
        _as_utc(row.measured_at),
    )
