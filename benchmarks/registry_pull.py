"""Pull throughput SQLite -> SQLite, in MB/s of weights, against the baseline of
copying the same number of bytes file to file (shutil.copyfile) on the same disk.

A pull reads the blob, checks its sha256, and writes entry, architecture and
blob in one durable transaction (WAL, synchronous=FULL).

    python benchmarks/registry_pull.py [--entries 4]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

import reszoo
from reszoo import Registry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=4, help="CIFAR-stem resnet34 entries to pull (85 MB each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        remote = Registry(tmp / "remote.db")
        total = 0
        for i in range(args.entries):
            torch.manual_seed(i)
            record = remote.add(f"resnet34-{i}", reszoo.create_model("resnet34", num_classes=10, stem="cifar"))
            total += record.blob_size
        local = Registry(tmp / "local.db")
        start = time.perf_counter()
        for i in range(args.entries):
            local.pull(f"resnet34-{i}", remote)
        pull_s = time.perf_counter() - start

        source = tmp / "blob.bin"
        source.write_bytes(remote.blob("resnet34-0"))
        start = time.perf_counter()
        for i in range(args.entries):
            shutil.copyfile(source, tmp / f"copy{i}.bin")
        copy_s = time.perf_counter() - start
    mb = total / 1e6
    print(f"{args.entries} entries, {mb:.0f} MB of weights")
    print(f"reszoo pull           {mb / pull_s:8.0f} MB/s   (target >= 300)")
    print(f"shutil.copyfile       {mb / copy_s:8.0f} MB/s   (baseline)")
    print(f"ratio                 {(mb / pull_s) / (mb / copy_s):8.2f}x of the file-copy rate")


if __name__ == "__main__":
    main()
