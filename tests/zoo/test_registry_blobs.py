"""Weights blobs stored compressed: the bytes a user loads, pulls and exports are the
safetensors bytes their sha256 names, however the registry keeps them."""

import shutil
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reszoo
from reszoo import IntegrityError, Registry
from reszoo.zoo import blob_codec
from reszoo.zoo import weights as W
from tests.helpers import REPO


def _safetensors_like(header: bytes, payload: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header + payload


@given(
    header=st.binary(max_size=64),
    payload=st.binary(max_size=4096),
    dtypes=st.sampled_from(["float16:3,int64:1", "float32:5", "bfloat16:2", "int8:4", "", "weird"]),
)
def test_encoding_and_decoding_give_back_the_bytes_exactly(header, payload, dtypes):
    data = _safetensors_like(header, payload)
    stored, encoding = blob_codec.encode(data, dtypes)
    assert blob_codec.decode(stored, encoding) == data
    assert len(stored) <= len(data)  # never stored larger than as it is
    assert encoding == blob_codec.RAW or encoding.endswith("zlib")


def test_trained_float16_weights_are_stored_smaller_and_load_bit_for_bit(tmp_path):
    model = reszoo.create_model("resnet20")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    registry = Registry(tmp_path / "r.db")
    entry = registry.add("net", model, weights_dtype="float16")
    with sqlite3.connect(tmp_path / "r.db") as db:
        size, stored, encoding = db.execute("select size, length(data), encoding from blobs").fetchone()
    assert encoding == "shuffle2+zlib" and stored < 0.95 * size
    data = registry.blob(entry.ref)
    assert len(data) == size and W.sha256(data) == entry.blob_sha256
    loaded = registry.load(entry.ref).state_dict()
    assert all(torch.equal(loaded[k], v.half().float()) for k, v in model.state_dict().items() if v.is_floating_point())
    # Pulled into another registry: the same sha256, stored there compressed too.
    other = Registry(tmp_path / "other.db")
    assert other.pull(entry.ref, registry).blob_sha256 == entry.blob_sha256
    assert other.blob("net@1") == data


def test_a_damaged_compressed_blob_is_refused_on_every_read(tmp_path):
    registry = Registry(tmp_path / "r.db")
    entry = registry.add("net", reszoo.create_model("resnet20"), weights_dtype="float16")
    registry.close()
    with sqlite3.connect(tmp_path / "r.db") as db:
        stored = bytearray(db.execute("select data from blobs").fetchone()[0])
        stored[len(stored) // 2] ^= 0xFF
        db.execute("update blobs set data = ?", (bytes(stored),))
    registry = Registry(tmp_path / "r.db")
    for read in (registry.load, registry.blob, registry.verify):
        with pytest.raises(IntegrityError, match="net@1"):
            read(entry.ref)


def _as_schema_0003(path: Path) -> None:
    """Turn a registry into one written before blobs could be compressed (schema 0003)."""
    with sqlite3.connect(path) as db:
        for sha, data, encoding in db.execute("select sha256, data, encoding from blobs").fetchall():
            db.execute("update blobs set data = ? where sha256 = ?", (blob_codec.decode(data, encoding), sha))
        db.execute("alter table blobs drop column encoding")
        db.execute("update alembic_version set version_num = '0003'")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("vacuum")
    db.close()


def test_make_registry_compresses_an_older_registry_and_every_entry_still_loads(tmp_path):
    old = tmp_path / "zoo.db"
    registry = Registry(old)
    for name in ("resnet20", "plain20"):
        registry.add(name, reszoo.create_model(name), weights_dtype="float16", shadow=True)
    registry.close()
    _as_schema_0003(old)
    # Read as it is (read-only, no upgrade): its blobs are the safetensors bytes themselves.
    with Registry(old, readonly=True) as zoo:
        before = {e.ref: e.blob_sha256 for e in zoo.list(all_versions=True)}
        assert zoo.load("resnet20@1") is not None
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_registry.py"), str(old)], capture_output=True, text=True, check=True
    )
    assert "2 blobs compressed" in done.stdout and "not settled" not in done.stdout
    with sqlite3.connect(f"file:{old}?mode=ro", uri=True) as db:
        stored, raw = db.execute("select sum(length(data)), sum(size) from blobs").fetchone()
        free = db.execute("pragma freelist_count").fetchone()[0]
    assert stored < 0.95 * raw and free == 0 and not Path(f"{old}-wal").exists()  # compressed, then vacuumed
    zoo = Registry(old, readonly=True)
    assert {e.ref: e.blob_sha256 for e in zoo.list(all_versions=True)} == before
    for ref in before:
        zoo.verify(ref)  # decoded, checked against its sha256 and the entry's record digest


def test_the_shipped_registry_reads_compressed_blobs_without_writing(tmp_path):
    copy = shutil.copy(REPO / "registry.db", tmp_path / "zoo.db")
    before = Path(copy).read_bytes()
    zoo = Registry(copy, readonly=True)
    assert zoo.load("resnet20@1") is not None
    zoo.close()
    assert Path(copy).read_bytes() == before
