"""The one network class every ArchSpec builds into.

Module names follow timm's ``ResNet`` (``conv1``, ``bn1``, ``act1``,
``maxpool``, ``layer1``..``layerN``, ``global_pool``, ``fc``) and residual
blocks are timm's, so an ImageNet-style residual spec has exactly the
parameters and state_dict keys of the timm model of the same name (tests load
timm's ``resnet34`` and ``resnet50`` weights with ``strict=True``). timm's
``ResNet`` itself is not used: its forward hard-codes four stages and its stem
is always 64 channels of 7x7, while a spec may have any number of stages, a
CIFAR stem and a plain or highway family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from timm.layers import create_classifier
from torch import nn

from reszoo.zoo.blocks import BLOCK_CLASSES, HighwayGate, shortcut_module
from reszoo.zoo.spec import ArchSpec


@dataclass(frozen=True)
class BlockPlan:
    """Where one block sits and what shapes it sees; equal plans build equal blocks."""

    in_channels: int
    width: int
    out_channels: int
    stride: int
    input_size: int  # spatial side of the block's input


def stage_plans(spec: ArchSpec) -> list[list[BlockPlan]]:
    """The blocks of every stage, in order: the one place that lays out a net."""
    in_channels = spec.stem_width
    in_size = spec.stem_output_size()
    stages = []
    for depth, width, stride, out_size in zip(
        spec.stage_depths, spec.stage_widths, spec.stage_strides(), spec.stage_output_sizes()
    ):
        out_channels = width * spec.expansion
        plans = [BlockPlan(in_channels, width, out_channels, stride, in_size)]
        plans += [BlockPlan(out_channels, width, out_channels, 1, out_size)] * (depth - 1)
        stages.append(plans)
        in_channels, in_size = out_channels, out_size
    return stages


def make_block(spec: ArchSpec, plan: BlockPlan) -> nn.Module:
    block_cls = BLOCK_CLASSES[(spec.family, spec.block)]
    shortcut = shortcut_module(spec.resolved_shortcut, plan.in_channels, plan.out_channels, plan.stride)
    return block_cls(plan.in_channels, plan.width, plan.stride, shortcut)


def make_stem(spec: ArchSpec) -> nn.Sequential:
    """``conv1, bn1, act1, maxpool`` (the max-pool an identity for the CIFAR stem)."""
    if spec.stem == "cifar":
        conv = nn.Conv2d(spec.in_chans, spec.stem_width, kernel_size=3, stride=1, padding=1, bias=False)
        pool: nn.Module = nn.Identity()
    else:
        conv = nn.Conv2d(spec.in_chans, spec.stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    return nn.Sequential(conv, nn.BatchNorm2d(spec.stem_width), nn.ReLU(inplace=True), pool)


def make_head(spec: ArchSpec) -> tuple[nn.Module, nn.Linear]:
    """Global average pool and classifier (timm's ``create_classifier``)."""
    return create_classifier(spec.feature_dim, spec.num_classes, pool_type="avg")


class ReszooNet(nn.Module):
    """A residual, plain or highway net built from an :class:`ArchSpec`.

    Args:
        spec: The architecture; kept as ``self.spec``.
        init_weights: Initialise the weights (skipped for shape-only meta nets).
    """

    #: timm's model config (input size, mean and std, classes, entry), set on a loaded net.
    pretrained_cfg: dict[str, Any]

    def __init__(self, spec: ArchSpec, *, init_weights: bool = True) -> None:
        super().__init__()
        self.spec = spec
        self.num_classes = spec.num_classes
        self.in_chans = spec.in_chans

        self.conv1, self.bn1, self.act1, self.maxpool = make_stem(spec)
        self.stage_names: list[str] = []
        for index, plans in enumerate(stage_plans(spec)):
            name = f"layer{index + 1}"  # timm's names, for weight compatibility
            self.add_module(name, nn.Sequential(*(make_block(spec, plan) for plan in plans)))
            self.stage_names.append(name)

        self.num_features = spec.feature_dim
        self.global_pool, self.fc = make_head(spec)
        if init_weights:
            self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """He initialisation (fan-out, as timm and torchvision) for every conv,
        BN at (1, 0). Unlike timm's default, the last BN of a branch is not
        zeroed: a plain block would then output zeros, and the paper's
        comparison needs residual and plain twins initialised alike."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, HighwayGate):  # after the loop above: keeps the negative gate bias
                module.init_gate()

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, name) for name in self.stage_names]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and stages: ``(B, C, H, W)`` image to ``(B, num_features, h, w)``."""
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for stage in self.stages():
            x = stage(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool and classifier; ``pre_logits`` stops before ``fc``."""
        x = self.global_pool(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc


def build(spec: ArchSpec, *, device: torch.device | str | None = None) -> ReszooNet:
    """Build ``spec`` into a freshly initialised network, on ``device`` if given
    (``"meta"`` builds a parameter-less shape-only net in microseconds)."""
    if device is None:
        return ReszooNet(spec)
    from reszoo.devices import model_device

    device = model_device(device)  # a DeviceError, not torch's, for cuda on a machine without one
    with device:
        return ReszooNet(spec, init_weights=device.type != "meta")
