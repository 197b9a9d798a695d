"""Parameters and multiply-accumulates of a spec, without building the net.

A net of the paper repeats a handful of distinct blocks hundreds of times
(resnet1202: 600 blocks, 6 distinct), so each distinct block is built once on
the meta device, counted with ``torch.utils.flop_counter`` and multiplied by
its occurrences. Counting resnet1202 takes milliseconds instead of the ~10 s
a full meta-device forward takes.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from reszoo.zoo.network import BlockPlan, make_block, make_head, make_stem, stage_plans
from reszoo.zoo.spec import ArchSpec


@dataclass(frozen=True)
class ModelCounts:
    params: int  # learnable parameters
    macs: int  # multiply-accumulates of one forward pass at the spec's input size, batch 1


def _count(module: nn.Module, x: torch.Tensor) -> tuple[int, int, torch.Tensor]:
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    params = sum(p.numel() for p in module.parameters())
    return params, counter.get_total_flops() // 2, y


@functools.lru_cache(maxsize=1024)
def count(spec: ArchSpec) -> ModelCounts:
    """Parameters and MACs of ``spec`` (cached per spec)."""
    with torch.device("meta"), torch.no_grad():
        x = torch.empty(1, spec.in_chans, spec.resolved_input_size, spec.resolved_input_size)
        params, macs, _ = _count(make_stem(spec).eval(), x)
        occurrences: Counter[BlockPlan] = Counter(p for plans in stage_plans(spec) for p in plans)
        for plan, times in occurrences.items():
            block = make_block(spec, plan).eval()
            block_params, block_macs, _ = _count(
                block, torch.empty(1, plan.in_channels, plan.input_size, plan.input_size)
            )
            params += times * block_params
            macs += times * block_macs
        pool, fc = make_head(spec)
        size = spec.stage_output_sizes()[-1]
        head_params, head_macs, _ = _count(nn.Sequential(pool, fc), torch.empty(1, spec.feature_dim, size, size))
    return ModelCounts(params=params + head_params, macs=macs + head_macs)
