"""Blocks of the three families: residual, plain and highway.

Residual blocks are timm's own ``BasicBlock`` and ``Bottleneck``, so nets built
from them carry timm's parameter names. The plain and highway blocks subclass
them: same layers, same names, same parameter count; only the way the block's
output is formed differs:

- residual: ``y = relu(F(x) + shortcut(x))`` (timm's forward)
- plain:    ``y = relu(F(x))``
- highway:  ``y = T(x) * relu(F(x)) + (1 - T(x)) * carry(x)``, with a learned
  transform gate ``T = sigmoid(gate(x))`` (Srivastava et al., 2015)

where ``F`` is the block's conv-BN stack without its final ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.resnet import BasicBlock, Bottleneck, downsample_conv
from torch import nn

#: Initial bias of highway transform gates. Negative, as Srivastava et al.
#: advise, so that T(x) starts near sigmoid(-2) = 0.12 and each block starts
#: close to carrying its input through: deep highway nets then train at all.
HIGHWAY_GATE_BIAS = -2.0


class ZeroPadShortcut(nn.Module):
    """Shortcut A of the paper: identity, subsampled by ``stride`` and zero-padded
    to ``out_channels``; it has no parameters, so a residual net with it has
    exactly the parameter count of its plain twin."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"zero padding cannot reduce {in_channels} channels to {out_channels}")
        self.stride = stride
        self.pad = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))
        return x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad_channels={self.pad}"


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Shortcuts B and C: a strided 1x1 conv and BN (timm's ``downsample_conv``,
    so the keys are ``downsample.0`` and ``downsample.1`` as in timm)."""
    return downsample_conv(in_channels, out_channels, kernel_size=1, stride=stride)


def _basic_branch(block: BasicBlock, x: torch.Tensor) -> torch.Tensor:
    return block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x)))))


def _bottleneck_branch(block: Bottleneck, x: torch.Tensor) -> torch.Tensor:
    x = block.act1(block.bn1(block.conv1(x)))
    x = block.act2(block.bn2(block.conv2(x)))
    return block.bn3(block.conv3(x))


class PlainBasicBlock(BasicBlock):
    """A basic block with its shortcut removed (the paper's plain nets)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(_basic_branch(self, x))


class PlainBottleneck(Bottleneck):
    """A bottleneck block with its shortcut removed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act3(_bottleneck_branch(self, x))


class HighwayGate:
    """The transform gate shared by both highway blocks.

    The gate is a 1x1 conv (with the block's stride) from the block input to
    its output channels: the cheapest gate that sees every input channel at
    every position. The carry path is ``self.downsample`` (a projection where
    the shape changes, or everywhere with shortcut C) or the identity.
    """

    downsample: nn.Module | None
    gate: nn.Conv2d

    def _add_gate(self, in_channels: int, out_channels: int, stride: int) -> None:
        self.gate = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=True)
        self.init_gate()

    @torch.no_grad()
    def init_gate(self) -> None:
        nn.init.kaiming_normal_(self.gate.weight, mode="fan_out", nonlinearity="relu")
        if self.gate.bias is None:
            raise AssertionError("the highway gate is built with bias=True")
        nn.init.constant_(self.gate.bias, HIGHWAY_GATE_BIAS)

    def _mix(self, x: torch.Tensor, transformed: torch.Tensor) -> torch.Tensor:
        carry = x if self.downsample is None else self.downsample(x)
        t = torch.sigmoid(self.gate(x))
        # t*h + (1-t)*carry, written with one product fewer.
        return carry + t * (transformed - carry)


class HighwayBasicBlock(HighwayGate, BasicBlock):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__(inplanes, planes, stride, downsample)
        self._add_gate(inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mix(x, self.act2(_basic_branch(self, x)))


class HighwayBottleneck(HighwayGate, Bottleneck):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__(inplanes, planes, stride, downsample)
        self._add_gate(inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mix(x, self.act3(_bottleneck_branch(self, x)))


#: (family, block) -> block class. Every class takes (inplanes, planes, stride, downsample).
BLOCK_CLASSES: dict[tuple[str, str], type[nn.Module]] = {
    ("residual", "basic"): BasicBlock,
    ("residual", "bottleneck"): Bottleneck,
    ("plain", "basic"): PlainBasicBlock,
    ("plain", "bottleneck"): PlainBottleneck,
    ("highway", "basic"): HighwayBasicBlock,
    ("highway", "bottleneck"): HighwayBottleneck,
}


def shortcut_module(shortcut: str, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The module on a block's shortcut (or highway carry) path, ``None`` for identity."""
    reshapes = stride != 1 or in_channels != out_channels
    if shortcut == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride) if reshapes else None
    if shortcut == "B":
        return projection(in_channels, out_channels, stride) if reshapes else None
    if shortcut == "C":
        return projection(in_channels, out_channels, stride)
    return None  # "none": plain blocks have no shortcut
