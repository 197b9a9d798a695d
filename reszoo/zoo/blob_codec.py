"""How a weights blob is stored: its safetensors bytes as they are, or compressed.

Trained weights compress poorly byte by byte (zlib saves about 8% on float16
weights), but the high bytes of neighbouring values (sign and exponent) are
alike: grouping each value's bytes by position first (the byte shuffle of HDF5
and Blosc) lets zlib save about twice that. The shuffle is by the width of the
blob's commonest dtype; the safetensors header stays as it is in front.

A blob's sha256 and size are always those of its safetensors bytes, so the
encoding is a storage detail: decoded bytes are verified as raw ones are, and
two registries holding one blob differently still agree on it.
"""

from __future__ import annotations

import struct
import zlib

from reszoo.errors import IntegrityError

#: The encodings a blob may be stored in: "" (the safetensors bytes as they are), "zlib",
#: or "shuffleN+zlib" (bytes grouped by position within N-byte values, then zlib).
RAW = ""

#: zlib's level: 6 (its default) compresses these blobs within 0.1% of 9, in half the time.
ZLIB_LEVEL = 6

_WIDTH = {"float16": 2, "bfloat16": 2, "float32": 4, "int32": 4, "float64": 8, "int64": 8}


def _header_end(data: bytes) -> int:
    """Where a safetensors file's tensor bytes start (its 8-byte length, then the JSON header)."""
    if len(data) < 8:
        return len(data)
    return min(len(data), 8 + struct.unpack("<Q", data[:8])[0])


def _width(dtypes: str) -> int:
    """The byte width of the commonest dtype in ``dtypes`` (``"float16:97,int64:19"``), 1 if unknown."""
    counts: dict[str, int] = {}
    for part in dtypes.split(","):
        name, _, n = part.partition(":")
        counts[name.strip()] = counts.get(name.strip(), 0) + (int(n) if n.strip().isdigit() else 0)
    commonest = max(counts, key=lambda name: counts[name], default="")
    return _WIDTH.get(commonest, 1)


def _shuffle(payload: bytes, width: int) -> bytes:
    whole = len(payload) - len(payload) % width
    return b"".join(payload[i:whole:width] for i in range(width)) + payload[whole:]


def _unshuffle(payload: bytes, width: int) -> bytes:
    whole = len(payload) - len(payload) % width
    n = whole // width
    out = bytearray(whole)
    for i in range(width):
        out[i::width] = payload[i * n : (i + 1) * n]
    return bytes(out) + payload[whole:]


def encode(data: bytes, dtypes: str) -> tuple[bytes, str]:
    """``data`` (safetensors bytes) as stored, and the encoding's name: compressed when that
    saves anything, else as they are."""
    width = _width(dtypes)
    start = _header_end(data)
    if width > 1:
        packed, name = data[:start] + _shuffle(data[start:], width), f"shuffle{width}+zlib"
    else:
        packed, name = data, "zlib"
    stored = zlib.compress(packed, ZLIB_LEVEL)
    return (stored, name) if len(stored) < len(data) else (data, RAW)


def decode(stored: bytes, encoding: str, *, what: str = "weights") -> bytes:
    """The safetensors bytes of a blob stored as ``encoding`` (verify them against the sha256)."""
    if encoding == RAW:
        return stored
    try:
        packed = zlib.decompress(stored)
    except zlib.error as exc:
        raise IntegrityError(
            f"{what} are truncated or damaged: stored compressed ({encoding}), they do not decompress ({exc}); "
            "nothing was read from them"
        ) from None
    if encoding == "zlib":
        return packed
    if encoding.startswith("shuffle") and encoding.endswith("+zlib") and encoding[7:-5].isdigit():
        width = int(encoding[7:-5])
        start = _header_end(packed)
        return packed[:start] + _unshuffle(packed[start:], width)
    raise IntegrityError(f"{what} is stored in an encoding this reszoo does not know ({encoding!r}); upgrade reszoo")
