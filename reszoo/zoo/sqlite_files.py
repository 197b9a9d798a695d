"""A SQLite registry file: where a URL puts it, whether it may be used, and how
to read it without writing a byte to it or beside it.

Reading never writes. Where this user may write the file and its folder, it is
read on ``query_only`` connections: a settled file (rollback-journal mode, as
the shipped zoo is) then gets no file beside it, and a WAL-mode file's -wal and
-shm come and go as SQLite keeps them for any reader. Elsewhere (a read-only
folder or mount, another user's registry) it is read with ``mode=ro``: a
settled file as it is, a WAL-mode file through the -shm index of a writer that
has it open; and where there is no index, nobody is writing it, so it is read
``immutable``. Only a -wal that nobody checkpointed, in such a place, cannot be
read correctly; that is refused.

The file itself is only ever opened through SQLite: closing any other handle on
it would drop the POSIX locks this process's SQLite connections hold on it (the
first way to corrupt a SQLite file in SQLite's own list), and a writer in
another process could then checkpoint or delete the log under them.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa

from reszoo.errors import RegistryError, RemoteUnavailableError


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
    """Whether ``path`` exists; refuses, before anything opens it, a folder, a missing
    file that may not be created, and an empty file. (A file that is not a SQLite
    database is refused by its first read: see ``not_sqlite_message``.)"""
    if path.is_dir():
        raise RegistryError(f"registry path {path} is a directory; give a file such as {path / 'registry.db'}")
    if not path.exists():
        if not create:
            raise RemoteUnavailableError(f"registry {path} does not exist")
        if not path.parent.is_dir():
            raise RegistryError(f"cannot create registry {path}: folder {path.parent} does not exist")
        return False
    if path.stat().st_size == 0:
        # What a failed copy, a full disk or a truncated download leaves: writing a schema
        # into it would turn "my registry is gone" into "my registry is empty".
        raise RegistryError(
            f"registry {path} is an empty file (0 bytes), not a registry; reszoo will not write into "
            "it. If it should hold a registry, restore it; to start a new one, remove the file or give "
            "a path that does not exist yet"
        )
    return True


def not_sqlite_message(display_url: str) -> str:
    return (
        f"{display_url} is not a usable database: not a SQLite database, or one damaged beyond reading; reszoo "
        "will not touch it. Move it aside or point --registry / RESZOO_HOME elsewhere"
    )


def writable(path: Path) -> bool:
    """Whether this user may write the file and create SQLite's files beside it."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def unwritable_message(display_url: str) -> str:
    return (
        f"registry {display_url} cannot be written (a read-only file or folder); nothing was changed. "
        "Reading it works; write into a registry you can write (--registry, $RESZOO_HOME)"
    )


def _reads_in_place(path: Path) -> bool:
    """Whether SQLite reads ``path`` read-only where it lies: a settled file, or a WAL-mode
    one whose -shm index a writer keeps; not a WAL-mode one with no index, which a
    reader cannot create here."""
    try:
        connection = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        try:
            connection.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        finally:
            connection.close()
    except sqlite3.OperationalError:
        return False
    except sqlite3.DatabaseError:
        return True  # not a database at all: the registry's first read says so
    return True


def read_url(path: Path) -> tuple[str, bool]:
    """A URL that reads ``path`` without writing to it or beside it, and whether its
    connections must be made ``query_only`` (see the module docstring)."""
    uri = f"sqlite:///file:{quote(str(path.resolve()))}?{{}}&uri=true"
    if writable(path):
        return uri.format("mode=rw"), True
    if _reads_in_place(path):
        return uri.format("mode=ro"), False
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise RegistryError(
            f"registry {path} has a write-ahead log ({wal.name}) that was never checkpointed, in a place this user "
            "cannot write: its last writes cannot be read from here. Checkpoint it where it can be written "
            f"(sqlite3 {path.name} 'PRAGMA wal_checkpoint(TRUNCATE)'), then copy it again"
        )
    return uri.format("mode=ro&immutable=1"), False
