"""Training step time (forward, backward, SGD) per path, against a baseline
measured in the same run, as ratios; and on a CPU, the throughput of one and
of several 1-thread processes at once.

Paths (each built fresh, 5 warm-up steps, then the median of --steps; the
paths of one net are timed interleaved, a step of each in turn, so that a
change in the machine's speed falls on all of them alike):
  CPU:  float32 (NCHW eager), channels_last (float32 NHWC: what `reszoo train`
        runs by default, the baseline), bfloat16 (autocast + NHWC:
        `--precision bfloat16`), bfloat16-norm32 (autocast with BatchNorm and
        the residual stream in float32), optionally compile.
  CUDA: bfloat16 eager (the baseline), graph (the whole step in one CUDA
        graph), optionally compile.

    python benchmarks/train_step.py [--device cuda] [--steps 20] [--nets resnet20 resnet56]
    python benchmarks/train_step.py --threads 1 2        # CPU: each path at 1 thread, then at 2
    python benchmarks/train_step.py --processes 1 2      # CPU: 1-thread processes at once
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

import torch

import reszoo
from reszoo.train.precision import PRECISIONS, apply_precision
from reszoo.train.recipes import PAPER
from reszoo.train.steps import _EagerStep, _GraphStep


def time_interleaved(steps: dict, count: int, cuda: bool) -> dict[str, float]:
    """Median seconds per step of each path, timed a step of each in turn (after 5 warm-ups each)."""
    for step, x, y in steps.values():
        for _ in range(5):
            step(x, y, 0.1)
    times: dict[str, list[float]] = {path: [] for path in steps}
    for _ in range(count):
        for path, (step, x, y) in steps.items():
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            step(x, y, 0.1)
            if cuda:
                torch.cuda.synchronize()
            times[path].append(time.perf_counter() - start)
    return {path: statistics.median(t) for path, t in times.items()}


def make_step(name: str, path: str, device: torch.device, batch: int):
    """(step, x, y) for one path: ``float32`` (NCHW), ``channels_last`` (float32 NHWC),
    a precision (``bfloat16``, ``bfloat16-norm32``: NHWC), ``graph`` or ``compile``
    (bf16 autocast, NHWC)."""
    torch.manual_seed(0)
    precision = path if path in PRECISIONS else "float32" if path == "channels_last" else "bfloat16"
    model = apply_precision(reszoo.create_model(name).to(device).train(), precision)
    channels_last = path != "float32"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, fused=True if path == "graph" else None
    )
    x = torch.randn(batch, 3, 32, 32, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    if path == "graph":
        return _GraphStep(model, optimizer, PAPER, (x, y), device, precision), x, y
    forward = torch.compile(model) if path == "compile" else model
    step = _EagerStep(forward, optimizer, PAPER, device, precision)
    if path == "compile":
        step(x, y, 0.1)  # compile now, outside the timing
    return step, x, y


def _process_steps(name: str, path: str, batch: int, seconds: float, start_at: float, out) -> None:
    torch.set_num_threads(1)
    step, x, y = make_step(name, path, torch.device("cpu"), batch)
    for _ in range(3):
        step(x, y, 0.1)
    while time.time() < start_at:  # every process starts timing together
        time.sleep(0.01)
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        step(x, y, 0.1)
        done += 1
    out.put(done / (time.perf_counter() - began))


def processes_throughput(name: str, path: str, counts: list[int], batch: int, seconds: float) -> None:
    """Aggregate steps/s of N one-thread processes training at once."""
    context = multiprocessing.get_context("spawn")
    base = None
    print(f"{name}, {path}, 1 thread per process, {seconds:.0f} s each")
    print(f"{'net':<10} {'processes':>9} {'steps/s each':>13} {'steps/s total':>14} {'vs 1 process':>13}")
    for n in counts:
        out = context.Queue()
        start_at = time.time() + 15  # time for every process to import torch and warm up
        procs = [
            context.Process(target=_process_steps, args=(name, path, batch, seconds, start_at, out)) for _ in range(n)
        ]
        for p in procs:
            p.start()
        rates = [out.get() for _ in procs]
        for p in procs:
            p.join()
        total = sum(rates)
        base = total if base is None else base
        print(f"{name:<10} {n:>9} {statistics.mean(rates):>13.2f} {total:>14.2f} {total / base:>12.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--nets", nargs="*", default=["resnet20", "resnet56", "resnet110"])
    parser.add_argument(
        "--paths",
        nargs="*",
        default=None,
        help="channels_last, float32, bfloat16, bfloat16-norm32, graph, compile; the first is "
        "the baseline (default: CPU channels_last float32 bfloat16 bfloat16-norm32; CUDA "
        "bfloat16 graph)",
    )
    parser.add_argument(
        "--threads",
        nargs="*",
        type=int,
        default=None,
        help="CPU: time every path at each of these thread counts (default: torch's)",
    )
    parser.add_argument(
        "--processes",
        nargs="*",
        type=int,
        default=None,
        help="CPU: also time this many 1-thread processes at once (e.g. 1 2)",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="How long each process count trains.")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    paths = args.paths or (
        ["bfloat16", "graph"] if cuda else ["channels_last", "float32", "bfloat16", "bfloat16-norm32"]
    )
    for threads in args.threads or [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        where = torch.cuda.get_device_name(device) if cuda else f"{threads} thread{'s' if threads > 1 else ''}"
        print(f"{device} ({where}), torch {torch.__version__}, batch {args.batch_size}; baseline: {paths[0]} eager")
        print(f"{'net':<10} {'path':<16} {'ms/step':>9} {'vs base':>8} {'setup s':>8}")
        for name in args.nets:
            steps, setups = {}, {}
            for path in paths:
                start = time.perf_counter()
                steps[path] = make_step(name, path, device, args.batch_size)
                setups[path] = time.perf_counter() - start
            ms = {path: 1e3 * t for path, t in time_interleaved(steps, args.steps, cuda).items()}
            for path in paths:
                print(
                    f"{name:<10} {path:<16} {ms[path]:>9.1f} {ms[path] / ms[paths[0]]:>7.2f}x {setups[path]:>8.1f}",
                    flush=True,
                )
    if args.processes and not cuda:
        processes_throughput(args.nets[0], "channels_last", args.processes, args.batch_size, args.seconds)


if __name__ == "__main__":
    main()
