"""How each weights blob is stored: as its safetensors bytes, or compressed (zoo/blob_codec.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every blob written before this revision is stored as it is: the empty encoding.
    op.add_column("blobs", sa.Column("encoding", sa.String(32), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("encoding")
