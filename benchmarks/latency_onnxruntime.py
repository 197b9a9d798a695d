"""ONNX Runtime against eager PyTorch on the CPU, batch 1, float32, in the same run.

For every CIFAR preset (and ``--random N`` specs of the search's default space):
the median and p90 of reszoo's measurement in each runtime, taken one after the
other (the order alternating from net to net, so a drift of the machine's speed
falls on both), and eager's median over ONNX Runtime's. Then how far the two
runtimes order the nets alike (Kendall's tau, and the pairs they order apart),
since ONNX Runtime folds BatchNorm and fuses activations and may reorder which
nets are fast. With ``--predictor``, the per-part lookup table of each runtime
is filled and the predictor's error against these measurements reported. With
``--store REGISTRY``, the rows (and the tables) are stored there and the file
settled for shipping.

    python benchmarks/latency_onnxruntime.py [--threads 1] [--random 5] [--seed 0]
        [--names resnet20 plain20 ...] [--predictor] [--store registry.db] [--json out.json]

Needs the onnx extra: pip install 'reszoo[onnx]'.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from itertools import combinations

import torch

from reszoo.latency.measure import LatencySetup, library_versions, measure
from reszoo.latency.predictor import LatencyPredictor, PredictionCheck, summarize
from reszoo.search.space import SearchSpace
from reszoo.zoo.counting import count
from reszoo.zoo.presets import PRESETS, list_presets
from reszoo.zoo.registry import Registry

RUNTIMES = ("eager", "onnxruntime")


def kendall(a: list[float], b: list[float]) -> tuple[float, list[tuple[int, int]]]:
    """Kendall's tau-a between two orderings, and the index pairs they order apart."""
    apart, concordant = [], 0
    for i, j in combinations(range(len(a)), 2):
        if (a[i] - a[j]) * (b[i] - b[j]) > 0:
            concordant += 1
        else:
            apart.append((i, j))
    pairs = len(a) * (len(a) - 1) // 2
    return (concordant - len(apart)) / pairs if pairs else 1.0, apart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", nargs="*", default=None, help="presets to time (default: every CIFAR preset)")
    parser.add_argument("--random", type=int, default=5, help="random specs of the search's default space")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random specs")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of both runtimes (1 is steadiest)")
    parser.add_argument("--predictor", action="store_true", help="fill each runtime's part table; report its error")
    parser.add_argument("--store", default=None, help="registry to store the rows (and part tables) into")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args()

    names = args.names if args.names is not None else [n for n in list_presets() if PRESETS[n].stem == "cifar"]
    rng = random.Random(args.seed)
    nets = [(name, PRESETS[name]) for name in names]
    nets += [(f"random{i}", SearchSpace().sample(rng)) for i in range(args.random)]
    registry = Registry(args.store) if args.store else None
    import onnxruntime

    print(
        f"{LatencySetup(threads=args.threads).label()}, torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, {args.threads} thread(s), batch 1, float32"
    )
    print(
        f"{'net':<11} {'depth':>5} {'params':>8} {'eager ms':>9} {'p90':>7} {'ort ms':>8} {'p90':>7} "
        f"{'eager/ort':>9} {'s':>5}"
    )
    rows = []
    for index, (name, spec) in enumerate(nets):
        began = time.perf_counter()
        records = {}
        for runtime in RUNTIMES if index % 2 == 0 else RUNTIMES[::-1]:
            records[runtime] = measure(spec, LatencySetup("cpu", 1, "float32", runtime, args.threads))
        eager = records["eager"]
        row = {
            "net": name,
            "digest": spec.digest,
            "summary": spec.summary(),
            "depth": spec.depth,
            "params": count(spec).params,
            "device": eager.device,
            "seconds": time.perf_counter() - began,
            **{f"{r}_{k}": getattr(records[r], f"{k}_ms") for r in RUNTIMES for k in ("median", "p90")},
            "noisy": [r for r in RUNTIMES if records[r].noisy],
        }
        row["ratio"] = row["eager_median"] / row["onnxruntime_median"]
        rows.append(row)
        print(
            f"{name:<11} {spec.depth:>5} {row['params'] / 1e6:>7.2f}M {row['eager_median']:>9.3f} "
            f"{row['eager_p90']:>7.3f} {row['onnxruntime_median']:>8.3f} {row['onnxruntime_p90']:>7.3f} "
            f"{row['ratio']:>8.2f}x {row['seconds']:>5.0f}"
            + ("  noisy: " + ", ".join(row["noisy"]) if row["noisy"] else ""),
            flush=True,
        )
        if registry is not None:
            registry.add_architecture(spec, name if name in PRESETS else None)
            for record in records.values():
                registry.add_latency(record)
    ratios = sorted(r["ratio"] for r in rows)
    tau, apart = kendall([r["eager_median"] for r in rows], [r["onnxruntime_median"] for r in rows])
    print(f"eager/ort: median {ratios[len(ratios) // 2]:.2f}x, range {ratios[0]:.2f}x to {ratios[-1]:.2f}x")
    print(
        f"order of the nets, eager against ort: Kendall tau {tau:.3f}; ordered apart: "
        + (", ".join(f"{rows[i]['net']}/{rows[j]['net']}" for i, j in apart) or "none")
    )
    summary = {
        "threads": args.threads,
        "versions": {**library_versions(), "onnxruntime": onnxruntime.__version__},
        "rows": rows,
        "kendall_tau": tau,
    }
    if args.predictor:
        scratch = registry or Registry("sqlite://")  # an in-memory table when nothing is stored
        for runtime in RUNTIMES:
            predictor = LatencyPredictor(scratch, runtime=runtime, threads=args.threads)
            added = predictor.fill([spec for _, spec in nets])
            checks = [
                PredictionCheck(spec, predictor.predict(spec), row[f"{runtime}_median"])
                for (_, spec), row in zip(nets, rows)
            ]
            summary[f"predictor_{runtime}"] = s = summarize(checks)
            print(
                f"predictor, {runtime}: {added} parts timed; median |error| {100 * s['median_abs_error']:.1f}%, "
                f"worst {100 * s['max_abs_error']:.0f}%, mean {100 * s['mean_error']:+.1f}%, "
                f"Spearman {s['spearman']:.3f}"
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=1)
    if registry is not None:
        settled = registry.settle()
        print(
            f"stored {2 * len(rows)} rows in {registry.display_url}"
            + (
                ""
                if settled
                else " (not settled: another process has it open; run python tools/make_registry.py PATH later)"
            )
        )


if __name__ == "__main__":
    main()
