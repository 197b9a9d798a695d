"""Training step time of resnet20/56/110 at batch 128 in each runtime, against
eager in the same run, as ratios.

Runtimes: eager (reference), compile (torch.compile; its compile time is
reported apart), graph (the whole step in one CUDA graph; CUDA only).

    python benchmarks/train_step.py [--device cuda] [--steps 50] [--nets resnet20 resnet56 resnet110]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import reszoo
from reszoo.train.loop import _EagerStep, _GraphStep
from reszoo.train.recipes import PAPER


def time_steps(step, x, y, steps: int, cuda: bool) -> float:
    """Median seconds per step over ``steps`` steps, after 5 warm-up steps."""
    for _ in range(5):
        step(x, y, 0.1)
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x, y, 0.1)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--nets", nargs="*", default=["resnet20", "resnet56", "resnet110"])
    parser.add_argument("--runtimes", nargs="*", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    runtimes = args.runtimes or (["eager", "graph", "compile"] if cuda else ["eager", "compile"])
    print(f"{device} ({torch.cuda.get_device_name(device) if cuda else f'{torch.get_num_threads()} threads'}), "
          f"torch {torch.__version__}, batch {args.batch_size}, {'bf16 autocast, channels_last' if cuda else 'float32'}")
    print(f"{'net':<10} {'runtime':<8} {'ms/step':>9} {'vs eager':>9} {'setup s':>8}")
    for name in args.nets:
        eager_ms = None
        for runtime in runtimes:
            torch.manual_seed(0)
            model = reszoo.create_model(name).to(device).train()
            if cuda:
                model = model.to(memory_format=torch.channels_last)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
            x = torch.randn(args.batch_size, 3, 32, 32, device=device)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            y = torch.randint(0, 10, (args.batch_size,), device=device)
            start = time.perf_counter()
            if runtime == "graph":
                step = _GraphStep(model, optimizer, PAPER, (x, y), device)
            else:
                forward = torch.compile(model) if runtime == "compile" else model
                step = _EagerStep(forward, optimizer, PAPER, device)
                if runtime == "compile":
                    step(x, y, 0.1)  # compile now, outside the timing
            setup = time.perf_counter() - start
            ms = 1e3 * time_steps(step, x, y, args.steps, cuda)
            eager_ms = ms if runtime == "eager" else eager_ms
            print(f"{name:<10} {runtime:<8} {ms:>9.1f} {ms / eager_ms:>8.2f}x {setup:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
