"""The arithmetic a training step runs in: the precisions ``reszoo train`` and the
zoo's recipes accept, and what each keeps in float32.

- ``float32``: everything in float32.
- ``bfloat16``: the forward under ``torch.autocast(dtype=bfloat16)``. On a CPU
  autocast casts convolutions and matmuls, and every op after them (BatchNorm,
  ReLU, the residual add) then runs on their bf16 output: the normalisation and
  the residual stream are bf16 too.
- ``bfloat16-norm32``: autocast, with every BatchNorm fed a float32 input, so
  BatchNorm (forward and backward), the ReLU after it and the residual stream
  stay float32; only the convolutions and the classifier run in bf16. This is
  the standard mixed-precision recipe (apex's ``keep_batchnorm_fp32``): BatchNorm's
  backward subtracts two means of the gradient, which bf16's 8-bit mantissa
  cancels badly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from reszoo.errors import InputError


@dataclass(frozen=True)
class Precision:
    name: str
    autocast: bool  # the forward runs under bf16 autocast
    float32_norms: bool  # BatchNorm layers get a float32 input (and so give a float32 output)


_POLICIES = {
    p.name: p
    for p in (
        Precision("float32", autocast=False, float32_norms=False),
        Precision("bfloat16", autocast=True, float32_norms=False),
        Precision("bfloat16-norm32", autocast=True, float32_norms=True),
    )
}

PRECISIONS = tuple(_POLICIES)


def check_precision(precision: str) -> str:
    if precision not in _POLICIES:
        raise InputError(
            f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}",
            field="precision",
            value=precision,
        )
    return precision


def policy(precision: str) -> Precision:
    return _POLICIES[check_precision(precision)]


def autocast(device_type: str, precision: str, **kwargs: bool) -> torch.autocast:
    """The autocast context a forward in ``precision`` runs under (disabled for float32)."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=policy(precision).autocast, **kwargs)


def _float32_input(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    # autocast leaves batch_norm alone (it is on neither of its CPU or CUDA lists), so a
    # float32 input makes BatchNorm, and everything after it up to the next conv, float32.
    return (args[0].float(), *args[1:])


def apply_precision(model: nn.Module, precision: str) -> nn.Module:
    """Prepare ``model`` for training in ``precision``: for ``bfloat16-norm32``, a forward
    pre-hook on every BatchNorm that casts its input to float32. The hooks change no
    parameter or state_dict key, and under float32 they do nothing, so the model
    evaluates and exports as any other."""
    if policy(precision).float32_norms:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.register_forward_pre_hook(_float32_input)
    return model


def default_precision(device: str | torch.device) -> str:
    """bf16 autocast on a GPU; float32 on a CPU.

    On this project's CPU (AVX512-BF16 and AMX) bf16 autocast halves a resnet20
    step, but it did not learn as well as float32 in a 3-epoch test
    (benchmarks/README.md); ``bfloat16-norm32`` keeps BatchNorm and the residual
    stream in float32 for that reason.
    """
    return "bfloat16" if torch.device(device).type == "cuda" else "float32"


def native_bfloat16(device: str | torch.device) -> bool:
    """Whether bf16 matmuls and convolutions run natively here: a CUDA GPU, or a CPU
    with AVX512-BF16 or AMX (oneDNN's own check). Elsewhere bf16 autocast on a CPU
    is emulated and slower than float32."""
    if torch.device(device).type == "cuda":
        return True
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
