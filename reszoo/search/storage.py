"""Where studies are stored: memory, a journal file, or a database.

``memory`` serves one process; a journal file serves several processes on one
machine (appends under a file lock, no "database is locked"); an RDB URL
(PostgreSQL) serves workers on many machines. A journal cut short by a crash
is repaired before Optuna reads it. Studies must live in another database
than a reszoo registry: both keep their schema version in an
``alembic_version`` table.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from reszoo.errors import InputError, SearchError


def default_storage() -> str:
    from reszoo.zoo.hub import home

    return f"journal:{home() / 'search' / 'studies.log'}"


def journal_path(url: str) -> Path | None:
    """The journal file a storage URL names, ``None`` for memory and databases;
    refuses anything else before any work starts."""
    if url == "memory" or ("://" in url and not url.startswith("journal:")):
        return None
    path = None
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:")).expanduser()
    elif url.endswith((".log", ".journal")):
        path = Path(url).expanduser()
    if path is not None:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise InputError(
                f"storage {url!r} lies under {str(blocker)!r}, which is a file, not a folder; give a "
                "journal path in a folder",
                field="storage",
                value=url,
            )
        if path.is_dir():
            raise InputError(
                f"storage {url!r} is a folder; give a journal file such as journal:{path / 'studies.log'}",
                field="storage",
                value=url,
            )
        return path
    raise InputError(
        f"storage {url!r} is not 'memory', 'journal:PATH', a .log/.journal file or a database URL "
        "(postgresql+psycopg://user@host/db)",
        field="storage",
        value=url,
    )


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """``memory``, ``journal:PATH`` (or a path ending .log/.journal), or an SQLAlchemy URL."""
    path = journal_path(url)
    if url == "memory":
        return optuna.storages.InMemoryStorage()
    if path is not None:
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path.parent.mkdir(parents=True, exist_ok=True)
        # The open-lock works on file systems without symlinks too (NFS among them).
        lock = JournalFileOpenLock(str(path))
        try:
            if path.is_file():
                lock.acquire()  # the lock every append holds: no worker is mid-write while we look
                try:
                    repair_journal(path)
                finally:
                    lock.release()
            return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
        except OSError as exc:  # a read-only folder (no lock file), a journal that cannot be read or repaired
            raise SearchError(
                f"cannot use study journal {path}: {exc.strerror or exc}; give a --storage in a folder you can write to"
            ) from None
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}  # wait for a writer rather than fail at once
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # A heartbeat lets a restarted study fail the trials of workers that died.
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=30, grace_period=120)
    except Exception as exc:  # SQLAlchemy raises many kinds (driver missing, refused, auth)
        raise SearchError(f"cannot open study storage {redact(url)}: {exc}") from None


def repair_journal(path: Path) -> str | None:
    """Check a study journal line by line before Optuna reads it.

    A process killed mid-append leaves a last line cut short (or stray bytes):
    that tail is moved to ``PATH.damaged-N`` and the journal truncated to its
    last whole entry, so the study reopens with every trial that was written
    (a message says so). A damaged line with good lines after it cannot be
    dropped safely (later entries may refer to it): that is refused, naming the
    line and how to repair the file by hand. Returns the repair made, if any.
    """
    good_end, bad_line, number = 0, None, 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if bad_line is not None:
                raise SearchError(
                    f"study journal {path} is damaged at line {bad_line} (not a whole JSON entry), and "
                    f"{number - bad_line} or more lines follow it, so it cannot be cut off safely. Keep a copy, then "
                    f"remove that line (sed -i '{bad_line}d' {path}) and try again; the trials it recorded may be lost"
                )
            try:
                whole = line.endswith(b"\n") and isinstance(json.loads(line), dict)
            except ValueError:  # JSONDecodeError, and UnicodeDecodeError for stray bytes
                whole = False
            if whole:
                good_end += len(line)
            else:
                bad_line = number
    if bad_line is None:
        return None
    size = path.stat().st_size
    kept = path.with_name(f"{path.name}.damaged-{int(time.time())}")
    with path.open("rb") as handle:
        handle.seek(good_end)
        kept.write_bytes(handle.read())
    with path.open("r+b") as handle:
        handle.truncate(good_end)
    message = (
        f"study journal {path}: its last line (line {bad_line}, {size - good_end} bytes) was cut short, as a "
        f"crash mid-write leaves it; removed it (kept in {kept}) and reopened the {bad_line - 1} whole entries"
    )
    warnings.warn(message, RuntimeWarning, stacklevel=2)
    return message


def redact(url: str) -> str:
    """A storage URL fit to print and to keep in lineage: no password."""
    if "://" not in url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: show the scheme only
        return url.split("://", 1)[0] + "://..."


def check_apart(storage: str, registry: str) -> None:
    def norm(url: str) -> str:
        return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url

    if "://" in storage and norm(storage) == norm(registry):
        raise InputError(
            f"study storage {redact(storage)} is the registry's database; both keep a schema version in "
            "'alembic_version', so give the study its own database (another SQLite file, or another PostgreSQL "
            "database or schema)",
            field="storage",
        )


def study_attrs(storage: str, study: str) -> dict[str, Any]:
    """The user attributes of a study in ``storage`` (empty if there is no such study)."""
    if storage == "memory":
        return {}
    try:
        summaries = optuna.get_all_study_summaries(open_storage(storage), include_best_trial=False)
    except Exception as exc:  # an unreachable database: the run below reports it properly
        raise SearchError(f"cannot read studies in {redact(storage)}: {exc}") from None
    for summary in summaries:
        if summary.study_name == study:
            return dict(summary.user_attrs)
    return {}
