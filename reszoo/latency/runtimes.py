"""The runtimes a latency is measured in, and the dtypes.

Runtimes: ``eager`` (plain PyTorch), ``graph`` (the forward captured in one
CUDA graph and replayed; CUDA only), ``compile`` (``torch.compile``) and
``onnxruntime`` (the net exported to ONNX and run by ONNX Runtime on the CPU,
float32; the optional extra ``reszoo[onnx]``: see reszoo.latency.ort).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from reszoo.errors import DeviceError, InputError, MeasurementError

RUNTIMES = ("eager", "graph", "compile", "onnxruntime")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def check_runtime(runtime: str, device: torch.device, dtype: str) -> None:
    """Refuse a runtime, device and dtype that cannot be measured together, before any work."""
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(repr(d) for d in DTYPES)}, got {dtype!r}", field="dtype")
    if runtime not in RUNTIMES:
        raise InputError(
            f"runtime must be one of {', '.join(repr(r) for r in RUNTIMES)}, got {runtime!r}", field="runtime"
        )
    if runtime == "onnxruntime":
        if device.type != "cpu":
            raise DeviceError(f"runtime 'onnxruntime' times ONNX Runtime's CPU provider, not {device}; use device cpu")
        if dtype != "float32":
            raise InputError(f"runtime 'onnxruntime' measures float32 models, not {dtype}", field="dtype")
        from reszoo.export.onnx import require_onnx

        require_onnx("runtime 'onnxruntime'")


def forward_runner(module: nn.Module, x: torch.Tensor, runtime: str, device: torch.device) -> Callable[[], Any]:
    """A zero-argument callable that runs one forward in ``runtime``."""
    if runtime == "eager":
        return lambda: module(x)
    if runtime == "compile":
        compiled = torch.compile(module)
        try:
            compiled(x)  # compile now, not inside the timing
        except Exception as exc:  # torch.compile raises many kinds; report any as a failed measurement
            raise MeasurementError(f"torch.compile failed on {device}: {type(exc).__name__}: {exc}") from None
        return lambda: compiled(x)
    if runtime == "graph":
        if device.type != "cuda":
            raise DeviceError(
                f"runtime 'graph' captures CUDA graphs and needs a CUDA device, not {device}; use eager or compile"
            )
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm up kernels (cuDNN autotuning) outside the capture
                module(x)
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            module(x)
        return graph.replay
    raise InputError(f"runtime must be one of {', '.join(repr(r) for r in RUNTIMES)}, got {runtime!r}", field="runtime")
