"""A SQLAlchemy database that holds a reszoo registry: the engine, SQLite's
pragmas, the schema and its migrations, and the write transaction with its retries.

Contract (for SQLite and PostgreSQL alike): every write is one transaction;
on SQLite writes begin ``IMMEDIATE`` (the write lock taken up front, so a
transaction never fails half-way on an upgrade to a write lock), the database
runs in WAL mode so readers never block writers, and a busy timeout makes
writers queue instead of failing. Races that still slip through (two
PostgreSQL writers choosing the same next version) are retried; a read-only
file or a full disk is named at once. A file that is not a SQLite database,
or a database that is not a reszoo registry, is refused and never modified.

Reading never writes: a registry opens for reading only (``sqlite_files.py``
says how a SQLite file is read without a byte written to it or beside it), and
its first write opens it for writing, switching SQLite to WAL and migrating an
older schema then. Until then an older schema is read as it is.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from reszoo.errors import InputError, RegistryError, RemoteUnavailableError
from reszoo.zoo.schema import SCHEMA_REVISION
from reszoo.zoo.sqlite_files import (
    check_registry_file,
    not_sqlite_message,
    read_url,
    sqlite_location,
    unwritable_message,
    writable,
)

T = TypeVar("T")

#: Key of the PostgreSQL advisory lock held while migrating a schema.
_PG_MIGRATION_LOCK = 7_240_115
_RESZOO_TABLES = {"architectures", "blobs", "entries", "aliases", "latency", "latency_parts", "alembic_version"}
_WRITE_ATTEMPTS = 8


def _lost_race(exc: sa_exc.IntegrityError) -> bool:
    """An integrity failure that another attempt can cure: a unique key taken by a
    concurrent writer (PostgreSQL's SQLSTATE 23505, SQLite's "UNIQUE constraint
    failed"), or, on PostgreSQL, weights removed by one between our read and our
    insert (a foreign key, 23503: read committed lets it happen). SQLite writes one
    transaction at a time (BEGIN IMMEDIATE), so a foreign key failure there, like
    NOT NULL or CHECK anywhere, is never a race."""
    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    if code:
        return code in ("23505", "23503")
    reason = str(exc.orig or exc).lower()
    return any(words in reason for words in ("unique constraint", "duplicate key", "violates foreign key constraint"))


def to_url(location: str | os.PathLike[str]) -> str:
    """A SQLAlchemy URL as given, or a file path turned into a SQLite URL."""
    text = os.fspath(location)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything reszoo writes is UTC.
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


class SqlStore:
    """The database under a :class:`~reszoo.zoo.registry.Registry` (see the module docstring)."""

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        create: bool = True,
        readonly: bool = False,
        busy_timeout_s: float = 60.0,
    ) -> None:
        if not isinstance(url, (str, os.PathLike)):
            raise InputError(
                f"Registry needs a SQLAlchemy URL or a SQLite file path, got {type(url).__name__} "
                f"{url!r:.40}; e.g. Registry('registry.db') or Registry('postgresql+psycopg://...')"
            )
        self.url = to_url(url)
        try:
            parsed = sa.engine.make_url(self.url)
        except sa_exc.ArgumentError:
            raise RegistryError(f"{url!r} is neither a SQLAlchemy URL nor a file path") from None
        self.display_url = parsed.render_as_string(hide_password=True)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.readonly = readonly
        self.path: Path | None = None
        #: The schema revision the database is at (older ones are read as they are; a write upgrades them).
        self.revision: str | None = None
        self._busy_timeout_s = busy_timeout_s
        self._writer: sa.Engine | None = None
        if self.is_sqlite:
            self.path, uri_readonly = sqlite_location(parsed)
            self.readonly = readonly or uri_readonly
            if self.path is None or not check_registry_file(self.path, create=create and not self.readonly):
                self._open_writer()  # in memory, or a new file: creating it is the write asked for
                return
            read_with, query_only = read_url(self.path)
            self.engine = sa.create_engine(read_with, connect_args={"timeout": busy_timeout_s})
            _install_sqlite_events(self.engine, busy_timeout_s, writer=False, query_only=query_only)
        else:
            connect_args = {"connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {}
            try:
                self.engine = sa.create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
            except (ImportError, sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as exc:
                raise RegistryError(f"cannot use registry {self.display_url}: {exc}") from None
        with self._database_errors():
            with self.engine.connect() as conn:
                revision, tables = self._current_revision(conn)
            self._check_revision(revision, tables)
            self.revision = revision
        if revision is None:
            self._open_writer()  # an empty database, made a registry (never a read-only one: refused above)

    # ----------------------------------------------------------- connection

    @contextmanager
    def _database_errors(self) -> Iterator[None]:
        """Database failures while opening or migrating, as one line each; the engine is closed."""
        try:
            yield
        except sa_exc.OperationalError as exc:
            self.engine.dispose()
            reason = str(exc.orig or exc).strip()
            if "readonly" in reason.lower() or "read-only" in reason.lower():
                raise RegistryError(unwritable_message(self.display_url)) from None
            raise RemoteUnavailableError(f"cannot reach registry {self.display_url}: {reason}") from None
        except sa_exc.DatabaseError as exc:
            self.engine.dispose()
            if "file is not a database" in str(exc.orig or exc):
                raise RegistryError(not_sqlite_message(self.display_url)) from None
            raise RegistryError(f"{self.display_url} is not a usable database: {exc.orig or exc}") from None

    def _open_writer(self) -> None:
        """Make this registry writable, on its first write: a SQLite file gets a writing
        engine (WAL mode, immediate write transactions) in place of the reading one, and
        an older schema is migrated. Reads never come here."""
        if self._writer is not None:
            return
        if self.readonly:
            raise RegistryError(f"registry {self.display_url} was opened read-only")
        if self.is_sqlite:
            if self.path is not None and self.path.exists() and not writable(self.path):
                raise RegistryError(unwritable_message(self.display_url))
            reader = getattr(self, "engine", None)
            if reader is not None:
                reader.dispose()
            url = self.url if self.path is None else f"sqlite:///{self.path.resolve()}"
            self.engine = sa.create_engine(url, connect_args={"timeout": self._busy_timeout_s})
            _install_sqlite_events(self.engine, self._busy_timeout_s, writer=True, query_only=False)
        writer = self.engine.execution_options(reszoo_write=True)
        with self._database_errors():
            self._migrate(writer)
        self._writer = writer

    def _schema_has(self, revision: str) -> bool:
        """Whether the database's schema includes ``revision``'s tables and columns."""
        return self.revision is not None and self.revision >= revision

    def _refuse_foreign(self, tables: set[str]) -> None:
        if "alembic_version" not in tables and tables - _RESZOO_TABLES:
            raise RegistryError(
                f"{self.display_url} is a database of something else (tables: {', '.join(sorted(tables)[:5])}); "
                "reszoo will not touch it. Point --registry at an empty or reszoo database."
            )

    def _current_revision(self, conn: sa.Connection) -> tuple[str | None, set[str]]:
        tables = set(sa.inspect(conn).get_table_names())
        if "alembic_version" not in tables:
            return None, tables
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar(), tables

    def _check_revision(self, revision: str | None, tables: set[str]) -> None:
        if revision is None:
            self._refuse_foreign(tables)
            if self.readonly:
                raise RegistryError(f"{self.display_url} is not a reszoo registry (it has no registry schema)")
        elif revision > SCHEMA_REVISION:
            raise RegistryError(
                f"{self.display_url} has registry schema {revision}, newer than this reszoo understands "
                f"({SCHEMA_REVISION}); upgrade reszoo"
            )

    def _migrate(self, writer: sa.Engine) -> None:
        if self.revision == SCHEMA_REVISION:
            return
        with writer.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            revision, tables = self._current_revision(conn)  # again, now that we hold the lock
            self._check_revision(revision, tables)
            if revision != SCHEMA_REVISION:
                from alembic import command
                from alembic.config import Config

                config = Config()
                config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        self.revision = SCHEMA_REVISION

    def close(self) -> None:
        self.engine.dispose()

    def settle(self, *, vacuum: bool = False) -> bool:
        """Leave a SQLite registry as one self-contained file for shipping: the WAL
        checkpointed into it and the database switched to rollback-journal mode, so
        that reading it later (from a read-only folder too) writes nothing, not even
        a -wal or -shm file beside it. Opening it for writing switches it back to
        WAL. With ``vacuum``, the file is also rebuilt to its live pages (after blobs
        were compressed or removed). Closes this registry's connections; returns False
        (changing nothing) where another process still has the file open.
        """
        self.close()
        if self.path is None or not self.path.is_file():
            return False
        connection = sqlite3.connect(self.path, timeout=5)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            mode = connection.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
            if vacuum:  # give back the pages freed (blobs compressed or removed): the file shrinks
                connection.execute("VACUUM")
        except sqlite3.OperationalError:  # locked by another process
            return False
        finally:
            connection.close()
        return mode == "delete"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.display_url!r})"

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        bind = self._writer if write and self._writer is not None else self.engine
        with Session(bind, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def _write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one write transaction, retrying lost races."""
        self._open_writer()
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with self._session(write=True) as session:
                    return work(session)
            except (sa_exc.IntegrityError, sa_exc.OperationalError) as exc:
                # A unique key taken by a concurrent writer, a lock wait that
                # outlived the busy timeout, or a PostgreSQL serialisation
                # failure: the transaction was rolled back whole; try again.
                # A read-only file or a full disk will not change by waiting.
                reason = str(exc.orig or exc).lower()
                if isinstance(exc, sa_exc.IntegrityError) and not _lost_race(exc):
                    # NOT NULL, CHECK, or a foreign key no race explains: the same write fails
                    # the same way every time, so retrying would disguise it as a busy registry.
                    raise RegistryError(
                        f"registry {self.display_url} refused the write: {exc.orig or exc}. Nothing "
                        "was changed. This is a bug in reszoo; please report it with this "
                        "message"
                    ) from None
                if "readonly" in reason or "read-only" in reason:
                    raise RegistryError(unwritable_message(self.display_url)) from None
                if "disk is full" in reason or "no space" in reason:
                    raise RegistryError(
                        f"registry {self.display_url}: the disk is full; nothing was changed. Free "
                        "some space and try again"
                    ) from None
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise RegistryError(
                        f"registry {self.display_url} stayed busy; try again: {exc.orig or exc}"
                    ) from None
                time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
        raise AssertionError("unreachable")


def _install_sqlite_events(engine: sa.Engine, busy_timeout_s: float, *, writer: bool, query_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if query_only:
            cursor.execute("PRAGMA query_only = ON")
        if writer:
            # Only takes effect on a new, empty database: big pages read
            # large weight blobs faster (fewer overflow pages to walk).
            cursor.execute("PRAGMA page_size = 65536")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")  # a committed publish survives power loss
            cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get("reszoo_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
