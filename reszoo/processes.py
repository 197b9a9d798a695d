"""Child processes that never outlive the process that started them.

Light on purpose (no torch, no Optuna): a spawned worker can import it before
anything else and start watching its parent at once. The search's workers and
the release's training workers both use it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: Seconds a worker whose parent died waits, after interrupting itself, before it exits regardless.
ORPHAN_GRACE_S = 30.0

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int, signum: int = signal.SIGINT) -> None:
    """Send this process ``signum`` when ``parent`` dies, however it dies (SIGKILL included), and
    end it ``ORPHAN_GRACE_S`` later if it has not ended. ``signum`` is the signal the worker
    already treats as "stop cleanly" (SIGINT for a search trial, SIGTERM for a release worker)."""
    kernel = False
    if sys.platform.startswith("linux"):
        try:  # the kernel signals at once; the watch below then only ends a worker that did not stop
            kernel = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
        except (OSError, AttributeError):
            pass
        if kernel and os.getppid() != parent:  # it died before the kernel was asked
            os.kill(os.getpid(), signum)
    watch = threading.Thread(target=_watch, args=(parent, signum, not kernel), name="reszoo-parent-watch", daemon=True)
    watch.start()


def _watch(parent: int, signum: int, interrupt: bool) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    if interrupt:
        os.kill(os.getpid(), signum)
    time.sleep(ORPHAN_GRACE_S)
    os._exit(130)
