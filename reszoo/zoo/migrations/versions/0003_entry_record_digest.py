"""Entries carry a record digest: one sha256 over the name, version, architecture
digest, blob sha256, the weights' size and dtypes, the metrics and every other
column of the entry, checked on every read (``reszoo.zoo.entry_record``).

Existing entries get theirs here, each only where its architecture hashes to
its digest and its weights to their sha256: an entry already damaged is left
without one, and is refused on every read as tampered.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import hashlib

import sqlalchemy as sa
from alembic import op

from reszoo.errors import SpecError
from reszoo.zoo.entry_record import RECORD_FIELDS, record_digest
from reszoo.zoo.spec import ArchSpec

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ENTRY_COLUMNS = [name for name in RECORD_FIELDS if name not in ("blob_size", "dtypes", "created_at")]
entries = sa.table(
    "entries",
    sa.column("id", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("record_digest", sa.String),
    *(sa.column(name) for name in _ENTRY_COLUMNS),
)
blobs = sa.table("blobs", sa.column("sha256"), sa.column("size"), sa.column("dtypes"), sa.column("data"))
architectures = sa.table("architectures", sa.column("digest"), sa.column("spec_json"))


def _sound(conn: sa.Connection, row: sa.RowMapping) -> bool:
    """Whether the entry's weights hash to their sha256 and its spec to its digest."""
    data = conn.execute(sa.select(blobs.c.data).where(blobs.c.sha256 == row["blob_sha256"])).scalar_one()
    if len(data) != row["blob_size"] or hashlib.sha256(data).hexdigest() != row["blob_sha256"]:
        return False
    try:
        return ArchSpec.from_json(row["spec_json"]).digest == row["arch_digest"]
    except SpecError:
        return False


def upgrade() -> None:
    op.add_column("entries", sa.Column("record_digest", sa.String(64), nullable=True))
    conn = op.get_bind()
    rows = (
        conn.execute(
            sa.select(entries, blobs.c.size.label("blob_size"), blobs.c.dtypes, architectures.c.spec_json)
            .join(blobs, blobs.c.sha256 == entries.c.blob_sha256)
            .join(architectures, architectures.c.digest == entries.c.arch_digest)
        )
        .mappings()
        .all()
    )
    for row in rows:
        if _sound(conn, row):
            conn.execute(
                sa.update(entries).where(entries.c.id == row["id"]).values(record_digest=record_digest(dict(row)))
            )


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("record_digest")
