"""Where the user's local registry and the default remote are.

The local registry is ``$RESZOO_HOME/registry.db`` (default: the user's cache
folder); ``RESZOO_REGISTRY`` may point it at any SQLAlchemy URL instead. The
default remote is ``RESZOO_REMOTE`` or, in a source checkout, the public zoo
``registry.db`` at the repository root. Nothing here opens a registry.
"""

from __future__ import annotations

import os
from pathlib import Path

from reszoo.errors import RegistryError
from reszoo.zoo.store import to_url

#: The public zoo shipped with the source tree.
SHIPPED_REGISTRY = Path(__file__).resolve().parents[2] / "registry.db"


def home() -> Path:
    if os.environ.get("RESZOO_HOME"):
        return Path(os.environ["RESZOO_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "reszoo"


def local_url() -> str:
    return os.environ.get("RESZOO_REGISTRY") or str(home() / "registry.db")


def remote_url(url: str | None = None) -> str:
    """``url``, else ``RESZOO_REMOTE``, else the shipped ``registry.db``."""
    url = url or os.environ.get("RESZOO_REMOTE")
    if url:
        return url
    if SHIPPED_REGISTRY.is_file():
        return str(SHIPPED_REGISTRY)
    raise RegistryError(
        "no remote registry configured: the public zoo is registry.db at the root of the reszoo repository, "
        "found automatically only in a source checkout (pip install -e .); point RESZOO_REMOTE at that file "
        "(export RESZOO_REMOTE=/path/to/reszoo/registry.db) or pass --remote URL"
    )


def same_location(url: str, other: str) -> bool:
    """Whether two registry locations (URLs or SQLite paths) name the same database."""

    def key(location: str) -> str:
        text = to_url(location)
        return str(Path(text.removeprefix("sqlite:///")).resolve()) if text.startswith("sqlite:///") else text

    return key(url) == key(other)
