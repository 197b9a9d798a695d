"""Create or refresh the shipped public zoo, ``registry.db`` at the repository root.

Adds every preset's architecture (idempotent), stores every weights blob
compressed where that saves space (zoo/blob_codec.py: every clone carries the
file, and GitHub refuses files over 100 MB), and settles the file (WAL
checkpointed, vacuumed, rollback-journal mode), so that reading it later, from
a read-only folder too, writes nothing. ``reszoo release zoo.toml --into
registry.db`` adds the trained entries and settles it the same way.

    python tools/make_registry.py [PATH]
"""

from __future__ import annotations

import sys

from reszoo.zoo.hub import SHIPPED_REGISTRY, add_presets
from reszoo.zoo.registry import Registry


def main(path: str) -> None:
    registry = Registry(path)
    n = add_presets(registry)
    compressed, saved = registry.compress_blobs()
    settled = registry.settle(vacuum=True)
    print(
        f"{path}: {n} preset architectures; {compressed} blobs compressed ({saved / 1e6:.1f} MB saved)"
        + ("" if settled else " (not settled: another process has it open)")
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(SHIPPED_REGISTRY))
