"""Studies: where trials are stored, how workers share them, what came out.

A study is an Optuna study plus the settings it was started with (data set,
space, proxy, latency target, mode), kept as a study attribute so a resumed
or joined study refuses other settings instead of mixing incomparable trials.

Storage: ``memory`` (one process), a journal file (several processes on one
machine: appends under a file lock, no "database is locked"), or an RDB URL
(PostgreSQL: workers on many machines). Studies must live in another
database than a reszoo registry: both keep their schema version in an
``alembic_version`` table.

(About 500 lines: storage, opening and resuming, worker processes and the
trained-trial budget all act on one study's life and share its settings.)
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from reszoo.errors import InputError, MeasurementError, SearchError, TrainingError
from reszoo.search.objective import LatencyTarget, Objective, Proxy, known_part, proxy_data
from reszoo.search.space import SearchSpace
from reszoo.train.data import Dataset
from reszoo.train.data import load as load_dataset
from reszoo.zoo.registry import Registry
from reszoo.zoo.spec import ArchSpec

MODES = ("constrained", "pareto")


@dataclass(frozen=True)
class SearchConfig:
    """Everything a worker needs to run trials of one study (picklable: workers are spawned)."""

    dataset: str
    space: SearchSpace
    proxy: Proxy
    target: LatencyTarget
    registry: str  # URL of the registry that caches latency (and receives published nets)
    study: str
    storage: str = "memory"
    mode: str = "constrained"
    seed: int | None = 0
    data_root: str | None = None
    startup_trials: int = 10  # random trials before TPE models the space
    sampler: str = "tpe"  # or "random": the baseline of benchmarks/search_quality.py
    screen: bool = True  # drop draws the latency predictor puts over the limit (search/sampling.py)
    prefer: bool = True  # of the screen's passing draws, hand on the one the score's known part ranks highest

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}", field="mode")
        if self.sampler not in ("tpe", "random"):
            raise InputError(f"sampler must be 'tpe' or 'random', got {self.sampler!r}", field="sampler")
        if self.mode == "constrained" and self.target.max_ms is None:
            raise InputError("constrained mode needs a latency limit (--max-latency-ms)", field="max_latency_ms")

    def settings(self) -> dict[str, Any]:
        """What trials of one study must share to be comparable."""
        proxy = dataclasses.asdict(self.proxy)
        proxy["recipe"] = self.proxy.recipe.to_dict()
        if proxy["precision"] is None:
            del proxy["precision"]  # the device's default, as before the field existed: older studies resume
        if proxy["score"] == "top1":
            del proxy["score"]  # how studies were scored before the field existed: they resume with --proxy-score top1
        target = dataclasses.asdict(self.target)
        # How latency is found, not what it means (limit_from: a resumed study keeps its limit in max_ms).
        del target["predict"], target["predict_margin"], target["limit_from"]
        return {"dataset": self.dataset, "mode": self.mode, "space": self.space.to_dict(), "proxy": proxy,
                "target": target}


# ------------------------------------------------------------------ storage


def default_storage() -> str:
    from reszoo.zoo.hub import home

    return f"journal:{home() / 'search' / 'studies.log'}"


def journal_path(url: str) -> Path | None:
    """The journal file a storage URL names, ``None`` for memory and databases;
    refuses anything else before any work starts."""
    if url == "memory" or ("://" in url and not url.startswith("journal:")):
        return None
    path = None
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:")).expanduser()
    elif url.endswith((".log", ".journal")):
        path = Path(url).expanduser()
    if path is not None:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise InputError(f"storage {url!r} lies under {str(blocker)!r}, which is a file, not a folder; give a "
                            "journal path in a folder", field="storage", value=url)
        if path.is_dir():
            raise InputError(f"storage {url!r} is a folder; give a journal file such as journal:{path / 'studies.log'}",
                            field="storage", value=url)
        return path
    raise InputError(
        f"storage {url!r} is not 'memory', 'journal:PATH', a .log/.journal file or a database URL "
        "(postgresql+psycopg://user@host/db)", field="storage", value=url,
    )


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """``memory``, ``journal:PATH`` (or a path ending .log/.journal), or an SQLAlchemy URL."""
    path = journal_path(url)
    if url == "memory":
        return optuna.storages.InMemoryStorage()
    if path is not None:
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path.parent.mkdir(parents=True, exist_ok=True)
        # The open-lock works on file systems without symlinks too (NFS among them).
        lock = JournalFileOpenLock(str(path))
        try:
            if path.is_file():
                lock.acquire()  # the lock every append holds: no worker is mid-write while we look
                try:
                    repair_journal(path)
                finally:
                    lock.release()
            return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
        except OSError as exc:  # a read-only folder (no lock file), a journal that cannot be read or repaired
            raise SearchError(f"cannot use study journal {path}: {exc.strerror or exc}; give a --storage "
                              "in a folder you can write to") from None
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}  # wait for a writer rather than fail at once
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # A heartbeat lets a restarted study fail the trials of workers that died.
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=30,
                                              grace_period=120)
    except Exception as exc:  # SQLAlchemy raises many kinds (driver missing, refused, auth)
        raise SearchError(f"cannot open study storage {redact(url)}: {exc}") from None


def repair_journal(path: Path) -> str | None:
    """Check a study journal line by line before Optuna reads it.

    A process killed mid-append leaves a last line cut short (or stray bytes):
    that tail is moved to ``PATH.damaged-N`` and the journal truncated to its
    last whole entry, so the study reopens with every trial that was written
    (a message says so). A damaged line with good lines after it cannot be
    dropped safely (later entries may refer to it): that is refused, naming the
    line and how to repair the file by hand. Returns the repair made, if any.
    """
    good_end, bad_line, number = 0, None, 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if bad_line is not None:
                raise SearchError(
                    f"study journal {path} is damaged at line {bad_line} (not a whole JSON entry), and "
                    f"{number - bad_line} or more lines follow it, so it cannot be cut off safely. Keep a copy, then "
                    f"remove that line (sed -i '{bad_line}d' {path}) and try again; the trials it recorded may be lost"
                )
            try:
                whole = line.endswith(b"\n") and isinstance(json.loads(line), dict)
            except ValueError:  # JSONDecodeError, and UnicodeDecodeError for stray bytes
                whole = False
            if whole:
                good_end += len(line)
            else:
                bad_line = number
    if bad_line is None:
        return None
    size = path.stat().st_size
    kept = path.with_name(f"{path.name}.damaged-{int(time.time())}")
    with path.open("rb") as handle:
        handle.seek(good_end)
        kept.write_bytes(handle.read())
    with path.open("r+b") as handle:
        handle.truncate(good_end)
    message = (f"study journal {path}: its last line (line {bad_line}, {size - good_end} bytes) was cut short, as a "
               f"crash mid-write leaves it; removed it (kept in {kept}) and reopened the {bad_line - 1} whole entries")
    warnings.warn(message, RuntimeWarning, stacklevel=2)
    return message


def redact(url: str) -> str:
    """A storage URL fit to print and to keep in lineage: no password."""
    if "://" not in url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: show the scheme only
        return url.split("://", 1)[0] + "://..."


def check_apart(storage: str, registry: str) -> None:
    def norm(url: str) -> str:
        return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url

    if "://" in storage and norm(storage) == norm(registry):
        raise InputError(
            f"study storage {redact(storage)} is the registry's database; both keep a schema version in "
            "'alembic_version', so give the study its own database (another SQLite file, or another PostgreSQL "
            "database or schema)", field="storage",
        )


# -------------------------------------------------------------------- study


def sampler_for(config: SearchConfig, worker: int = 0,
                predict: Callable[[ArchSpec], float] | None = None) -> optuna.samplers.BaseSampler:
    """The study's sampler; with ``predict`` (and a limit, and ``config.screen``) its
    draws are screened by predicted latency first (:class:`ScreenedSampler`)."""
    seed = None if config.seed is None else config.seed + worker  # workers must not draw the same trials
    if config.sampler == "random":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Multivariate TPE models the depths and widths jointly; group splits it
            # by family, whose shortcut parameters differ.
            sampler = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=config.startup_trials,
                multivariate=True, group=True,
            )
    if config.screen and predict is not None and config.target.max_ms is not None and config.target.predict:
        from reszoo.search.sampling import ScreenedSampler

        sampler = ScreenedSampler(sampler, config.space, predict, config.target.max_ms, seed=seed,
                                  prefer=known_score(config))
    return sampler


def known_score(config: SearchConfig) -> Callable[[ArchSpec], float] | None:
    """The part of the trials' score known before training, where there is one worth
    preferring: the default score's size term, in a single-score search (a Pareto
    search wants the fast end as well as the large one)."""
    if not config.prefer or config.mode == "pareto" or config.proxy.score != "train-loss+params":
        return None
    from reszoo.zoo.counting import count

    return lambda spec: known_part(config.proxy.score, count(spec).params)


def pruner_for(config: SearchConfig) -> optuna.pruners.BasePruner:
    if config.mode == "pareto":
        return optuna.pruners.NopPruner()
    # Stop a proxy run whose score after an epoch (its training loss and size, its loss
    # alone, or its validation top-1) is below the median of earlier trials at that epoch (never at the last:
    # see Objective.score).
    return optuna.pruners.MedianPruner(n_startup_trials=0)  # Objective.score waits for PRUNE_AFTER trained trials


def open_study(config: SearchConfig, storage: optuna.storages.BaseStorage, worker: int = 0,
               create: bool = False, predict: Callable[[ArchSpec], float] | None = None) -> optuna.Study:
    """The study ``config`` names: created (``create``) or resumed; refuses other settings.
    ``predict``: the objective's latency predictor, which screens the sampler's draws."""
    directions = ["maximize", "minimize"] if config.mode == "pareto" else ["maximize"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if create:
            study = optuna.create_study(
                study_name=config.study, storage=storage, sampler=sampler_for(config, worker, predict),
                pruner=pruner_for(config), directions=directions, load_if_exists=True,
            )
        else:
            study = optuna.load_study(study_name=config.study, storage=storage, sampler=sampler_for(config, worker, predict),
                                      pruner=pruner_for(config))
    if study.trials:
        # A resumed or joined study: a sampler seeded as at the start would draw
        # the start's nets again (and its twin on another machine the same ones).
        study.sampler = sampler_for(config, worker + len(study.trials), predict)
    stored = study.user_attrs.get("reszoo")
    if stored is None:
        if study.trials:
            raise SearchError(f"study {config.study!r} was not started by reszoo search; choose another --study name")
        study.set_user_attr("reszoo", config.settings())
    elif stored != (settings := config.settings()):
        differences = _differences(stored, settings)
        differ = sorted({path.split(".")[0] for path, _, _ in differences})
        values = "; ".join(f"{path}: {then!r} then, {now!r} now" for path, then, now in differences[:4])
        raise SearchError(
            f"study {config.study!r} was started with other {', '.join(differ)} settings ({values}): its trials "
            f"would not compare with new ones. Use the same options to resume it, or another --study name"
        )
    return study


def _differences(then: Any, now: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """The leaves where two settings differ, as (dotted path, then, now): the value a study
    started with is named (a default changed since, an option given then), so the user knows
    which option to give."""
    if isinstance(then, dict) and isinstance(now, dict):
        return [found for key in sorted(then.keys() | now.keys())
                for found in _differences(then.get(key), now.get(key), f"{path}.{key}" if path else key)]
    return [] if then == now else [(path, then, now)]


def stored_settings(storage: str, study: str) -> dict[str, Any] | None:
    """The settings a study in ``storage`` was started with, ``None`` if there is no such study."""
    if storage == "memory":
        return None
    try:
        summaries = optuna.get_all_study_summaries(open_storage(storage), include_best_trial=False)
    except Exception as exc:  # an unreachable database: the run below reports it properly
        raise SearchError(f"cannot read studies in {redact(storage)}: {exc}") from None
    for summary in summaries:
        if summary.study_name == study:
            return summary.user_attrs.get("reszoo")
    return None


def fail_orphaned_trials(study: optuna.Study) -> int:
    """Mark RUNNING trials whose worker process on this machine is gone as FAIL.

    A journal file has no heartbeat, so a killed worker's trial would stay
    RUNNING forever; each trial records its worker (host, pid) to tell.
    """
    host, failed = socket.gethostname(), 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if not worker or worker.get("host") != host or _alive(worker.get("pid", -1)):
            continue
        # Optuna has no public call to end another process's trial; the storage API does it.
        storage = study._storage
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", "its worker process died")
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        failed += 1
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Worker:
    """Wraps the objective to record which process runs each trial."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.who = {"host": socket.gethostname(), "pid": os.getpid()}

    def __call__(self, trial: optuna.Trial):
        trial.set_user_attr("worker", self.who)
        return self.objective(trial)


