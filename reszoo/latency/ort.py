"""The ``onnxruntime`` latency runtime: a module exported to ONNX (reszoo.export.onnx)
and run by ONNX Runtime's CPU provider, timed like the other runtimes.

A measurement exports the net once and times ``instances`` fresh sessions of it
(each holds its own copy of the weights, as each eager copy does). Exports are
kept for the rest of the process, keyed by the architecture or part they
build, because they cost seconds and the search and the predictor time one net
more than once (a rough timing, then a careful one).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from reszoo.export.onnx import INPUT_NAME, inference_session, onnx_bytes

#: Exports kept for reuse, at most this many bytes in all (oldest dropped first).
CACHE_BYTES = 256 << 20

_exports: OrderedDict[tuple[str, tuple[int, ...]], bytes] = OrderedDict()


def exported(make: Callable[[], nn.Module], input_shape: Sequence[int], key: str | None) -> bytes:
    """The ONNX bytes of ``make()`` for inputs of ``input_shape`` (one example, no batch),
    from the process's cache when ``key`` names the same module built before."""
    if key is None:
        return onnx_bytes(make(), input_shape)
    cache_key = (key, tuple(input_shape))
    data = _exports.get(cache_key)
    if data is None:
        data = onnx_bytes(make(), input_shape)
        _exports[cache_key] = data
        while sum(map(len, _exports.values())) > CACHE_BYTES and len(_exports) > 1:
            _exports.popitem(last=False)
    else:
        _exports.move_to_end(cache_key)
    return data


def session_runner(data: bytes, input_shape: Sequence[int]) -> Callable[[], object]:
    """A zero-argument callable running one forward of ``data`` on a random input of
    ``input_shape`` (batch included), with torch's current CPU thread count."""
    session = inference_session(data, threads=torch.get_num_threads())
    feed = {INPUT_NAME: np.random.default_rng(0).standard_normal(tuple(input_shape), dtype=np.float32)}
    return lambda: session.run(None, feed)
