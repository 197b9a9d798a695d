"""Writing files so that a reader, a crash or a full disk never leaves half of one.

Every file reszoo writes (spec files, exported weights, checkpoints, the
data cache, release results) goes through :func:`atomic_file`: the bytes go
to a temporary file beside the target, which replaces it only once whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    On any error the temporary file is removed and ``path`` keeps what it held.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: What matplotlib writes, by file suffix.
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def ensure_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a folder that exists and can be written, created if missing; a
    path that is a file, lies under one or cannot be written is an InputError
    naming it (``RESZOO_HOME`` set to a file, a read-only home)."""
    from reszoo.errors import InputError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{what} {str(path)!r} is a file, not a folder; point it at a folder") from None
    except NotADirectoryError:
        raise InputError(f"{what} {str(path)!r} lies under a file, not a folder; point it at a folder") from None
    except OSError as exc:
        raise InputError(f"cannot create {what} {str(path)!r}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise InputError(f"{what} {str(path)!r} is not writable; point it at a folder you can write to")
    return path


def check_output_file(
    path: str | os.PathLike[str], what: str, *, suffixes: tuple[str, ...] | None = None, overwrite: bool = True
) -> Path:
    """Refuse, before the work that produces it, an output file that could not be
    written: a folder, a missing or read-only folder, a name the file system
    refuses, an unknown format, or (without ``overwrite``) an existing file."""
    from reszoo.errors import InputError

    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise InputError(f"{what} {str(path)!r} has no known format; end it with {', '.join(suffixes)}")
    if len(path.name.encode()) > 255:  # before any stat: the OS raises on such a name
        raise InputError(
            f"cannot write {what}: its file name is {len(path.name.encode())} bytes, more than the "
            "255 a file system allows; choose a shorter name"
        )
    if path.is_dir():
        raise InputError(f"{what} {str(path)!r} is a folder; give a file name in it")
    if not path.parent.is_dir():
        raise InputError(
            f"cannot write {what} {str(path)!r}: folder {str(path.parent)!r} does not exist; create it first"
        )
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"cannot write {what} {str(path)!r}: folder {str(path.parent)!r} is not writable")
    if path.exists() and not overwrite:
        raise InputError(f"{what} {str(path)!r} already exists; choose another path or allow overwriting (--force)")
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))
