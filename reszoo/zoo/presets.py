"""Preset names and the specs they stand for: the paper's nets.

CIFAR nets (He et al. 2015, section 4.2): a 3x3 stem, three stages of n
blocks at widths 16/32/64, depth 6n+2, shortcut A for the residual ones.
ImageNet nets (Table 1): a 7x7 stem with max-pool, four stages at widths
64/128/256/512, shortcut B, which is also what timm's resnet18..152 are.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from reszoo.errors import SpecError, UnknownModelError
from reszoo.zoo.spec import FAMILIES, ArchSpec

CIFAR_WIDTHS = (16, 32, 64)
IMAGENET_WIDTHS = (64, 128, 256, 512)

#: Blocks per stage of the ImageNet nets (the paper's Table 1).
IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def cifar_spec(family: str, depth: int) -> ArchSpec:
    """The paper's CIFAR-10 net of ``depth`` = 6n + 2 layers."""
    if (depth - 2) % 6 or depth < 8:
        raise SpecError(
            f"CIFAR nets have 6n+2 layers (20, 32, 44, 56, 110, ...), got {depth}", field="depth", value=depth
        )
    n = (depth - 2) // 6
    return ArchSpec(
        family=family,
        block="basic",
        stem="cifar",
        stage_depths=(n, n, n),
        stage_widths=CIFAR_WIDTHS,
        shortcut="A" if family == "residual" else None,
        num_classes=10,
        input_size=32,
    )


def imagenet_spec(family: str, depth: int) -> ArchSpec:
    """The paper's ImageNet net of ``depth`` layers (18, 34, 50, 101 or 152)."""
    block, depths = IMAGENET_DEPTHS[depth]
    return ArchSpec(
        family=family,
        block=block,
        stem="imagenet",
        stage_depths=depths,
        stage_widths=IMAGENET_WIDTHS,
        shortcut="B" if family == "residual" else None,
        num_classes=1000,
        input_size=224,
    )


def _build_presets() -> dict[str, ArchSpec]:
    presets: dict[str, ArchSpec] = {}
    for depth in (20, 32, 44, 56, 110, 1202):
        presets[f"resnet{depth}"] = cifar_spec("residual", depth)
    for family in ("plain", "highway"):
        for depth in (20, 32, 44, 56, 110):
            presets[f"{family}{depth}"] = cifar_spec(family, depth)
    for depth in IMAGENET_DEPTHS:
        presets[f"resnet{depth}"] = imagenet_spec("residual", depth)
    for family in ("plain", "highway"):
        for depth in (18, 34):
            presets[f"{family}{depth}"] = imagenet_spec(family, depth)
    return presets


PRESETS: dict[str, ArchSpec] = _build_presets()


def natural_key(name: str) -> tuple:
    """Sort key that puts resnet20 before resnet110."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def get_spec(name: str) -> ArchSpec:
    """The spec of preset ``name``; an unknown name suggests close matches."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise UnknownModelError(str(name), PRESETS) from None


def list_presets(pattern: str | Iterable[str] = "*", family: str | None = None) -> list[str]:
    """Preset names matching ``pattern`` (shell-style, or several) and ``family``.

    Args:
        pattern: ``fnmatch`` pattern such as ``"resnet*"``, or a list of them.
        family: ``residual``, ``plain`` or ``highway``; ``None`` for all.
    """
    if family is not None and family not in FAMILIES:
        raise SpecError(
            f"family must be one of {', '.join(repr(f) for f in FAMILIES)}, got {family!r}",
            field="family",
            value=family,
        )
    patterns = [pattern] if isinstance(pattern, str) else list(pattern) if isinstance(pattern, (list, tuple)) else None
    if patterns is None or not all(isinstance(p, str) for p in patterns):
        raise SpecError(
            f"pattern must be a name pattern such as 'resnet*' or a list of them, got {pattern!r:.60}",
            field="pattern",
            value=pattern,
        )
    names = [
        name
        for name, spec in PRESETS.items()
        if any(fnmatch.fnmatchcase(name, p) for p in patterns) and (family is None or spec.family == family)
    ]
    return sorted(names, key=natural_key)
