"""Cost and repeatability of one latency measurement on the CPU, against
torch.utils.benchmark's Timer.blocked_autorange on the same net in the same run.

For each net: seconds one reszoo measurement takes, its median, and the spread
of the median over --repeats measurements ((max - min) / median), beside the
same figures for torch.utils.benchmark.

    python benchmarks/latency_cpu.py [--repeats 5] [--threads 1] [NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.utils.benchmark as tb

import reszoo
from reszoo.latency.measure import measure


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", default=["resnet20", "resnet56", "resnet110"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 1, float32, eager")
    print(
        f"{'net':<10} {'reszoo s/meas':>13} {'median ms':>10} {'spread':>7}"
        f"   {'torch s/meas':>12} {'median ms':>10} {'spread':>7}"
    )
    for name in args.names:
        ours_t, ours_m, base_t, base_m = [], [], [], []
        model = reszoo.create_model(name).eval()
        x = torch.randn(1, 3, 32, 32)
        for _ in range(args.repeats):
            start = time.perf_counter()
            ours_m.append(measure(name, threads=args.threads).median_ms)
            ours_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            with torch.inference_mode():
                result = tb.Timer(
                    "model(x)", globals={"model": model, "x": x}, num_threads=args.threads
                ).blocked_autorange(min_run_time=0.5)
            base_m.append(result.median * 1e3)
            base_t.append(time.perf_counter() - start)
        print(
            f"{name:<10} {statistics.median(ours_t):>13.2f} {statistics.median(ours_m):>10.3f}"
            f" {100 * spread(ours_m):>6.1f}%"
            f"   {statistics.median(base_t):>12.2f} {statistics.median(base_m):>10.3f} {100 * spread(base_m):>6.1f}%"
        )


if __name__ == "__main__":
    main()