def make_objective(config: SearchConfig, dataset: Dataset | None = None) -> Objective:
    """The trial objective of ``config``; ``dataset``: the loaded ``config.dataset``, if the caller has it."""
    dataset = dataset or load_dataset(config.dataset, root=config.data_root)
    data = proxy_data(dataset, config.proxy.train_images, config.proxy.val_images, config.proxy.seed)
    from reszoo.latency.quiet import QuietLock

    return Objective(config.space, data, config.proxy, config.target, Registry(config.registry),
                     pareto=config.mode == "pareto", quiet=QuietLock())


#: Draws over the limit (never trained, so cheap) allowed per trained trial before a run stops.
MAX_DRAWS_PER_TRAINED = 50


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
        if (trial.user_attrs.get("worker") or {}).get("pid") != self.pid:
            return  # another worker's trial counts against that worker's share
        self.draws += 1
        self.trained += trial.user_attrs.get("feasible") is True
        if self.trained >= self.budget or self.draws >= MAX_DRAWS_PER_TRAINED * self.budget:
            study.stop()


def _optimize(study: optuna.Study, objective: Objective, trials: int | None, timeout: float | None,
              callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] | None = None) -> None:
    """Run trials until ``trials`` were trained here (see TrainedBudget) or ``timeout`` seconds."""
    callbacks = list(callbacks or [])
    if trials is not None:
        if trials < 1:
            return
        callbacks.append(TrainedBudget(trials))
    # A diverging or unmeasurable net fails its trial, not the search.
    study.optimize(_Worker(objective), n_trials=None, timeout=timeout, callbacks=callbacks,
                   catch=(TrainingError, MeasurementError))


