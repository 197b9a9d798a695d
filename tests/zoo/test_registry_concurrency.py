"""Many processes on one SQLite registry, and publishers killed mid-write."""

import multiprocessing as mp
import os
import random
import signal
import sqlite3
import time

import pytest

from reszoo import Registry
from tests.helpers import TINY, tiny_model

PUBLISHERS, PER_PUBLISHER, READERS = 8, 25, 4

# Children come from a fork server that imported reszoo once: not forked from
# pytest (a fork of a process that already ran torch can deadlock in its
# thread pools) and not spawned (each would spend seconds importing torch).
ctx = mp.get_context("forkserver")
ctx.set_forkserver_preload(["reszoo", "tests.helpers"])


def _publisher(url: str, worker: int, errors) -> None:
    try:
        registry = Registry(url)
        for i in range(PER_PUBLISHER):
            registry.add("shared", tiny_model(worker * 1000 + i), notes=f"{worker}/{i}")
    except BaseException as exc:  # any error at all is a failure of the contract
        errors.put(f"publisher {worker}: {type(exc).__name__}: {exc}")


def _reader(url: str, local_url: str, stop, errors, loads) -> None:
    try:
        remote, local = Registry(url), Registry(local_url)
        while not stop.is_set():
            entries = remote.list("shared", all_versions=True)
            if not entries:
                time.sleep(0.01)
                continue
            ref = random.choice(entries).ref
            local.pull(ref, remote)
            local.load(ref)  # verifies the blob against its sha256 first
            loads.value += 1
    except BaseException as exc:
        errors.put(f"reader: {type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_concurrent_publishers_and_readers(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    Registry(url).close()
    errors, stop, loads = ctx.Queue(), ctx.Event(), ctx.Value("i", 0)
    readers = [
        ctx.Process(target=_reader, args=(url, f"sqlite:///{tmp_path / f'local{i}.db'}", stop, errors, loads))
        for i in range(READERS)
    ]
    publishers = [ctx.Process(target=_publisher, args=(url, w, errors)) for w in range(PUBLISHERS)]
    for p in readers + publishers:
        p.start()
    for p in publishers:
        p.join(timeout=600)
    stop.set()
    for p in readers:
        p.join(timeout=60)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    assert all(p.exitcode == 0 for p in readers + publishers)
    registry = Registry(url)
    entries = registry.list("shared", all_versions=True)
    assert sorted(e.version for e in entries) == list(range(1, PUBLISHERS * PER_PUBLISHER + 1))
    assert len({e.notes for e in entries}) == PUBLISHERS * PER_PUBLISHER
    for entry in entries:
        registry.blob(entry.ref)  # raises if any blob does not match its digest
    assert loads.value > 0
    with sqlite3.connect(tmp_path / "shared.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _publish_forever(url: str, ready) -> None:
    registry = Registry(url)
    spec = TINY.with_overrides(stage_widths=(64, 128))  # ~1 MB of weights: writes take a while
    # A registry opens for writing on its first write, and SQLAlchemy sets up its statements on
    # first use: both done before the kills begin, so that the kills land in the entries' writes.
    registry.add_architecture(spec)
    registry.list()
    ready.set()
    i = 0
    while True:
        registry.add(f"net{i % 7}", tiny_model(i, spec), notes=str(i))
        i += 1


@pytest.mark.slow
def test_a_publisher_killed_at_random_points_leaves_whole_entries(tmp_path):
    path = tmp_path / "crash.db"
    url = f"sqlite:///{path}"
    Registry(url).close()
    rng = random.Random(0)
    for _ in range(20):
        ready = ctx.Event()
        process = ctx.Process(target=_publish_forever, args=(url, ready))
        process.start()
        assert ready.wait(120)
        time.sleep(rng.uniform(0.05, 0.8))
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            orphans = conn.execute(
                "SELECT COUNT(*) FROM entries e LEFT JOIN blobs b ON b.sha256 = e.blob_sha256 "
                "LEFT JOIN architectures a ON a.digest = e.arch_digest WHERE b.sha256 IS NULL OR a.digest IS NULL"
            ).fetchone()[0]
            assert orphans == 0
        registry = Registry(url)
        for entry in registry.list(all_versions=True):
            registry.blob(entry.ref)  # whole: bytes match the digest
        registry.close()
    assert Registry(url).list(all_versions=True)  # something was written between the kills
