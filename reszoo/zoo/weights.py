"""Weights as safetensors bytes: serialise, hash, check against a spec, load.

Never pickle: a pickle file can run code when it is loaded, so reszoo refuses
``.pt``/``.pth`` files without opening them with ``torch.load``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

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
    'convert it once where you trust the file: python -c "import torch; from safetensors.torch import save_file; '
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
    """The tensors of a model or a state_dict; anything else (None, a path given
    as weights, a dict of numbers, a shape-only meta-device net) is a WeightsError."""
    if isinstance(weights, nn.Module):
        weights = weights.state_dict()
    if not isinstance(weights, Mapping):
        raise WeightsError(
            f"weights must be a model or a state_dict (a dict of tensors), got {type(weights).__name__}"
            + ("; for a file use import_weights(path, ...)" if isinstance(weights, (str, os.PathLike)) else "")
        )
    bad = [k for k, v in weights.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(
            f"weights must map names to tensors; {', '.join(map(str, bad[:5]))} "
            f"{'is' if len(bad) == 1 else 'are'} {type(weights[bad[0]]).__name__}"
        )
    meta = [k for k, v in weights.items() if v.is_meta]
    if meta:
        raise WeightsError(
            f"weights {', '.join(meta[:3])} are on the meta device (shapes only, no values); "
            "build the model on a real device or load its weights first"
        )
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
    reference = model.state_dict()
    expected = {k: tuple(v.shape) for k, v in reference.items()}
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [
        f"{k} {tuple(state_dict[k].shape)} (spec wants {expected[k]})"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != expected[k]
    ]
    # A float weight stored as integers (or the reverse) would load as other numbers, or not at all.
    mistyped = [
        f"{k} {str(state_dict[k].dtype).removeprefix('torch.')} (spec wants a "
        f"{'floating' if reference[k].is_floating_point() else 'integer'} dtype)"
        for k in expected
        if k in state_dict
        and isinstance(state_dict[k], torch.Tensor)
        and state_dict[k].is_floating_point() != reference[k].is_floating_point()
    ]
    if missing or unexpected or misshaped or mistyped:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("mis-shaped", misshaped),
            ("mis-typed", mistyped),
        ):
            if keys:
                parts.append(f"{label} ({len(keys)}): " + ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else ""))
        raise WeightsError(f"weights do not fit {spec.summary()} [{spec.short_digest}]: " + "; ".join(parts))


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


#: safetensors' own limit on its JSON header (100 MB).
MAX_HEADER_BYTES = 100_000_000


def _safetensors_size(head: bytes, handle: BinaryIO) -> int | None:
    """The byte size a safetensors file with this start must have, or ``None`` if
    the start is not a safetensors header: 8 bytes of header length, then a JSON
    object whose tensors' offsets say where the data ends. Reads the header only."""
    if len(head) < 8:
        return None
    length = int.from_bytes(head[:8], "little")
    if not 2 <= length <= MAX_HEADER_BYTES:
        return None
    text = handle.read(length)
    if len(text) != length or text[:1] != b"{":
        return None
    try:
        header = json.loads(text)
        ends = [int(info["data_offsets"][1]) for key, info in header.items() if key != "__metadata__"]
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):  # OverflowError: an offset of 1e400
        return None
    return 8 + length + max(ends, default=0)


def read_weights_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file; pickle files are refused unopened.

    The header is parsed first (a safetensors file is recognised by it, never by
    its first byte, which is the low byte of the header length and may be 0x80
    like pickle's), and the file must be exactly as long as the header says:
    a stream, a folder or a file of the wrong size is refused before its data
    is read.
    """
    path = Path(path)
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise WeightsError(f"{path} looks like a pickle checkpoint; reszoo reads safetensors only: {_CONVERT_HINT}")
    try:
        if path.is_dir():
            raise WeightsError(f"{str(path)!r} is a folder; give a .safetensors file")
        if path.exists() and not path.is_file():
            raise WeightsError(f"{str(path)!r} is not a regular file (a device or a pipe); give a .safetensors file")
        with path.open("rb") as handle:
            head = handle.read(8)
            expected = _safetensors_size(head, handle)
            size = os.fstat(handle.fileno()).st_size
            if expected is None:
                # Pickle protocol 2+ starts with 0x80; torch.save's zip archives with "PK".
                if head[:1] == b"\x80" or head[:2] == b"PK":
                    raise WeightsError(
                        f"{path} is a pickle/torch.save file; reszoo reads safetensors only: {_CONVERT_HINT}"
                    )
                raise WeightsError(
                    f"{path} is not a valid safetensors file: it does not start with a safetensors header"
                )
            if size != expected:
                raise WeightsError(
                    f"{path} is {size} bytes but its safetensors header describes {expected}: truncated or damaged"
                )
            handle.seek(0)
            data = handle.read()
    except FileNotFoundError:
        raise WeightsError(f"weights file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path} is not a valid safetensors file: {exc}") from None
