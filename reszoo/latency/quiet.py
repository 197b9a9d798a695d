"""Timing on a quiet machine while other processes train beside it.

A search runs several workers on one machine (one per core on a CPU). A
worker that times a net while another trains measures the other's load as
much as its own net: on this 2-core CPU a resnet20 row read 10.8 ms with
p90 60 ms under load, about 2 ms quiet. So training and timing share a lock
between the processes of one machine:

- a training step takes it shared (steps of several workers run at once);
- a measurement takes it exclusive: it waits for the steps in flight (tens of
  milliseconds) and holds new ones back until it is done (about a second).

flock has no writer preference, so a measurement first takes an intent lock
that steps must pass through: a stream of short steps cannot starve it.
On a system without ``fcntl`` the lock does nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; timings there are as quiet as the machine is
    fcntl = None  # type: ignore[assignment]


def default_lock_path() -> Path:
    """One lock per user and machine: every reszoo process of this user takes part."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"reszoo-quiet-{uid}"


class QuietLock:
    """The lock between training steps (shared) and latency measurements (exclusive).

    Args:
        path: Base name of the two lock files (default: one per user in the
            temporary folder). Processes that share a path share the lock.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_lock_path()
        self._files: tuple[int, int] | None = None  # opened on first use, in the process that uses them
        self._pid = 0
        self._held: str | None = None  # "step" or "measuring": flock does not nest on one descriptor

    def __getstate__(self) -> dict[str, object]:
        return {"path": self.path}  # descriptors stay with their process

    def __setstate__(self, state: dict[str, Any]) -> None:
        QuietLock.__init__(self, state["path"])

    def _open(self, use: str) -> tuple[int, int]:
        if self._held is not None:
            # A measurement inside a step (or the reverse) would wait for itself, and an
            # inner unlock would drop the outer lock: refuse instead.
            raise RuntimeError(f"QuietLock: {use} inside {self._held} in one process")
        if self._files is None or self._pid != os.getpid():
            if self._files is not None:  # a forked child's copies: the parent keeps its own
                for fd in self._files:
                    os.close(fd)
            nofollow = getattr(os, "O_NOFOLLOW", 0)  # a shared temporary folder: never follow a planted link
            gate, intent = (
                os.open(f"{self.path}.{name}", os.O_RDWR | os.O_CREAT | nofollow, 0o600) for name in ("gate", "intent")
            )
            self._files = (gate, intent)
            self._pid = os.getpid()
        return self._files

    def close(self, _getpid: Callable[[], int] = os.getpid, _close: Callable[[int], None] = os.close) -> None:
        """Close the lock files (reopened on next use)."""
        # os's functions are bound as defaults: __del__ may run at interpreter exit, after
        # the module's globals are gone.
        if self._files is not None and self._pid == _getpid():
            for fd in self._files:
                _close(fd)
        self._files = None

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Hold every training step of this machine's reszoo processes until the block ends."""
        if fcntl is None:
            yield
            return
        gate, intent = self._open("measuring")
        fcntl.flock(intent, fcntl.LOCK_EX)
        try:
            fcntl.flock(gate, fcntl.LOCK_EX)
            self._held = "measuring"
            try:
                yield
            finally:
                self._held = None
                fcntl.flock(gate, fcntl.LOCK_UN)
        finally:
            fcntl.flock(intent, fcntl.LOCK_UN)

    @contextmanager
    def step(self) -> Iterator[None]:
        """One training step: runs beside other steps, never beside a measurement."""
        if fcntl is None:
            yield
            return
        gate, intent = self._open("step")
        fcntl.flock(intent, fcntl.LOCK_SH)  # waits while a measurement is waiting or running
        try:
            fcntl.flock(gate, fcntl.LOCK_SH)
        finally:
            fcntl.flock(intent, fcntl.LOCK_UN)
        self._held = "step"
        try:
            yield
        finally:
            self._held = None
            fcntl.flock(gate, fcntl.LOCK_UN)