def check_reachable(objective: Objective) -> None:
    """Refuse at once a limit no net of the space can meet: the fastest candidates
    are timed (fewest layers first) before anything is trained."""
    from reszoo.latency.measure import ROUGH_TIMING, measure

    limit, target = objective.target.max_ms, objective.target
    if limit is None:
        return
    # One rough sample round each (a tenth of a second): a net far over the limit needs no
    # careful figure to say no. Only one that comes near it is timed properly (and stored).
    rough = sorted(
        (measure(spec, target.setup, timing=ROUGH_TIMING).median_ms, index, spec)
        for index, spec in enumerate(objective.space.fastest_candidates()[:3])
    )
    ms, _, spec = rough[0]
    for rough_ms, _, candidate in rough:  # every candidate a rough round puts near the limit, timed properly
        if rough_ms > 2 * limit:
            break
        careful = objective.latency_ms(candidate, measure=True)[0]
        if careful <= limit:
            return
        ms, spec = min((ms, spec), (careful, candidate), key=lambda pair: pair[0])
    raise SearchError(
        f"no net of this space can meet the limit: its fastest, {spec.summary()}, takes {ms:.3g} ms on "
        f"{objective.target.device} (batch {objective.target.batch_size}, {objective.target.runtime}), over the "
        f"limit of {limit:.3g} ms. Raise --max-latency-ms, or allow smaller nets (--depth, --widths)"
    )


