"""The search space: which specs a search (or a latency study) may draw.

A space is data: bounds on family, block, depth per stage, base width and
shortcut style. ``sample`` draws a random valid ``ArchSpec`` from it, which
the latency predictor's checks use; the Optuna search draws from the same
bounds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from reszoo.zoo.spec import FAMILY_SHORTCUTS, ArchSpec


@dataclass(frozen=True)
class SearchSpace:
    """Bounds of the searchable specs.

    Args:
        families: Families to draw from.
        blocks: Block types to draw from.
        num_stages: Stages of every net (each after the first halves the size).
        min_depth, max_depth: Blocks per stage.
        base_widths: Width of the first stage; later stages multiply it by
            ``width_multipliers``.
        width_multipliers: Per-stage factor on the base width.
        stem, num_classes, in_chans, input_size: Fixed for the whole space.
    """

    families: tuple[str, ...] = ("residual", "plain", "highway")
    blocks: tuple[str, ...] = ("basic", "bottleneck")
    num_stages: int = 3
    min_depth: int = 1
    max_depth: int = 9
    base_widths: tuple[int, ...] = (8, 16, 24, 32, 48, 64)
    width_multipliers: tuple[int, ...] = (1, 2, 4)
    stem: str = "cifar"
    num_classes: int = 10
    in_chans: int = 3
    input_size: int = 32

    def shortcuts(self, family: str) -> tuple[str, ...]:
        return FAMILY_SHORTCUTS[family]

    def make_spec(self, family: str, block: str, depths: tuple[int, ...], base_width: int, shortcut: str) -> ArchSpec:
        return ArchSpec(
            family=family,
            block=block,
            stem=self.stem,
            stage_depths=depths,
            stage_widths=tuple(base_width * m for m in self.width_multipliers[: self.num_stages]),
            shortcut=shortcut,
            num_classes=self.num_classes,
            in_chans=self.in_chans,
            input_size=self.input_size,
        )

    def sample(self, rng: random.Random) -> ArchSpec:
        """One spec drawn uniformly along every axis."""
        family = rng.choice(self.families)
        return self.make_spec(
            family,
            rng.choice(self.blocks),
            tuple(rng.randint(self.min_depth, self.max_depth) for _ in range(self.num_stages)),
            rng.choice(self.base_widths),
            rng.choice(self.shortcuts(family)),
        )
