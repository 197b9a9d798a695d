"""Does a bf16 path learn as float32 does? Trains one net per (precision, seed)
with the same recipe, seed and data, and compares the test top-1 (always
evaluated in float32) with float32's, seed by seed.

The baseline is ``float32`` with the same seeds, from the same file. Each run
is one process of one thread; results are kept per (precision, seed) in --out,
so a stopped run resumes, and two invocations (one per core) may fill one file
for different precisions.

    python benchmarks/precision_fidelity.py --precisions float32 bfloat16-norm32 --seeds 0 1 2 --epochs 3 \\
        --out benchmarks/results/precision-fidelity-cifar10-3ep.json --data-root ../shared/data
    python benchmarks/precision_fidelity.py --report benchmarks/results/precision-fidelity-cifar10-3ep.json
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from reszoo.files import atomic_file
from reszoo.train.data import load as load_dataset
from reszoo.train.loop import train
from reszoo.train.precision import PRECISIONS
from reszoo.train.recipes import get_recipe
from reszoo.zoo.factory import resolve_spec


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"runs": {}}


def _merge_write(path: Path, key: str, record: dict) -> None:
    """Add one run to the file, keeping what another process wrote meanwhile."""
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _read(path)
        data["runs"][key] = record
        with atomic_file(path) as tmp:
            Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True))


def report(path: Path) -> None:
    runs = _read(path)["runs"]
    by = {(r["precision"], r["seed"]): r for r in runs.values()}
    seeds = sorted({s for _, s in by})
    others = sorted({p for p, _ in by} - {"float32"})
    print(f"{path.name}: top-1 on the test split, evaluated in float32 (difference from float32, points)")
    header = ["seed", "float32", *others]
    print(" | ".join(header))
    diffs: dict[str, list[float]] = {p: [] for p in others}
    for seed in seeds:
        base = by.get(("float32", seed))
        cells = [str(seed), f"{100 * base['top1']:.2f}%" if base else "-"]
        for p in others:
            run = by.get((p, seed))
            if run is None:
                cells.append("-")
                continue
            if base is not None:
                diffs[p].append(100 * (run["top1"] - base["top1"]))
                cells.append(f"{100 * run['top1']:.2f}% ({diffs[p][-1]:+.2f})")
            else:
                cells.append(f"{100 * run['top1']:.2f}%")
        print(" | ".join(cells))
    means = ["mean", _mean([by[k]["top1"] for k in by if k[0] == "float32"])]
    for p in others:
        d = diffs[p]
        means.append(
            f"{_mean([by[k]['top1'] for k in by if k[0] == p])} ({statistics.fmean(d):+.2f}, {len(d)} seeds)"
            if d
            else "-"
        )
    print(" | ".join(means))
    for p in ["float32", *others]:
        secs = [r["train_seconds"] / r["steps"] for (q, _), r in by.items() if q == p]
        if secs:
            print(
                f"{p}: {1000 * statistics.fmean(secs):.0f} ms per step over the whole run (wall, 1 thread; "
                "only comparable between runs on a quiet machine)"
            )


def _mean(values: list[float]) -> str:
    return f"{100 * statistics.fmean(values):.2f}%" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="resnet20")
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16-norm32"], choices=PRECISIONS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--recipe", default="onecycle")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--data-root", default=os.environ.get("RESZOO_DATA"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path, help="Print the table of an earlier --out file and stop.")
    args = parser.parse_args()
    if args.report is not None:
        report(args.report)
        return
    if args.out is None:
        sys.exit("--out FILE is needed (results are kept per run there)")
    torch.set_num_threads(1)  # one process per core; never more processes than cores
    dataset = load_dataset(args.dataset, root=args.data_root)
    recipe = get_recipe(args.recipe).with_overrides(epochs=args.epochs)
    spec = resolve_spec(args.net).with_overrides(
        num_classes=dataset.num_classes, in_chans=dataset.in_chans, input_size=dataset.input_size
    )
    for precision in args.precisions:
        for seed in args.seeds:
            key = f"{args.net}/{args.recipe}/{args.epochs}ep/{precision}/seed{seed}"
            if key in _read(args.out)["runs"]:
                print(f"{key}: done earlier", flush=True)
                continue
            began = time.perf_counter()
            result = train(spec, dataset, recipe, seed=seed, precision=precision)
            record = {
                "net": args.net,
                "recipe": recipe.to_dict(),
                "epochs": args.epochs,
                "precision": precision,
                "seed": seed,
                "top1": result.metrics["top1"],
                "test_loss": result.metrics["loss"],
                "steps": result.steps,
                "train_seconds": result.seconds,
                "wall_seconds": time.perf_counter() - began,
                "history": result.history,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "dataset": dataset.name,
                "date": time.strftime("%Y-%m-%d"),
            }
            _merge_write(args.out, key, record)
            print(f"{key}: top-1 {100 * result.metrics['top1']:.2f}% in {result.seconds:.0f} s", flush=True)
    report(args.out)


if __name__ == "__main__":
    main()
