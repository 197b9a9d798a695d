"""A search's worker processes: how many may start, that none outlives the search, and Ctrl-C.

Light on purpose (no torch, no Optuna): a spawned worker imports it before
anything else, so it starts watching its parent at once.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from reszoo.search.api import SearchResult

#: Seconds a worker whose parent died waits, after interrupting itself, before it exits regardless.
ORPHAN_GRACE_S = 30.0

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a search. ``study``: the study so far (None if it was not open yet); the
    trials the interrupt stopped are failed. ``result``: what reszoo.search found so far, when it
    was the caller."""

    def __init__(self, study: optuna.Study | None = None) -> None:
        super().__init__("search interrupted")
        self.study = study
        self.result: SearchResult | None = None


def bound_workers(requested: int, trials: int | None, cores: int) -> tuple[int, str | None]:
    """The workers to run: ``requested``, at most one per usable core and one per trial to run
    (a process per worker; each loads the data set). Returns them and, when fewer, why in one line."""
    bound = cores if trials is None else min(cores, trials)
    if requested <= bound:
        return requested, None
    why = [f"{cores} usable core{'s' if cores != 1 else ''}"]
    if trials is not None and trials < cores:
        why.append(f"{trials} trial{'s' if trials != 1 else ''} to run")
    return bound, (
        f"workers {requested:,}: this machine gives reszoo {' and '.join(why)}; running {bound} "
        f"worker{'s' if bound != 1 else ''}"
    )


def start_worker(target: Callable[..., Any], args: tuple[Any, ...], name: str) -> BaseProcess:
    """Start ``target(*args)`` in a spawned process that is interrupted (as by Ctrl-C) when this
    process dies, however it dies (SIGKILL included), and exits if it does not stop by itself."""
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads and DB handles
    process = context.Process(target=_guarded, args=(os.getpid(), target, args), name=name)
    process.start()
    return process


def _guarded(parent: int, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    # A process started in the background by a shell may inherit SIGINT ignored: Ctrl-C and the
    # parent's death must still reach this one.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    die_with_parent(parent)
    target(*args)


def die_with_parent(parent: int) -> None:
    """Interrupt this process (SIGINT: a running trial is failed cleanly) when ``parent`` dies,
    and end it ``ORPHAN_GRACE_S`` later if it has not ended."""
    kernel = False
    if sys.platform.startswith("linux"):
        try:  # the kernel signals at once; the watch below then only ends a worker that did not stop
            kernel = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0) == 0
        except (OSError, AttributeError):
            pass
        if kernel and os.getppid() != parent:  # it died before the kernel was asked
            os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=_watch, args=(parent, not kernel), name="reszoo-parent-watch", daemon=True).start()


def _watch(parent: int, interrupt: bool) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    if interrupt:
        os.kill(os.getpid(), signal.SIGINT)
    time.sleep(ORPHAN_GRACE_S)
    os._exit(130)
