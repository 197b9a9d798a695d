"""Counting parameters and MACs: block-wise (reszoo.count) against the baseline
of building the whole net on the meta device and running torch's FlopCounterMode
over it. Prints seconds and the speed-up as a ratio, per preset.

    python benchmarks/count_macs.py [NAME ...]
"""

from __future__ import annotations

import functools
import sys

import torch
from timing import median_seconds  # benchmarks/timing.py, beside this script
from torch.utils.flop_counter import FlopCounterMode

from reszoo.zoo.counting import count
from reszoo.zoo.network import build
from reszoo.zoo.presets import get_spec


def whole_net_count(spec) -> tuple[int, int]:
    model = build(spec, device="meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, spec.in_chans, spec.input_size, spec.input_size, device="meta"))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


def main(names: list[str]) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'net':<12}{'block-wise s':>14}{'whole-net s':>14}{'speed-up':>10}")
    for name in names:
        spec = get_spec(name)
        counts = count.__wrapped__(spec)  # uncached
        assert (counts.params, counts.macs) == whole_net_count(spec), name
        ours = median_seconds(functools.partial(count.__wrapped__, spec), 5, warmup=False)
        baseline = median_seconds(
            functools.partial(whole_net_count, spec), 3 if spec.num_blocks < 100 else 1, warmup=False
        )
        print(f"{name:<12}{ours:>14.3f}{baseline:>14.3f}{baseline / ours:>9.0f}x")


if __name__ == "__main__":
    main(sys.argv[1:] or ["resnet20", "resnet110", "resnet152", "resnet1202"])
