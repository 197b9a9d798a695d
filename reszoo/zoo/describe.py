"""Facts about a spec in one JSON-ready dict: what ``reszoo list/show --json`` print."""

from __future__ import annotations

from collections.abc import Mapping
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


def pretrained_cfg(
    spec: ArchSpec, data: Mapping[str, Any], *, ref: str, dataset: str | None, sha256: str
) -> dict[str, Any]:
    """timm's ``pretrained_cfg`` for a trained entry: what its inputs must look like.

    Images are fed at the size trained on (no resize or crop for CIFAR's 32x32:
    ``crop_pct`` 1.0) and normalised with the training set's own mean and std,
    which the entry recorded; without them (an imported entry), timm's ImageNet
    defaults would be wrong, so none are claimed. ``architecture`` is the
    entry's name, as timm names the model a config belongs to (its
    ``save_for_hf`` writes it at the top of ``config.json``).
    """
    cfg: dict[str, Any] = {
        "architecture": ref.partition("@")[0],
        "input_size": (spec.in_chans, spec.input_size, spec.input_size),
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "crop_mode": "center",
        "num_classes": spec.num_classes,
        "first_conv": "conv1",
        "classifier": "fc",
        "hf_hub_id": None,
        "tag": ref,
        "dataset": dataset,
        "sha256": sha256,
    }
    if data.get("mean") and data.get("std"):
        cfg["mean"], cfg["std"] = tuple(data["mean"]), tuple(data["std"])
    if data.get("classes"):
        cfg["label_names"] = tuple(data["classes"])
    return cfg
