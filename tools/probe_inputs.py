"""Throw bad inputs at reszoo as a careless or unlucky user would, and count tracebacks.

Every probe runs in a fresh temporary home, through the CLI (Typer's runner)
or the Python API. A probe passes when reszoo answers with its own error (one
line, exit status 1 or 2; a ``ReszooError`` in Python) or does the right thing;
a Python traceback, or any other exception type, is a failure. Prints one row
per category: probes, clean answers, tracebacks, and each traceback's probe.

    python tools/probe_inputs.py
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import reszoo
from reszoo.cli.app import app
from reszoo.zoo.spec import write_spec_file

Probe = tuple[str, list[str] | Callable[[Path], object]]


def probes(tmp: Path) -> dict[str, list[Probe]]:
    tiny = reszoo.ArchSpec(stage_depths=(1, 1), stage_widths=(4, 8), num_classes=3, input_size=8)
    weights = tmp / "w.safetensors"
    save_file(reszoo.create_model(tiny).state_dict(), str(weights))
    spec = tmp / "tiny.json"
    write_spec_file(tiny, spec)
    (tmp / "pickle.safetensors").write_bytes(pickle.dumps({"a": 1}))
    (tmp / "deep.json").write_text("[" * 50_000 + "]" * 50_000)
    (tmp / "huge.json").write_text(json.dumps({"stage_depths": [3], "stage_widths": [10**30]}))
    (tmp / "binary.json").write_bytes(b"\xff\xfe\x00\x01" * 100)
    (tmp / "blocks.json").write_text(json.dumps({"stage_depths": [100_000], "stage_widths": [16]}))
    (tmp / "file").write_text("x")
    db = str(tmp / "r.db")
    reszoo.Registry(db).import_weights(weights, tiny, "t")
    long = "n" * 300
    return {
        "names and references": [
            (f"show {arg}", ["--registry", db, "show", arg]) for arg in
            ("resnt20", "t@0", "t@-1", "t@99999999999999999999", "t:", "@1", "a b", "t@x", "../../etc/passwd", long)
        ],
        "spec files": [
            (f"show {name}", ["show", str(tmp / name)]) for name in
            ("deep.json", "huge.json", "binary.json", "blocks.json", "missing.json", "file")
        ] + [("build --set bad", ["build", "resnet20", "--set", "stage_depths=[0]"]),
             ("build --set junk", ["build", "resnet20", "--set", "nonsense"]),
             ("build long --out", ["build", "resnet20", "--out", str(tmp / f"{long}.json")])],
        "weights files": [
            (f"import {name}", ["--registry", db, "import", str(path), "--arch", str(spec), "--name", "x"])
            for name, path in (("pickle", tmp / "pickle.safetensors"), ("folder", tmp), ("/dev/zero", Path("/dev/zero")),
                               ("missing", tmp / "missing.safetensors"), ("spec as weights", spec))
        ] + [("import other arch", ["--registry", db, "import", str(weights), "--arch", "resnet20", "--name", "x"]),
             ("import twice", ["--registry", db, "import", str(weights), "--arch", str(spec), "--name", "t"])],
        "numbers out of range": [
            ("list batch 10^20", ["list", "--device", "cpu", "--batch-size", "99999999999999999999"]),
            ("list min-top1 90", ["list", "--min-top1", "90"]),
            ("bench batch 10^8", ["bench", "resnet20", "--batch-size", "100000000"]),
            ("publish version 10^11", ["--registry", db, "publish", "t", "--remote", str(tmp / "p.db"), "--create",
                                       "--version", "99999999999"]),
            ("train epochs 0", ["train", "resnet20", "-d", "synthetic", "--epochs", "0"]),
            ("train lr -1", ["train", "resnet20", "-d", "synthetic", "--lr", "-1"]),
        ],
        "paths given as arguments": [
            ("train checkpoint folder", ["train", "resnet20", "-d", "synthetic:20", "--epochs", "1", "--checkpoint",
                                         str(tmp)]),
            ("train checkpoint missing folder", ["train", "resnet20", "-d", "synthetic:20", "--epochs", "1",
                                                 "--checkpoint", str(tmp / "no" / "c.safetensors")]),
            ("plot curves missing folder", ["--registry", db, "plot", "curves", "t", "--out", str(tmp / "no" / "c.png")]),
            ("plot curves bad format", ["--registry", db, "plot", "curves", "t", "--out", str(tmp / "c.bmpx")]),
            ("plot pareto missing", ["plot", "pareto", "nope", "--out", str(tmp / "p.png")]),
            ("search out missing folder", ["search", "-d", "synthetic", "--trials", "1", "--out",
                                           str(tmp / "no" / "s.json")]),
            ("search space binary", ["search", "-d", "synthetic", "--trials", "1", "--space", str(tmp / "binary.json")]),
            ("registry is a folder", ["--registry", str(tmp), "list"]),
            ("registry is not a database", ["--registry", str(tmp / "file"), "list"]),
            ("export onto a folder", ["--registry", db, "export", "t", "--out", str(tmp)]),
            ("release missing manifest", ["release", str(tmp / "zoo.toml"), "--into", db]),
            ("release binary manifest", ["release", str(tmp / "binary.json"), "--into", db]),
        ],
        "python api": [
            ("Registry(None)", lambda t: reszoo.Registry(None)),
            ("Registry(5)", lambda t: reszoo.Registry(5)),
            ("list(None)", lambda t: reszoo.Registry(db).list(None)),
            ("list_models(None)", lambda t: reszoo.list_models(None)),
            ("add(None)", lambda t: reszoo.Registry(db).add("x", None, tiny)),
            ("add('w.safetensors')", lambda t: reszoo.Registry(db).add("x", "w.safetensors", tiny)),
            ("add({k: 5})", lambda t: reszoo.Registry(db).add("x", {"fc.weight": 5}, tiny)),
            ("add(meta model)", lambda t: reszoo.Registry(db).add("x", reszoo.create_model(tiny, device="meta"))),
            ("add(version='2')", lambda t: reszoo.Registry(db).add("x", reszoo.create_model(tiny), version="2")),
            ("add(version=0)", lambda t: reszoo.Registry(db).add("x", reszoo.create_model(tiny), version=0)),
            ("import_weights(None)", lambda t: reszoo.Registry(db).import_weights(None, tiny, "x")),
            ("create_model(device='bogus')", lambda t: reszoo.create_model("resnet20", device="bogus")),
            ("load('nope')", lambda t: reszoo.load("nope", registry=db)),
            ("latency(batch 10^8)", lambda t: reszoo.latency("resnet20", batch_size=100_000_000)),
        ],
    }


def run_probe(action: list[str] | Callable[[Path], object], tmp: Path) -> tuple[bool, str]:
    """(clean, what happened)."""
    if callable(action):
        try:
            action(tmp)
        except reszoo.ReszooError as exc:
            return True, f"{type(exc).__name__}: {str(exc)[:70]}"
        except Exception as exc:  # the failure this tool looks for
            return False, f"{type(exc).__name__}: {str(exc)[:70]}"
        return True, "ran"
    result = CliRunner().invoke(app, action)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return False, f"{type(result.exception).__name__}: {str(result.exception)[:70]}"
    if "Traceback" in result.output:
        return False, "a traceback in the output"
    return result.exit_code in (0, 1, 2), f"exit {result.exit_code}"


def main() -> int:
    rows, failures = [], []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["RESZOO_HOME"] = str(tmp / "home")
        os.chdir(tmp)
        for category, items in probes(tmp).items():
            clean = 0
            for name, action in items:
                ok, what = run_probe(action, tmp)
                clean += ok
                if not ok:
                    failures.append(f"{category} / {name}: {what}")
            rows.append((category, len(items), clean, len(items) - clean))
    print(f"{'category':<26} {'probes':>6} {'clean':>6} {'tracebacks':>10}")
    for category, n, clean, bad in rows:
        print(f"{category:<26} {n:>6} {clean:>6} {bad:>10}")
    total = sum(r[1] for r in rows)
    print(f"{'all':<26} {total:>6} {sum(r[2] for r in rows):>6} {sum(r[3] for r in rows):>10}")
    for line in failures:
        print("  " + line)
    return 1 if failures else 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
