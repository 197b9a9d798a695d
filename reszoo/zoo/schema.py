"""The registry's tables (SQLAlchemy 2.0 typed ORM).

Schema changes never edit this file alone: each one adds a migration under
``migrations/versions`` and bumps ``SCHEMA_REVISION``. The ORM classes stay
inside the registry; callers get the frozen records of ``records.py``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: The Alembic revision this code reads and writes; a newer database is refused.
SCHEMA_REVISION = "0004"
#: The revision from which every entry carries its record digest (``entry_record.py``).
RECORD_DIGEST_REVISION = "0003"
#: The revision from which a blob may be stored compressed (``blob_codec.py``).
BLOB_ENCODING_REVISION = "0004"


class Base(DeclarativeBase):
    pass


class Architecture(Base):
    __tablename__ = "architectures"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec_json: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(200), index=True)  # the preset name, if any
    family: Mapped[str] = mapped_column(String(16))
    block: Mapped[str] = mapped_column(String(16))
    depth: Mapped[int] = mapped_column(Integer)
    params: Mapped[int] = mapped_column(BigInteger)
    macs: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Blob(Base):
    """safetensors bytes, addressed by their sha256 and stored once."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    dtypes: Mapped[str] = mapped_column(String(200))  # e.g. "float32:62,int64:19"
    data: Mapped[bytes] = mapped_column(LargeBinary)  # as stored: see ``encoding``
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "" (the safetensors bytes as they are) or a compression (blob_codec.py); size and sha256
    # are always the safetensors bytes'.
    encoding: Mapped[str] = mapped_column(String(32), default="", server_default="")


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_entries_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    arch_digest: Mapped[str] = mapped_column(ForeignKey("architectures.digest"), index=True)
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    dataset: Mapped[str | None] = mapped_column(String(200), index=True)
    top1: Mapped[float | None] = mapped_column(Float, index=True)  # denormalised from metrics for filtering
    metrics_json: Mapped[str] = mapped_column(Text, default="{}")
    history_json: Mapped[str] = mapped_column(Text, default="[]")
    recipe_json: Mapped[str] = mapped_column(Text, default="{}")
    data_json: Mapped[str] = mapped_column(Text, default="{}")  # normalisation, class names
    device: Mapped[str | None] = mapped_column(String(200))
    parent: Mapped[str | None] = mapped_column(String(220))  # "name@version"
    study: Mapped[str | None] = mapped_column(String(500))
    trial: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    # sha256 over every column above and the blob's size and dtypes, checked on every read.
    # Deferred: a registry from before it (read without upgrading) has no such column.
    record_digest: Mapped[str | None] = mapped_column(String(64), deferred=True)


class Alias(Base):
    """A movable name for one version (``resnet56:best``); ``latest`` is implicit."""

    __tablename__ = "aliases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class Latency(Base):
    __tablename__ = "latency"
    __table_args__ = (
        UniqueConstraint("arch_digest", "device", "batch_size", "dtype", "runtime", name="uq_latency_key"),
        Index("ix_latency_device", "device"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arch_digest: Mapped[str] = mapped_column(ForeignKey("architectures.digest"), index=True)
    device: Mapped[str] = mapped_column(String(200))
    batch_size: Mapped[int] = mapped_column(Integer)
    dtype: Mapped[str] = mapped_column(String(16))
    runtime: Mapped[str] = mapped_column(String(16))
    median_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    versions_json: Mapped[str] = mapped_column(Text, default="{}")
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LatencyPart(Base):
    """One row of a latency lookup table: a stem, block or head timed alone."""

    __tablename__ = "latency_parts"
    __table_args__ = (
        UniqueConstraint("device", "runtime", "batch_size", "dtype", "part", name="uq_latency_parts_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device: Mapped[str] = mapped_column(String(200))
    runtime: Mapped[str] = mapped_column(String(16))
    batch_size: Mapped[int] = mapped_column(Integer)
    dtype: Mapped[str] = mapped_column(String(16))
    part: Mapped[str] = mapped_column(String(200))
    median_ms: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    versions_json: Mapped[str] = mapped_column(Text, default="{}")
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