def run_worker(config: SearchConfig, worker: int, trials: int | None, timeout: float | None) -> None:
    """Run ``trials`` trials (or until ``timeout`` seconds) of the study in this process."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # reszoo reports progress itself
    objective = make_objective(config)
    study = open_study(config, open_storage(config.storage), worker, predict=objective.predicted_ms)
    _optimize(study, objective, trials, timeout)


def _worker_main(config: SearchConfig, worker: int, workers: int, trials: int | None, timeout: float | None) -> None:
    import torch

    if config.proxy.device == "cpu":  # share the cores instead of oversubscribing them
        from reszoo.devices import usable_cores

        torch.set_num_threads(max(1, usable_cores() // workers))
    run_worker(config, worker, trials, timeout)


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
    """Run a search: ``trials`` more trials of ``config.study`` on ``workers`` processes.

    One worker runs in this process; more are spawned processes sharing the
    study's storage (a journal file or an RDB, not ``memory``). A new study's
    first trials are the nets of ``start_from`` the space can draw (the
    reference presets): the best it reports is then never worse than they are.
    ``objective``: this process's, if the caller built it (else built from ``config``); with
    several workers it only checks the limit and the start, and each spawned worker builds its own.
    """
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}", field="workers")
    if workers > 1 and config.storage == "memory":
        raise InputError("several workers share a study through a journal file or a database, not 'memory'; "
                        "give --storage journal:PATH or a database URL", field="storage")
    if trials is None and timeout is None:
        raise InputError("give a number of trials or a timeout, or the search never ends", field="trials")
    check_apart(config.storage, config.registry)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # reszoo reports progress itself
    objective = objective or make_objective(config)
    check_reachable(objective)  # an impossible limit is refused in seconds, before any training
    storage = open_storage(config.storage)
    study = open_study(config, storage, create=True, predict=objective.predicted_ms)
    fail_orphaned_trials(study)
    if not study.trials:
        limit = config.target.max_ms
        for spec in start_from:
            params = config.space.params_for(spec)
            # The search starts from the nets it must beat, where they meet the limit.
            if params is not None and (limit is None or objective.latency_ms(spec)[0] <= limit):
                study.enqueue_trial(params, skip_if_exists=True)
    if on_progress is not None:
        on_progress(study)  # before the first trial: the caller learns how many there were
    if workers == 1:
        callbacks = [lambda study, _trial: on_progress(study)] if on_progress else None
        # In this process: an in-memory study works, and the progress callback sees every trial.
        _optimize(study, objective, trials, timeout, callbacks)
        return study
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads and DB handles
    processes = [
        context.Process(target=_worker_main, args=(config, index, workers, count, timeout), name=f"reszoo-search-{index}")
        for index, count in enumerate(split_trials(trials, workers))
    ]
    for process in processes:
        process.start()
    try:
        while any(p.is_alive() for p in processes):
            if on_progress is not None:
                on_progress(study)
            time.sleep(1.0)
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()
        raise
    finally:
        for process in processes:
            process.join()
    if on_progress is not None:
        on_progress(study)
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise SearchError(f"search worker(s) {', '.join(failed)} stopped with an error (see above); the trials "
                          f"they finished are kept in {redact(config.storage)}")
    return study


#: Data sets ``reszoo search`` looks for when none is named, in this order.
LOCAL_DATASETS = ("fashion-mnist", "cifar10")


def local_dataset(root: str | None = None) -> str:
    """The path of the first known data set found on this machine, or an error saying how to get one.

    Looks where ``--dataset NAME`` looks (``root``, ``$RESZOO_DATA``,
    /usr/share/datasets), then where ``reszoo train --download`` and
    torchvision's examples put CIFAR-10 (``$RESZOO_HOME/data/torchvision``, ./data).
    """
    from reszoo.errors import DatasetError
    from reszoo.train.data import data_roots, find
    from reszoo.zoo.hub import home

    roots: list[str | None] = [root, str(home() / "data" / "torchvision"), "data"]
    for name in LOCAL_DATASETS:
        for base in roots:
            try:
                return str(find(name, base))
            except DatasetError:
                continue
    looked = ", ".join(str(r) for r in [*data_roots(root), *roots[1:]])
    raise DatasetError(
        f"no data set found in {looked}. Get one: `sudo apt install dataset-fashion-mnist` (Debian/Ubuntu, installs "
        "/usr/share/datasets/fashion-mnist), or `reszoo train resnet20 --dataset cifar10 --download --epochs 1` "
        "(fetches CIFAR-10 with torchvision), or pass --dataset PATH (an image-folder tree or .tar.gz of one, "
        "idx files, torchvision's CIFAR folders), or point --data-root / RESZOO_DATA at a folder holding one"
    )
