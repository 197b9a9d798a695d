"""ONNX: a net exported with a dynamic batch size, run and checked in ONNX Runtime.

The export is ``torch.onnx.export``'s (the ``torch.export``-based exporter,
which needs ``onnxscript``); ONNX Runtime runs it on the CPU. Both come with
the optional extra: ``pip install 'reszoo[onnx]'``. The latency runtime
``onnxruntime`` (reszoo.latency.ort) times what this module writes.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from reszoo.errors import DeviceError, MeasurementError
from reszoo.files import atomic_write_bytes, check_output_file

if TYPE_CHECKING:
    from reszoo.zoo.network import ReszooNet
    from reszoo.zoo.registry import Registry

#: What ``pip install 'reszoo[onnx]'`` adds, by import name.
ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")
INSTALL_HINT = "pip install 'reszoo[onnx]'"
INPUT_NAME, OUTPUT_NAME = "input", "logits"
#: The batch of the example input traced: torch.export specialises a dimension of size 1,
#: so an example batch of 1 would fix the batch size instead of leaving it free.
EXAMPLE_BATCH = 2


def require_onnx(what: str) -> None:
    """Raise a DeviceError naming the missing packages when the ONNX extra is not installed."""
    missing = [name for name in ONNX_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise DeviceError(f"{what} needs {', '.join(missing)}, not installed here: {INSTALL_HINT}")


def onnx_bytes(module: nn.Module, input_shape: Sequence[int], *, metadata: Mapping[str, str] | None = None) -> bytes:
    """``module`` (float32, on the CPU) as ONNX bytes taking ``input`` of shape
    ``(batch, *input_shape)`` with a free batch size, returning ``logits``.

    Args:
        input_shape: One example's shape, without the batch: ``(3, 32, 32)``.
        metadata: Written into the model's ``metadata_props`` (read back by
            ``onnx.load(f).metadata_props`` or ONNX Runtime's ``get_modelmeta()``).
    """
    require_onnx("ONNX export")
    module = module.to("cpu", torch.float32).eval()
    example = torch.randn(EXAMPLE_BATCH, *input_shape)
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                module,
                (example,),
                None,
                dynamo=True,
                verbose=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
            )
    except Exception as exc:  # the exporter raises many kinds; report any as one failure
        raise MeasurementError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    if program is None:  # only the non-dynamo exporter returns None
        raise MeasurementError("ONNX export failed: torch.onnx.export returned no program")
    proto = program.model_proto
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def inference_session(data: bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime session on the CPU for the model ``data``, with every graph
    optimisation (BatchNorm folded into convolutions, activations fused) and
    denormal floats flushed to zero, as reszoo's eager timing flushes them.

    Args:
        threads: Intra-op threads (``None``: ONNX Runtime's default, one per core).
    """
    require_onnx("ONNX Runtime")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: no warnings on stderr for every session
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    # Building its default thread pool, ONNX Runtime also sets flush-to-zero on the calling thread
    # and never clears it: the rest of the process (a user's NumPy, Hypothesis) would lose its
    # subnormal floats. Its own threads keep it; reszoo's timing flushes where it times.
    torch.set_flush_denormal(False)
    return session


def max_abs_diff(
    data: bytes, module: nn.Module, input_shape: Sequence[int], *, batch_sizes: Sequence[int] = (1, 3), seed: int = 0
) -> float:
    """The largest absolute difference between ONNX Runtime's outputs and eager
    PyTorch's (float32, CPU) on seeded random inputs at each of ``batch_sizes``."""
    session = inference_session(data)
    module = module.to("cpu", torch.float32).eval()
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch in batch_sizes:
        x = torch.randn(batch, *input_shape, generator=generator)
        with torch.no_grad():
            expected = module(x)
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        if got.shape != tuple(expected.shape):
            raise MeasurementError(
                f"the ONNX model gave shape {got.shape} at batch {batch}, eager {tuple(expected.shape)}"
            )
        worst = max(worst, float((torch.from_numpy(got) - expected).abs().max()))
    return worst


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote and how well it matches eager PyTorch."""

    path: Path
    size: int
    max_abs_diff: float
    batch_sizes: tuple[int, ...]
    onnxruntime: str


def export_onnx(
    model: ReszooNet,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    batch_sizes: Sequence[int] = (1, 3),
) -> OnnxExport:
    """Write ``model`` (a ReszooNet: its ``spec`` gives the input shape) to an ``.onnx``
    file with a free batch size, then run it in ONNX Runtime against eager PyTorch.

    Args:
        metadata: Written into the model's ``metadata_props`` (values that are not
            strings as JSON).
        batch_sizes: Batches the outputs are compared at.
    """
    require_onnx("ONNX export")
    import onnxruntime

    path = check_output_file(path, "ONNX file", suffixes=(".onnx",), overwrite=overwrite)
    spec = model.spec
    shape = (spec.in_chans, spec.resolved_input_size, spec.resolved_input_size)
    props = {key: value if isinstance(value, str) else json.dumps(value) for key, value in (metadata or {}).items()}
    data = onnx_bytes(model, shape, metadata=props)
    diff = max_abs_diff(data, model, shape, batch_sizes=batch_sizes)
    atomic_write_bytes(path, data)
    return OnnxExport(path, len(data), diff, tuple(batch_sizes), onnxruntime.__version__)


def export_entry(registry: Registry, ref: str, path: str | os.PathLike[str], *, overwrite: bool = False) -> OnnxExport:
    """:func:`export_onnx` of a registry entry, with its provenance in the file's
    metadata: ``reszoo.ref``, ``reszoo.weights_sha256``, ``reszoo.arch_digest``,
    ``reszoo.spec`` and timm's ``pretrained_cfg`` (input size, mean, std, class names)."""
    record = registry.get(ref)
    model = registry.load(record.ref)
    metadata = {
        "reszoo.ref": record.ref,
        "reszoo.weights_sha256": record.blob_sha256,
        "reszoo.arch_digest": record.arch_digest,
        "reszoo.spec": record.spec.to_json(),
        "pretrained_cfg": model.pretrained_cfg,
    }
    return export_onnx(model, path, metadata=metadata, overwrite=overwrite)
