"""Registry.list over 10,000 entries with a filter, in milliseconds, against the
baseline of the same filter as one raw SQL query through sqlite3 (no records built).

    python benchmarks/registry_list.py [--entries 10000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
from pathlib import Path

from timing import median_seconds  # benchmarks/timing.py, beside this script

import reszoo
from reszoo import Registry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registry.db"
        registry = Registry(path)
        # A few real entries give the architectures and blobs; the rest are rows
        # pointing at them, inserted in bulk (adding 10,000 weight files is not what we time).
        seeds = [
            registry.add(f"seed{i}", reszoo.create_model(name))
            for i, name in enumerate(("resnet20", "plain20", "highway20"))
        ]
        rng = random.Random(0)
        rows = []
        for i in range(args.entries - len(seeds)):
            seed = seeds[i % len(seeds)]
            top1 = rng.uniform(0.5, 0.95)
            rows.append(
                (
                    f"net{i // 3}",
                    i % 3 + 1,
                    seed.arch_digest,
                    seed.blob_sha256,
                    rng.choice(["cifar10", "fashion-mnist"]),
                    top1,
                    f'{{"top1": {top1}}}',
                    "[]",
                    "{}",
                    "{}",
                    "2026-11-26 00:00:00",
                )
            )
        with sqlite3.connect(path) as conn:
            conn.executemany(
                "INSERT INTO entries (name, version, arch_digest, blob_sha256, dataset, top1, metrics_json,"
                " history_json, recipe_json, data_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
        n = len(registry.list(all_versions=True))
        found = registry.list(dataset="cifar10", min_top1=0.9)
        ours = 1e3 * median_seconds(lambda: registry.list(dataset="cifar10", min_top1=0.9), 9)
        conn = sqlite3.connect(path)
        sql = (
            "SELECT e.* FROM entries e JOIN (SELECT name, MAX(version) v FROM entries "
            "WHERE dataset = 'cifar10' AND top1 >= 0.9 GROUP BY name) l ON l.name = e.name AND l.v = e.version"
        )
        raw = 1e3 * median_seconds(lambda: conn.execute(sql).fetchall(), 9)
        assert len(conn.execute(sql).fetchall()) == len(found)
    print(f"{n} entries; filter dataset=cifar10, top1>=0.9, latest qualifying versions: {len(found)} match")
    print(f"Registry.list      {ours:8.1f} ms   (target <= 100)")
    print(f"raw sqlite3 query  {raw:8.1f} ms   (baseline)")
    print(f"ratio              {ours / raw:8.2f}x")


if __name__ == "__main__":
    main()
