"""Create or refresh the shipped public zoo, ``registry.db`` at the repository root.

Adds every preset's architecture (idempotent) and leaves the file checkpointed
in WAL mode, so that reading it later changes no byte of it.

    python tools/make_registry.py [PATH]
"""

from __future__ import annotations

import sqlite3
import sys

from reszoo.zoo.hub import SHIPPED_REGISTRY, add_presets
from reszoo.zoo.registry import Registry


def main(path: str) -> None:
    with Registry(path) as registry:
        n = add_presets(registry)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("VACUUM")
    connection.close()
    print(f"{path}: {n} preset architectures")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(SHIPPED_REGISTRY))
