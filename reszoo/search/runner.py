"""Running a study: the trained-trial budget, worker processes, and interrupts.

One worker runs in this process; more are spawned processes sharing the
study's storage (a journal file or an RDB, not ``memory``), each dying with
this one (search/processes.py). Ctrl-C fails the trials it interrupted (none
stays RUNNING) and raises :class:`SearchInterrupted`, which carries the study.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess

import optuna
from optuna.trial import FrozenTrial

from reszoo.errors import InputError, MeasurementError, SearchError, TrainingError
from reszoo.search import keys
from reszoo.search.config import SearchConfig
from reszoo.search.objective import Objective
from reszoo.search.processes import SearchInterrupted, start_worker
from reszoo.search.storage import check_apart, open_storage, redact
from reszoo.search.study import fail_running_trials, make_objective, open_study
from reszoo.zoo.spec import ArchSpec

#: Draws over the limit (never trained, so cheap) allowed per trained trial before a run stops.
MAX_DRAWS_PER_TRAINED = 50

#: Seconds the workers get to fail their trials after Ctrl-C before they are terminated.
INTERRUPT_GRACE_S = 20.0

#: Why a trial that Ctrl-C stopped failed.
INTERRUPTED = "interrupted (Ctrl-C)"


class TrainedBudget:
    """Stops this process's part of a study after ``trained`` trials that were trained.

    A draw over the latency limit is recorded (infeasible, with its latency)
    but costs no training, so it does not count against ``--trials``; the
    draws are capped at ``MAX_DRAWS_PER_TRAINED`` times the budget, so that a
    space where almost nothing fits still ends.
    """

    def __init__(self, trained: int) -> None:
        self.trained, self.draws, self.budget = 0, 0, trained
        self.pid = os.getpid()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if (trial.user_attrs.get(keys.WORKER) or {}).get("pid") != self.pid:
            return  # another worker's trial counts against that worker's share
        self.draws += 1
        self.trained += trial.user_attrs.get(keys.FEASIBLE) is True
        if self.trained >= self.budget or self.draws >= MAX_DRAWS_PER_TRAINED * self.budget:
            study.stop()


class _RecordingWorker:
    """Wraps the objective to record which process runs each trial, and a trial Ctrl-C stopped."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.who = {"host": socket.gethostname(), "pid": os.getpid()}

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        trial.set_user_attr(keys.WORKER, self.who)
        try:
            return self.objective(trial)
        except KeyboardInterrupt:  # Optuna fails the trial; this says why
            trial.set_user_attr(keys.FAIL_REASON, INTERRUPTED)
            raise


def _optimize(
    study: optuna.Study,
    objective: Objective,
    trials: int | None,
    timeout: float | None,
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
) -> None:
    """Run trials until ``trials`` were trained here (see TrainedBudget) or ``timeout`` seconds."""
    callbacks = list(callbacks or [])
    if trials is not None:
        if trials < 1:
            return
        callbacks.append(TrainedBudget(trials))
    # A diverging or unmeasurable net fails its trial, not the search.
    study.optimize(
        _RecordingWorker(objective),
        n_trials=None,
        timeout=timeout,
        callbacks=callbacks,
        catch=(TrainingError, MeasurementError),
    )


