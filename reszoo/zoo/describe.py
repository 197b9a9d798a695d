"""Facts about a spec in one JSON-ready dict: what ``reszoo list/show --json`` print."""

from __future__ import annotations

from typing import Any

from reszoo.zoo.counting import count
from reszoo.zoo.spec import ArchSpec


def spec_row(spec: ArchSpec, name: str | None = None) -> dict[str, Any]:
    """One line of a model listing; keys and their order are stable."""
    counts = count(spec)
    return {
        "name": name,
        "family": spec.family,
        "block": spec.block,
        "stem": spec.stem,
        "shortcut": spec.shortcut,
        "depth": spec.depth,
        "params": counts.params,
        "macs": counts.macs,
        "input_size": spec.input_size,
        "num_classes": spec.num_classes,
        "digest": spec.digest,
    }


def stage_rows(spec: ArchSpec) -> list[dict[str, int]]:
    """Per stage: blocks, width, output channels, stride and output side."""
    return [
        {
            "stage": index + 1,
            "blocks": depth,
            "width": width,
            "out_channels": width * spec.expansion,
            "stride": stride,
            "output_size": size,
        }
        for index, (depth, width, stride, size) in enumerate(
            zip(spec.stage_depths, spec.stage_widths, spec.stage_strides(), spec.stage_output_sizes())
        )
    ]


def spec_card(spec: ArchSpec, name: str | None = None) -> dict[str, Any]:
    """Everything ``reszoo show`` tells about an architecture."""
    return {
        **spec_row(spec, name),
        "summary": spec.summary(),
        "spec": spec.to_dict(),
        "stages": stage_rows(spec),
    }
