"""Weights as safetensors bytes: serialise, hash, check against a spec, load.

Never pickle: a pickle file can run code when it is loaded, so reszoo refuses
``.pt``/``.pth`` files without opening them with ``torch.load``.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from reszoo.errors import IntegrityError, WeightsError
from reszoo.zoo.network import ReszooNet, build
from reszoo.zoo.spec import ArchSpec

StateDict = Mapping[str, torch.Tensor]

#: Bytes hashed between two progress reports.
HASH_CHUNK = 8 << 20

_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar")
_CONVERT_HINT = (
    "convert it once where you trust the file: python -c \"import torch; from safetensors.torch import save_file; "
    "save_file(torch.load('IN.pt', weights_only=True), 'OUT.safetensors')\""
)


def sha256(data: bytes, progress: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of ``data``; ``progress(n)`` is told of each chunk hashed."""
    digest = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(view), HASH_CHUNK):
        chunk = view[start : start + HASH_CHUNK]
        digest.update(chunk)
        if progress is not None:
            progress(len(chunk))
    return digest.hexdigest()


def dtype_summary(state_dict: StateDict) -> str:
    """``float32:62,int64:19``: which dtypes the tensors have, and how many of each."""
    counts = Counter(str(t.dtype).removeprefix("torch.") for t in state_dict.values())
    return ",".join(f"{dtype}:{n}" for dtype, n in sorted(counts.items()))


def to_state_dict(weights: nn.Module | StateDict) -> dict[str, torch.Tensor]:
    if isinstance(weights, nn.Module):
        weights = weights.state_dict()
    return {k: v.detach() for k, v in weights.items()}


def check_finite(state_dict: StateDict) -> None:
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise WeightsError(f"weights hold NaN or infinite values in {shown}; refusing to store them")


def check_fits(state_dict: StateDict, spec: ArchSpec, model: nn.Module | None = None) -> None:
    """Raise ``WeightsError`` listing missing, unexpected and mis-shaped keys.

    ``model``: the (meta) net of ``spec`` if the caller already built one.
    """
    model = model if model is not None else build(spec, device="meta")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [
        f"{k} {tuple(state_dict[k].shape)} (spec wants {expected[k]})"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != expected[k]
    ]
    if missing or unexpected or misshaped:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if keys:
                parts.append(f"{label} ({len(keys)}): " + ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else ""))
        raise WeightsError(
            f"weights do not fit {spec.summary()} [{spec.short_digest}]: " + "; ".join(parts)
        )


def cast_floating(state_dict: StateDict, dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Floating tensors cast to ``dtype``, except those the cast would overflow (a
    BatchNorm running variance of 1e6 in float16), which keep their own dtype.
    Returns the state and the keys kept."""
    out, kept = {}, []
    for key, value in state_dict.items():
        if value.is_floating_point():
            cast = value.to(dtype)
            if torch.isfinite(cast).all() or not torch.isfinite(value).all():
                value = cast
            else:
                kept.append(key)
        out[key] = value
    return out, kept


def serialize(state_dict: StateDict, *, dtype: torch.dtype | None = None) -> bytes:
    """safetensors bytes of ``state_dict``, floating tensors cast to ``dtype`` if given
    (see :func:`cast_floating`; the blob's dtype list shows any mix)."""
    state = {key: value.detach().to("cpu") for key, value in state_dict.items()}
    if dtype is not None:
        state = cast_floating(state, dtype)[0]
    return st_save({key: value.contiguous() for key, value in state.items()}, metadata={"format": "pt"})


def deserialize(data: bytes) -> dict[str, torch.Tensor]:
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise IntegrityError(f"stored weights are not readable safetensors: {exc}") from None


def verify(data: bytes, expected_sha256: str, expected_size: int | None = None, *, what: str = "blob") -> None:
    """Refuse bytes that are truncated or do not hash to ``expected_sha256``."""
    if expected_size is not None and len(data) != expected_size:
        raise IntegrityError(
            f"{what} {expected_sha256[:12]} is {len(data)} bytes, expected {expected_size}: truncated or damaged; "
            "nothing was loaded (pull it again from a good registry)"
        )
    actual = sha256(data)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{what} sha256 mismatch: stored {expected_sha256}, bytes hash to {actual}; nothing was loaded "
            "(pull it again from a good registry)"
        )


def model_from_state_dict(spec: ArchSpec, state_dict: StateDict) -> ReszooNet:
    """A float32 model in eval mode holding exactly ``state_dict``.

    Built on the meta device and filled with ``assign=True``: no random
    initialisation is computed only to be overwritten.
    """
    model = build(spec, device="meta")
    check_fits(state_dict, spec, model)
    tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in state_dict.items()}
    model.load_state_dict(tensors, strict=True, assign=True)
    return model.eval()


def read_weights_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file; pickle files are refused unopened."""
    path = Path(path)
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise WeightsError(f"{path} looks like a pickle checkpoint; reszoo reads safetensors only: {_CONVERT_HINT}")
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            data = head + handle.read()
    except FileNotFoundError:
        raise WeightsError(f"weights file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {str(path)!r}: {exc.strerror or exc}") from None
    # Pickle protocol 2+ starts with 0x80; torch.save's zip archives with "PK".
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise WeightsError(f"{path} is a pickle/torch.save file; reszoo reads safetensors only: {_CONVERT_HINT}")
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path} is not a valid safetensors file: {exc}") from None