def run_worker(config: SearchConfig, worker: int, trials: int | None, timeout: float | None) -> None:
    """Run ``trials`` trials (or until ``timeout`` seconds) of the study in this process."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # reszoo reports progress itself
    objective = make_objective(config)
    study = open_study(config, open_storage(config.storage), worker, judge=objective.judge)
    _optimize(study, objective, trials, timeout)


def _worker_main(config: SearchConfig, worker: int, workers: int, trials: int | None, timeout: float | None) -> None:
    import torch

    if config.proxy.device == "cpu":  # share the cores instead of oversubscribing them
        from reszoo.devices import usable_cores

        torch.set_num_threads(max(1, usable_cores() // workers))
    try:
        run_worker(config, worker, trials, timeout)
    except KeyboardInterrupt:  # Optuna failed the trial it stopped; the parent reports
        sys.exit(130)


def split_trials(trials: int | None, workers: int) -> list[int | None]:
    """Trials per worker: exactly ``trials`` in all (None: until the timeout)."""
    if trials is None:
        return [None] * workers
    return [trials // workers + (i < trials % workers) for i in range(workers)]


def run(
    config: SearchConfig,
    *,
    trials: int | None,
    workers: int = 1,
    timeout: float | None = None,
    on_progress: Callable[[optuna.Study], None] | None = None,
    start_from: Sequence[ArchSpec] = (),
    objective: Objective | None = None,
) -> optuna.Study:
    """Run a search: ``trials`` more trials of ``config.study`` on ``workers`` processes (at most
    one per trial).

    A new study's first trials are the nets of ``start_from`` the space can draw (the
    reference presets): the best it reports is then never worse than they are.
    ``objective``: this process's, if the caller built it (else built from ``config``); with
    several workers it only checks the limit and the start, and each spawned worker builds its own.
    """
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}", field="workers")
    if trials is not None:
        workers = max(1, min(workers, trials))  # a worker with no trial to run would only load the data
    if workers > 1 and config.storage == "memory":
        raise InputError(
            "several workers share a study through a journal file or a database, not 'memory'; "
            "give --storage journal:PATH or a database URL",
            field="storage",
        )
    if trials is None and timeout is None:
        raise InputError("give a number of trials or a timeout, or the search never ends", field="trials")
    check_apart(config.storage, config.registry)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # reszoo reports progress itself
    objective = objective or make_objective(config)
    judge = objective.judge
    judge.check_reachable(config.space.fastest_candidates())  # an impossible limit is refused in seconds
    study = open_study(config, open_storage(config.storage), create=True, judge=judge)
    fail_running_trials(study, "its worker process died")
    if not study.trials:
        for spec in start_from:
            params = config.space.params_for(spec)
            # The search starts from the nets it must beat, where they meet the limit.
            if params is not None and (config.target.max_ms is None or judge.judge(spec).feasible):
                study.enqueue_trial(params, skip_if_exists=True)
    if on_progress is not None:
        on_progress(study)  # before the first trial: the caller learns how many there were
    if workers == 1:
        callbacks = [lambda study, _trial: on_progress(study)] if on_progress else None
        try:  # in this process: an in-memory study works, and the progress callback sees every trial
            _optimize(study, objective, trials, timeout, callbacks)
        except KeyboardInterrupt:
            fail_running_trials(study, INTERRUPTED, {os.getpid()})  # Optuna's own, if it was mid-write
            raise SearchInterrupted(study) from None
        return study
    _run_workers(study, config, trials, workers, timeout, on_progress)
    return study


def _run_workers(
    study: optuna.Study,
    config: SearchConfig,
    trials: int | None,
    workers: int,
    timeout: float | None,
    on_progress: Callable[[optuna.Study], None] | None,
) -> None:
    processes = [
        start_worker(_worker_main, (config, index, workers, count, timeout), f"reszoo-search-{index}")
        for index, count in enumerate(split_trials(trials, workers))
    ]
    try:
        while any(p.is_alive() for p in processes):
            if on_progress is not None:
                on_progress(study)
            time.sleep(1.0)
    except KeyboardInterrupt:
        _interrupt(processes)
        fail_running_trials(study, INTERRUPTED, {os.getpid(), *(p.pid for p in processes if p.pid is not None)})
        raise SearchInterrupted(study) from None
    finally:
        for process in processes:
            process.join()
    if on_progress is not None:
        on_progress(study)
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise SearchError(
            f"search worker(s) {', '.join(failed)} stopped with an error (see above); the trials "
            f"they finished are kept in {redact(config.storage)}"
        )


def _interrupt(processes: list[BaseProcess]) -> None:
    """Let the workers fail their trials: Ctrl-C at a terminal reached them already; a SIGINT
    sent to this process alone did not. Those still running after the grace are terminated."""
    time.sleep(1.0)
    for process in processes:
        if process.is_alive() and process.pid is not None:  # alive: started, so it has a pid
            os.kill(process.pid, signal.SIGINT)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
