"""A SQLite registry file: where a URL puts it, whether it may be used, and how
to read it without writing a byte to it or beside it.

Reading never writes. A settled file (rollback-journal mode, as the shipped zoo
is) is read with ``mode=ro``: SQLite then creates nothing. A WAL-mode file that
this process may write is read on a ``query_only`` connection, which keeps
SQLite's own -wal/-shm files coming and going as they do for any reader (the
last connection removes them) and can change nothing. A WAL-mode file in a
place this user cannot write (a read-only folder or mount, another user's
registry) is read through the -shm index of a writer that has it open, else as
``immutable``: with no index beside it, nobody is writing it. Only a -wal that
nobody checkpointed, in such a place, cannot be read correctly; that is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa

from reszoo.errors import RegistryError, RemoteUnavailableError

SQLITE_MAGIC = b"SQLite format 3\x00"
#: Header bytes 18 and 19 (file format write and read versions): 2 in WAL mode.
_WAL_FORMAT = 2


def sqlite_location(url: sa.URL) -> tuple[Path | None, bool]:
    """The file a SQLite URL names (``None`` in memory), and whether the URL asks for
    read-only access. SQLAlchemy's URI form ``sqlite:///file:/path/r.db?mode=ro&uri=true``
    names the file after ``file:``; ``mode=ro`` or ``immutable=1`` there means read-only."""
    database = url.database or ""
    query = {key: str(value) for key, value in url.query.items()}
    if query.get("uri", "").lower() in ("true", "1") and database.startswith("file:"):
        parts = urlsplit(database)
        path = unquote(parts.path)
        memory = query.get("mode") == "memory" or path in ("", ":memory:")
        readonly = query.get("mode") == "ro" or query.get("immutable") == "1"
        return (None if memory else Path(path).expanduser()), readonly
    return (None if database in ("", ":memory:") else Path(database).expanduser()), False


def check_registry_file(path: Path, *, create: bool) -> bool:
    """Whether ``path`` exists as a SQLite file; refuses, before anything opens it, a
    folder, a missing file that may not be created, an empty file and a file of
    something else."""
    if path.is_dir():
        raise RegistryError(f"registry path {path} is a directory; give a file such as {path / 'registry.db'}")
    if not path.exists():
        if not create:
            raise RemoteUnavailableError(f"registry {path} does not exist")
        if not path.parent.is_dir():
            raise RegistryError(f"cannot create registry {path}: folder {path.parent} does not exist")
        return False
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise RegistryError(f"cannot read registry {path}: {exc.strerror or exc}") from None
    if not header:
        # What a failed copy, a full disk or a truncated download leaves: writing a schema
        # into it would turn "my registry is gone" into "my registry is empty".
        raise RegistryError(f"registry {path} is an empty file (0 bytes), not a registry; reszoo will not write into "
                            "it. If it should hold a registry, restore it; to start a new one, remove the file or give "
                            "a path that does not exist yet")
    if header != SQLITE_MAGIC:
        raise RegistryError(
            f"{path} exists but is not a SQLite database; reszoo will not touch it. "
            "Move it aside or point --registry / RESZOO_HOME elsewhere."
        )
    return True


def writable(path: Path) -> bool:
    """Whether this user may write the file and create SQLite's files beside it."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def unwritable_message(display_url: str) -> str:
    return (f"registry {display_url} cannot be written (a read-only file or folder); nothing was changed. "
            "Reading it works; write into a registry you can write (--registry, $RESZOO_HOME)")


def _in_wal_mode(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(18)
        return handle.read(2) == bytes((_WAL_FORMAT, _WAL_FORMAT))


def read_url(path: Path) -> tuple[str, bool]:
    """A URL that reads ``path`` without writing to it or beside it, and whether its
    connections must be made ``query_only`` (see the module docstring)."""
    uri = f"sqlite:///file:{quote(str(path.resolve()))}?{{}}&uri=true"
    if not _in_wal_mode(path):
        return uri.format("mode=ro"), False
    if writable(path):
        return uri.format("mode=rw"), True
    if Path(f"{path}-shm").exists():
        return uri.format("mode=ro"), False  # a writer has it open: read through its index
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise RegistryError(
            f"registry {path} has a write-ahead log ({wal.name}) that was never checkpointed, in a place this user "
            "cannot write: its last writes cannot be read from here. Checkpoint it where it can be written "
            f"(sqlite3 {path.name} 'PRAGMA wal_checkpoint(TRUNCATE)'), then copy it again"
        )
    return uri.format("mode=ro&immutable=1"), False
