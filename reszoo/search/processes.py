"""A search's worker processes: how many may start, that none outlives the search, and Ctrl-C.

Light on purpose (no torch, no Optuna): a spawned worker imports it before
anything else, so it starts watching its parent at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from reszoo.processes import die_with_parent

if TYPE_CHECKING:
    import optuna

    from reszoo.search.api import SearchResult


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
