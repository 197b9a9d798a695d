"""Per-part latency lookup tables for the latency predictor.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "latency_parts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("runtime", sa.String(16), nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("dtype", sa.String(16), nullable=False),
        sa.Column("part", sa.String(200), nullable=False),
        sa.Column("median_ms", sa.Float, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("versions_json", sa.Text, nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("device", "runtime", "batch_size", "dtype", "part", name="uq_latency_parts_key"),
    )


def downgrade() -> None:
    op.drop_table("latency_parts")
