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
from types import SimpleNamespace
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from reszoo.zoo.network import BlockPlan, make_block, make_head, make_stem, stage_plans
from reszoo.zoo.spec import ArchSpec

if TYPE_CHECKING:
    from reszoo.zoo.factory import SpecLike


@dataclass(frozen=True)
class ModelCounts:
    params: int  # learnable parameters
    macs: int  # multiply-accumulates of one forward pass at the spec's input size, batch 1


def _count(module: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    with torch.device("meta"), torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2


# A part's counts depend on a few of the spec's fields, and a search space of thousands of nets
# holds a few hundred distinct blocks and a handful of stems and heads: counting each part once
# makes a new spec's count a few dictionary lookups (the search counts every draw it screens).
@functools.lru_cache(maxsize=4096)
def _block_counts(family: str, block: str, shortcut: str, plan: BlockPlan) -> tuple[int, int]:
    owner = SimpleNamespace(family=family, block=block, resolved_shortcut=shortcut)  # what make_block reads
    with torch.device("meta"):
        module = make_block(owner, plan).eval()  # type: ignore[arg-type]
        x = torch.empty(1, plan.in_channels, plan.input_size, plan.input_size)
    return _count(module, x)


@functools.lru_cache(maxsize=256)
def _stem_counts(stem: str, in_chans: int, stem_width: int, input_size: int) -> tuple[int, int]:
    owner = SimpleNamespace(stem=stem, in_chans=in_chans, stem_width=stem_width)  # what make_stem reads
    with torch.device("meta"):
        module = make_stem(owner).eval()  # type: ignore[arg-type]
        x = torch.empty(1, in_chans, input_size, input_size)
    return _count(module, x)


@functools.lru_cache(maxsize=256)
def _head_counts(feature_dim: int, num_classes: int, size: int) -> tuple[int, int]:
    owner = SimpleNamespace(feature_dim=feature_dim, num_classes=num_classes)  # what make_head reads
    with torch.device("meta"):
        pool, fc = make_head(owner)  # type: ignore[arg-type]
        x = torch.empty(1, feature_dim, size, size)
    return _count(nn.Sequential(pool, fc), x)


def count(spec: SpecLike) -> ModelCounts:
    """Parameters and MACs of ``spec``: an ``ArchSpec``, a preset name (``"resnet56"``), a spec
    file or a mapping of spec fields (cached per spec, and per distinct part)."""
    if not isinstance(spec, ArchSpec):
        from reszoo.zoo.factory import resolve_spec  # the factory builds nets; counting needs none

        spec = resolve_spec(spec)
    return _count_spec(spec)


@functools.lru_cache(maxsize=1024)
def _count_spec(spec: ArchSpec) -> ModelCounts:
    params, macs = _stem_counts(spec.stem, spec.in_chans, spec.stem_width, spec.resolved_input_size)
    occurrences: Counter[BlockPlan] = Counter(p for plans in stage_plans(spec) for p in plans)
    for plan, times in occurrences.items():
        block_params, block_macs = _block_counts(spec.family, spec.block, spec.resolved_shortcut, plan)
        params += times * block_params
        macs += times * block_macs
    head_params, head_macs = _head_counts(spec.feature_dim, spec.num_classes, spec.stage_output_sizes()[-1])
    return ModelCounts(params=params + head_params, macs=macs + head_macs)
