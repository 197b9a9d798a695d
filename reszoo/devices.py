"""Devices: what ``cpu``, ``cuda``, ``cuda:N`` and ``auto`` mean here, and the
precise names latency and training are recorded under (the GPU's name, or the
CPU model with the thread count torch uses).
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Sequence

import torch

from reszoo.errors import DeviceError, InputError
from reszoo.limits import usable_cores  # noqa: F401  (imported from here by release and search)


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return devices


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (the first GPU if there is one, else the CPU), ``cpu``, ``cuda`` or
    ``cuda:i`` as a device that is really there."""
    if name == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise DeviceError(f"{name!r} is not a device name; available here: {', '.join(available_devices())}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} is not available: this machine has no CUDA GPU; available: cpu")
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} is not there; available: {', '.join(available_devices())}")
        return torch.device("cuda", index)
    if device.type != "cpu":
        raise DeviceError(f"device type {device.type!r} is not supported; available: {', '.join(available_devices())}")
    return device


def model_device(name: str | torch.device) -> torch.device:
    """Where a net may be built or moved: ``meta`` (shapes only, no memory) or,
    as :func:`resolve_device` says, a device that is really here."""
    if name != "auto":
        try:
            if torch.device(name).type == "meta":
                return torch.device("meta")
        except (RuntimeError, TypeError):
            raise DeviceError(
                f"{name!r} is not a device name; use 'cpu', 'cuda', 'cuda:N' or 'meta' (available "
                f"here: {', '.join(available_devices())})"
            ) from None
    return resolve_device(str(name))


@functools.cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_label(device: torch.device | str) -> str:
    """The precise name latency rows are stored under: the GPU's name, or the
    CPU model and the thread count torch uses (latency depends on both)."""
    device = resolve_device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"cpu {_cpu_model()} ({threads} thread{'s' if threads > 1 else ''})"


def device_key(name: str, stored: Sequence[str] = ()) -> str:
    """A device as a user names it to the label its latency is stored under.

    ``cpu``/``cuda:0`` present here become this machine's label; a stored label
    is itself; else a case-insensitive part of exactly one ``stored`` label
    (``--device h100`` for "NVIDIA H100 80GB HBM3", measured elsewhere).
    Any other text is returned as it is (it then matches no row).
    """
    if name in stored:
        return name
    try:
        torch.device(name)
        return device_label(name)
    except (RuntimeError, TypeError, DeviceError):
        pass  # not a device name, or not a device of this machine
    matches = [label for label in stored if name.lower() in label.lower()]
    if len(matches) > 1:
        raise InputError(
            f"device {name!r} matches several stored devices: {', '.join(map(repr, matches))}; give more of the name",
            field="device",
            value=name,
        )
    if not matches and stored:
        raise InputError(
            f"no latency stored for device {name!r}; stored devices: {', '.join(map(repr, stored))}",
            field="device",
            value=name,
        )
    return matches[0] if matches else name
