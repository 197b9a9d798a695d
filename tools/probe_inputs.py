"""Throw bad inputs at reszoo as a careless or unlucky user would, and count
tracebacks and wrong outcomes.

Every probe runs in a fresh temporary home, through the CLI (Typer's runner)
or the Python API. A probe is clean when reszoo answers with its own error
(one line, exit status 1 or 2; a ``ReszooError`` in Python) or does the right
thing. A Python traceback, or any other exception type, is a traceback. A
probe that says what it expects (an :class:`Expect`: the exit status, the
error, what the message says) and gets something else is a wrong outcome, as
is an error message of more than one line. Prints one row per category:
probes, clean answers, tracebacks, wrong outcomes, then each failure.

    python tools/probe_inputs.py
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import reszoo
from reszoo.cli.app import app
from reszoo.limits import check_seed
from reszoo.train import ONECYCLE, train
from reszoo.train.data import synthetic
from reszoo.zoo.spec import write_spec_file


@dataclass(frozen=True)
class Expect:
    """What a probe must get: the CLI's exit status, or the error a Python call raises
    (``None``: it must succeed), and text the answer (message or output) holds."""

    code: int | None = None
    error: type[BaseException] | None = None
    says: str = ""


#: A bad value refused at the edge: exit 2, one line saying so.
def refused(says: str) -> Expect:
    return Expect(code=2, says=says)


REPO = Path(__file__).resolve().parents[1]
Action = list[str] | Callable[[Path], object]
Probe = tuple[str, Action] | tuple[str, Action, Expect]


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
    (tmp / "empty.db").write_bytes(b"")  # a 0-byte registry must be refused and stay empty
    db = str(tmp / "r.db")
    reszoo.Registry(db).import_weights(weights, tiny, "t")
    long = "n" * 300
    return {
        "names and references": [
            (f"show {arg}", ["--registry", db, "show", arg])
            for arg in (
                "resnt20",
                "t@0",
                "t@-1",
                "t@99999999999999999999",
                "t:",
                "@1",
                "a b",
                "t@x",
                "../../etc/passwd",
                long,
            )
        ],
        "spec files": [
            (f"show {name}", ["show", str(tmp / name)])
            for name in ("deep.json", "huge.json", "binary.json", "blocks.json", "missing.json", "file")
        ]
        + [
            ("build --set bad", ["build", "resnet20", "--set", "stage_depths=[0]"]),
            ("build --set junk", ["build", "resnet20", "--set", "nonsense"]),
            ("build long --out", ["build", "resnet20", "--out", str(tmp / f"{long}.json")]),
        ],
        "weights files": [
            (f"import {name}", ["--registry", db, "import", str(path), "--arch", str(spec), "--name", "x"])
            for name, path in (
                ("pickle", tmp / "pickle.safetensors"),
                ("folder", tmp),
                ("/dev/zero", Path("/dev/zero")),
                ("missing", tmp / "missing.safetensors"),
                ("spec as weights", spec),
            )
        ]
        + [
            ("import other arch", ["--registry", db, "import", str(weights), "--arch", "resnet20", "--name", "x"]),
            ("import twice", ["--registry", db, "import", str(weights), "--arch", str(spec), "--name", "t"]),
        ],
        "numbers out of range": [
            ("list batch 10^20", ["list", "--device", "cpu", "--batch-size", "99999999999999999999"]),
            ("list min-top1 90", ["list", "--min-top1", "90"]),
            ("bench batch 10^8", ["bench", "resnet20", "--batch-size", "100000000"]),
            (
                "publish version 10^11",
                [
                    "--registry",
                    db,
                    "publish",
                    "t",
                    "--remote",
                    str(tmp / "p.db"),
                    "--create",
                    "--version",
                    "99999999999",
                ],
            ),
            ("train epochs 0", ["train", "resnet20", "-d", "synthetic", "--epochs", "0"]),
            ("train lr -1", ["train", "resnet20", "-d", "synthetic", "--lr", "-1"]),
        ],
        "paths given as arguments": [
            (
                "train checkpoint folder",
                ["train", "resnet20", "-d", "synthetic:20", "--epochs", "1", "--checkpoint", str(tmp)],
            ),
            (
                "train checkpoint missing folder",
                [
                    "train",
                    "resnet20",
                    "-d",
                    "synthetic:20",
                    "--epochs",
                    "1",
                    "--checkpoint",
                    str(tmp / "no" / "c.safetensors"),
                ],
            ),
            (
                "plot curves missing folder",
                ["--registry", db, "plot", "curves", "t", "--out", str(tmp / "no" / "c.png")],
            ),
            ("plot curves bad format", ["--registry", db, "plot", "curves", "t", "--out", str(tmp / "c.bmpx")]),
            ("plot pareto missing", ["plot", "pareto", "nope", "--out", str(tmp / "p.png")]),
            (
                "search out missing folder",
                ["search", "-d", "synthetic", "--trials", "1", "--out", str(tmp / "no" / "s.json")],
            ),
            (
                "search space binary",
                ["search", "-d", "synthetic", "--trials", "1", "--space", str(tmp / "binary.json")],
            ),
            ("registry is a folder", ["--registry", str(tmp), "list"]),
            ("registry is not a database", ["--registry", str(tmp / "file"), "list"]),
            ("export onto a folder", ["--registry", db, "export", "t", "--out", str(tmp)]),
            ("release missing manifest", ["release", str(tmp / "zoo.toml"), "--into", db]),
            ("release binary manifest", ["release", str(tmp / "binary.json"), "--into", db]),
        ],
        "training values (issue 33)": [
            (
                f"train {flag} {value}",
                ["train", "resnet20", "-d", "synthetic:64", "--epochs", "1", flag, value],
                refused(f"{flag} {value} is not a finite number"),
            )
            for flag, value in (("--lr", "inf"), ("--lr", "1e400"), ("--lr", "nan"), ("--warmup-lr", "inf"))
        ]
        + [
            (
                "train seed 10^23",
                ["train", "resnet20", "-d", "synthetic:64", "--seed", "99999999999999999999999"],
                refused("--seed 99999999999999999999999 is out of range"),
            ),
            ("train seed -1", ["train", "resnet20", "-d", "synthetic:64", "--seed", "-1"], refused("is out of range")),
            (
                "train threads 10^5",
                ["train", "resnet20", "-d", "synthetic:64", "--threads", "100000"],
                refused("--threads 100000 is out of range"),
            ),
            (
                "train epochs abc",
                ["train", "resnet20", "-d", "synthetic:64", "--epochs", "abc"],
                refused("--epochs abc is not a number"),
            ),
            (
                "train iterations 1e9",
                ["train", "resnet20", "-d", "synthetic:64", "--iterations", "1e9"],
                refused("is not a whole number"),
            ),
            (
                "train subset 5",
                ["train", "resnet20", "-d", "synthetic:64", "--subset", "5"],
                refused("is out of range"),
            ),
            ("train lr 0", ["train", "resnet20", "-d", "synthetic:64", "--lr", "0"], refused("--lr 0 is out of range")),
            (
                "train batch 0",
                ["train", "resnet20", "-d", "synthetic:64", "--batch-size", "0"],
                refused("out of range"),
            ),
            ("train no data set", ["train", "resnet20"], refused("Missing option '--dataset'")),
            (
                "train weights as checkpoint",
                ["train", str(spec), "-d", "synthetic:64", "--epochs", "1", "--checkpoint", str(weights), "--resume"],
                Expect(code=1, says="is not a training checkpoint"),
            ),
            (
                "eval test-subset -3",
                ["eval", "t", "-d", "synthetic", "--test-subset", "-3"],
                refused("is out of range"),
            ),
            ("bench seed -1", ["bench", "--build-table", "--seed", "-1"], refused("--seed -1 is out of range")),
            ("bench threads 0", ["bench", "resnet20", "--threads", "0"], refused("--threads 0 is out of range")),
            ("bench random 10^6", ["bench", "--build-table", "--random", "1000000"], refused("is out of range")),
            ("release jobs 10^5", ["release", "zoo.toml", "--into", db, "--jobs", "100000"], refused("out of range")),
            (
                "release budget inf",
                ["release", str(REPO / "zoo.toml"), "--into", db, "--budget", "inf"],
                refused("is not a duration"),
            ),
        ],
        "list filters (issue 33)": [
            (
                f"list max-latency {value}",
                ["list", "--device", "cpu", "--max-latency-ms", value],
                refused(f"--max-latency-ms {value} is"),
            )
            for value in ("nan", "-5", "0", "inf", "1e400")
        ]
        + [
            ("list min-top1 nan", ["list", "--min-top1", "nan"], refused("--min-top1 nan is not a finite number")),
            ("list min-top1 abc", ["list", "--min-top1", "abc"], refused("--min-top1 abc is not a number")),
            ("list max-latency 2.5", ["list", "--device", "cpu", "--max-latency-ms", "2.5"], Expect(code=0)),
        ],
        "curves (issue 33)": [
            (
                "plot curves bare names",
                ["plot", "curves", "plain20", "plain56", "resnet20", "resnet56", "--out", str(tmp / "curves.png")],
                Expect(code=0, says="drew plain20@1 (not plain20@2)"),
            ),
            (
                "plot curves mixed versions",
                ["plot", "curves", "plain20@2", "resnet56@1", "--out", str(tmp / "c.png")],
                refused("were trained differently"),
            ),
            (
                "plot curves unknown",
                ["plot", "curves", "plian20", "--out", str(tmp / "c.png")],
                refused("did you mean 'plain20'"),
            ),
        ],
        "registry values and names (issue 33)": [
            (
                "add(weights_dtype=int8)",
                lambda t: reszoo.Registry(db).add("x", reszoo.create_model(tiny), weights_dtype=torch.int8),
                Expect(error=reszoo.InputError),
            ),
            (
                "add(weights_dtype='bogus')",
                lambda t: reszoo.Registry(db).add("x", reszoo.create_model(tiny), weights_dtype="bogus"),
                Expect(error=reszoo.InputError),
            ),
            (
                "add(notes=5)",
                lambda t: reszoo.Registry(db).add("x", reszoo.create_model(tiny), notes=5),
                Expect(error=reszoo.InputError),
            ),
            (
                "list(min_top1='abc')",
                lambda t: reszoo.Registry(db).list(min_top1="abc"),
                Expect(error=reszoo.InputError),
            ),
            (
                "list(min_top1=nan)",
                lambda t: reszoo.Registry(db).list(min_top1=float("nan")),
                Expect(error=reszoo.InputError),
            ),
            (
                "create_model(device='cuda')",
                lambda t: reszoo.create_model("resnet20", device="cuda"),
                Expect(error=reszoo.DeviceError),
            ),
        ]
        + [
            (
                f"import --name {name!r}",
                ["--registry", db, "import", str(weights), "--arch", str(spec), "--name", name],
                refused("is not valid"),
            )
            for name in ("", "*")
        ]
        + [
            ("search -d cifar", ["search", "-d", "cifar", "--trials", "1"], refused("did you mean 'cifar10'")),
            ("empty file as --registry", ["--registry", str(tmp / "empty.db"), "list"], Expect(code=1)),
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
            (
                "create_model(device='cuda:99')",
                lambda t: reszoo.create_model("resnet20", device="cuda:99"),
                Expect(error=reszoo.DeviceError),
            ),
            (
                "create_model(device='gpu')",
                lambda t: reszoo.create_model("resnet20", device="gpu"),
                Expect(error=reszoo.DeviceError, says="not a device name"),
            ),
            ("train(seed=10^22)", lambda t: _train(seed=10**22), Expect(error=reszoo.InputError, says="out of range")),
            ("train(seed=1.5)", lambda t: _train(seed=1.5), Expect(error=reszoo.InputError, says="not a whole number")),
            ("train(report_every=0)", lambda t: _train(report_every=0), Expect(error=reszoo.InputError)),
            (
                "train(weights as checkpoint)",
                lambda t: _train(checkpoint=weights, resume=True),
                Expect(error=reszoo.TrainingError, says="is not a training checkpoint"),
            ),
            (
                "recipe lr inf",
                lambda t: ONECYCLE.with_overrides(lr=float("inf")),
                Expect(error=reszoo.InputError, says="lr inf is not a finite number"),
            ),
            ("recipe lr 1e400", lambda t: ONECYCLE.with_overrides(lr=1e400), Expect(error=reszoo.InputError)),
            (
                "recipe warmup_lr nan",
                lambda t: ONECYCLE.with_overrides(warmup_lr=float("nan")),
                Expect(error=reszoo.InputError),
            ),
            ("recipe batch '64'", lambda t: ONECYCLE.with_overrides(batch_size="64"), Expect(error=reszoo.InputError)),
            ("recipe flip 'no'", lambda t: ONECYCLE.with_overrides(flip="no"), Expect(error=reszoo.InputError)),
            ("check_seed(2**64)", lambda t: check_seed(2**64), Expect(error=reszoo.InputError)),
        ],
    }


def _train(**options: object) -> object:
    tiny = reszoo.ArchSpec(stage_depths=(1, 1), stage_widths=(4, 8), num_classes=10, input_size=32)
    return train(tiny, synthetic(train=64, test=16), ONECYCLE.with_overrides(epochs=1), **options)


def run_probe(action: Action, expect: Expect | None, tmp: Path) -> tuple[str, str]:
    """("clean" | "traceback" | "wrong", what happened)."""
    if callable(action):
        try:
            action(tmp)
        except reszoo.ReszooError as exc:
            what = f"{type(exc).__name__}: {str(exc)[:70]}"
            if expect is not None and not (expect.error and isinstance(exc, expect.error) and expect.says in str(exc)):
                return "wrong", what + f" (expected {expect.error.__name__ if expect.error else 'success'})"
            return "clean", what
        except Exception as exc:  # the failure this tool looks for
            return "traceback", f"{type(exc).__name__}: {str(exc)[:70]}"
        if expect is not None and expect.error is not None:
            return "wrong", f"ran (expected {expect.error.__name__})"
        return "clean", "ran"
    result = CliRunner().invoke(app, action)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback", f"{type(result.exception).__name__}: {str(result.exception)[:70]}"
    if "Traceback" in result.output:
        return "traceback", "a traceback in the output"
    if result.exit_code not in (0, 1, 2):
        return "traceback", f"exit {result.exit_code}"
    message = result.stderr.strip().splitlines()
    what = f"exit {result.exit_code}: {(message or ['(no message)'])[-1][:90]}"
    if result.exit_code != 0 and len(message) != 1:
        return "wrong", f"exit {result.exit_code} with {len(message)} lines of error, not one"
    if expect is not None and (
        expect.code is not None
        and result.exit_code != expect.code
        or expect.says not in " ".join(result.output.split())
    ):
        return "wrong", what + f" (expected exit {expect.code}" + (f", {expect.says!r}" if expect.says else "") + ")"
    return "clean", what


def main() -> int:
    rows, failures = [], []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["RESZOO_HOME"] = str(tmp / "home")
        os.chdir(tmp)
        for category, items in probes(tmp).items():
            counts = {"clean": 0, "traceback": 0, "wrong": 0}
            for name, action, *expect in items:
                outcome, what = run_probe(action, expect[0] if expect else None, tmp)
                counts[outcome] += 1
                if outcome != "clean":
                    failures.append(f"{outcome}: {category} / {name}: {what}")
            rows.append((category, len(items), counts["clean"], counts["traceback"], counts["wrong"]))
    print(f"{'category':<28} {'tried':>6} {'clean':>6} {'tracebacks':>10} {'wrong':>6}")
    for category, *numbers in rows:
        print(f"{category:<28} " + " ".join(f"{n:>{w}}" for n, w in zip(numbers, (6, 6, 10, 6))))
    totals = [sum(r[i] for r in rows) for i in range(1, 5)]
    print(f"{'all':<28} " + " ".join(f"{n:>{w}}" for n, w in zip(totals, (6, 6, 10, 6))))
    for line in failures:
        print("  " + line)
    return 1 if failures else 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
