"""Initial registry: architectures, blobs, entries, aliases, latency.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "architectures",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("name", sa.String(200), nullable=True, index=True),
        sa.Column("family", sa.String(16), nullable=False),
        sa.Column("block", sa.String(16), nullable=False),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("params", sa.BigInteger, nullable=False),
        sa.Column("macs", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("dtypes", sa.String(200), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("arch_digest", sa.String(64), sa.ForeignKey("architectures.digest"), nullable=False, index=True),
        sa.Column("blob_sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False, index=True),
        sa.Column("dataset", sa.String(200), nullable=True, index=True),
        sa.Column("top1", sa.Float, nullable=True, index=True),
        sa.Column("metrics_json", sa.Text, nullable=False),
        sa.Column("history_json", sa.Text, nullable=False),
        sa.Column("recipe_json", sa.Text, nullable=False),
        sa.Column("data_json", sa.Text, nullable=False),
        sa.Column("device", sa.String(200), nullable=True),
        sa.Column("parent", sa.String(220), nullable=True),
        sa.Column("study", sa.String(500), nullable=True),
        sa.Column("trial", sa.Integer, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
        sa.UniqueConstraint("name", "version", name="uq_entries_name_version"),
    )
    op.create_table(
        "aliases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("alias", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "latency",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("arch_digest", sa.String(64), sa.ForeignKey("architectures.digest"), nullable=False, index=True),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("dtype", sa.String(16), nullable=False),
        sa.Column("runtime", sa.String(16), nullable=False),
        sa.Column("median_ms", sa.Float, nullable=False),
        sa.Column("p90_ms", sa.Float, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("versions_json", sa.Text, nullable=False),
        sa.Column("measured_at", TS, nullable=False),
        sa.UniqueConstraint("arch_digest", "device", "batch_size", "dtype", "runtime", name="uq_latency_key"),
    )
    op.create_index("ix_latency_device", "latency", ["device"])


def downgrade() -> None:
    for table in ("latency", "aliases", "entries", "blobs", "architectures"):
        op.drop_table(table)
