"""GPU latency check (issue: latency): every CIFAR preset plus 20 random specs of
the default space, eager and graph runtimes, batch 1 and 256, stored into a
registry (by default the shipped registry.db); repeatability of graph
timings (two runs, medians within 5%); the predictor's error at batch 1.

Run on a machine with a CUDA GPU, from the repository root:

    python benchmarks/latency_gpu.py --registry registry.db --out results.json

Prints each figure beside its baseline (the eager runtime, measured in the same
run) and writes everything to --out.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from reszoo import Registry
from reszoo.latency.measure import latency
from reszoo.latency.predictor import LatencyPredictor, PredictionCheck, summarize
from reszoo.search.space import SearchSpace
from reszoo.zoo.presets import PRESETS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registry", default="registry.db")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--random", type=int, default=20)
    parser.add_argument("--out", default="latency_gpu.json")
    parser.add_argument("--presets", nargs="*", help="CIFAR presets to time (default: all but resnet1202)")
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 256])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: this check needs a GPU")
    registry = Registry(args.registry)
    rng = random.Random(0)
    cifar = {
        name: spec
        for name, spec in PRESETS.items()
        if spec.stem == "cifar" and name != "resnet1202" and (not args.presets or name in args.presets)
    }
    randoms = {f"random{i}": SearchSpace().sample(rng) for i in range(args.random)}
    nets = {**cifar, **randoms}
    rows = []
    start = time.perf_counter()
    for batch in args.batches:
        for name, spec in nets.items():
            medians = {}
            for runtime in ("eager", "graph"):
                record = latency(
                    spec, device=args.device, batch_size=batch, runtime=runtime, registry=registry, remeasure=True
                )
                medians[runtime] = record.median_ms
                rows.append(
                    {
                        "net": name,
                        "batch": batch,
                        "runtime": runtime,
                        "median_ms": record.median_ms,
                        "p90_ms": record.p90_ms,
                        "device": record.device,
                    }
                )
            print(
                f"{name:<12} batch {batch:<4} eager {medians['eager']:8.3f} ms  graph {medians['graph']:8.3f} ms  "
                f"graph/eager {medians['graph'] / medians['eager']:.2f}",
                flush=True,
            )
    repeat = []
    for name, spec in cifar.items():
        again = latency(spec, device=args.device, runtime="graph", registry=registry, remeasure=True)
        first = next(r for r in rows if r["net"] == name and r["batch"] == 1 and r["runtime"] == "graph")
        repeat.append(
            {
                "net": name,
                "first_ms": first["median_ms"],
                "second_ms": again.median_ms,
                "diff": again.median_ms / first["median_ms"] - 1,
            }
        )
    within5 = sum(abs(r["diff"]) <= 0.05 for r in repeat) / len(repeat)
    print(f"graph repeatability, batch 1: {100 * within5:.0f}% of presets within 5% on a second run")
    predictions = {}
    for runtime in ("eager", "graph"):
        predictor = LatencyPredictor(registry, device=args.device, runtime=runtime, batch_size=1)
        checks = [
            PredictionCheck(
                spec,
                predictor.predict(spec),
                registry.latency_row(spec.digest, predictor.label, 1, "float32", runtime).median_ms,
            )
            for spec in randoms.values()
        ]
        predictions[runtime] = summarize(checks)
        print(f"predictor {runtime}, batch 1: {json.dumps(predictions[runtime])}")
    with open(args.out, "w") as handle:
        json.dump(
            {"rows": rows, "repeatability": repeat, "predictor": predictions, "seconds": time.perf_counter() - start},
            handle,
            indent=2,
        )


if __name__ == "__main__":
    main()
