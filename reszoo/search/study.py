"""Opening a study: its latency judge, sampler, pruner and objective, built from a :class:`SearchConfig`.

A study is created or resumed under the settings it started with
(search/config.py); a resumed or joined one gets a sampler seeded past its
trials, and trials left RUNNING by a worker that died are failed.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable
from typing import Literal

import optuna
from optuna.trial import TrialState

from reszoo.errors import SearchError
from reszoo.latency.judge import LatencyJudge
from reszoo.latency.measure import LatencySetup
from reszoo.search import keys
from reszoo.search.config import SearchConfig, check_same_settings
from reszoo.search.objective import Objective
from reszoo.search.proxy import known_part, proxy_data
from reszoo.train.data import Dataset
from reszoo.train.data import load as load_dataset
from reszoo.zoo.records import LatencyRecord
from reszoo.zoo.registry import Registry
from reszoo.zoo.spec import ArchSpec


def make_judge(config: SearchConfig) -> LatencyJudge:
    """The latency judge of ``config``'s target, timing beside this machine's other workers."""
    from reszoo.latency.quiet import QuietLock

    return LatencyJudge(config.target, Registry(config.registry), quiet=QuietLock())


def reference_limit(reference: ArchSpec, setup: LatencySetup, registry: Registry) -> LatencyRecord:
    """The latency limit ``reference`` sets on ``setup`` (see LatencyJudge.reference_limit)."""
    return LatencyJudge.reference_limit(reference, setup, registry)


def make_objective(
    config: SearchConfig, dataset: Dataset | None = None, judge: LatencyJudge | None = None
) -> Objective:
    """The trial objective of ``config``; ``dataset``: the loaded ``config.dataset``, if the caller has it;
    ``judge``: the latency judge (default :func:`make_judge`'s)."""
    dataset = dataset or load_dataset(config.dataset, root=config.data_root)
    data = proxy_data(dataset, config.proxy.train_images, config.proxy.val_images, config.proxy.seed)
    return Objective(
        config.space,
        data,
        config.proxy,
        judge or make_judge(config),
        pareto=config.mode == "pareto",
        prune=config.pruner != "none",
        # Hyperband's brackets decide when a run may stop; the median pruner waits for enough trials.
        gate_pruning=config.pruner == "median",
    )


def sampler_for(
    config: SearchConfig, worker: int = 0, judge: LatencyJudge | None = None
) -> optuna.samplers.BaseSampler:
    """The study's sampler: TPE (or random); with a ``judge`` (and a limit, and ``config.screen``)
    wrapped to draw distinct nets within the MACs budget that the judge predicts near the limit,
    preferring the larger."""
    seed = None if config.seed is None else config.seed + worker  # workers must not draw the same trials
    if config.sampler == "random":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Multivariate TPE models the depths and widths jointly; group splits it
            # by family, whose shortcut parameters differ.
            sampler = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=config.startup_trials, multivariate=True, group=True
            )
    if not (config.screen and judge is not None and config.target.max_ms is not None and config.target.predict):
        return sampler
    from reszoo.search.preference import SizePreference
    from reszoo.search.sampling import DistinctSampler, DrawSampler, LatencyScreen, TrainingBudget

    distinct: DrawSampler = DistinctSampler(sampler, config.space, seed=seed)
    if config.macs_budget is not None:
        distinct = TrainingBudget(distinct, config.macs_budget)
    screened = LatencyScreen(distinct, judge)
    known = known_score(config)
    if known is None:
        return screened
    return SizePreference(screened, judge, known)


def known_score(config: SearchConfig) -> Callable[[ArchSpec], float] | None:
    """The part of the trials' score known before training, where there is one worth
    preferring: the default score's size term, in a single-score search (a Pareto
    search wants the fast end as well as the large one)."""
    if not config.size_preference or config.mode == "pareto" or config.proxy.score != "train-loss+params":
        return None
    from reszoo.zoo.counting import count

    return lambda spec: known_part(config.proxy.score, count(spec).params)


def pruner_for(config: SearchConfig) -> optuna.pruners.BasePruner:
    """The study's pruner (see PRUNERS); Optuna prunes single-objective studies only."""
    if config.mode == "pareto" or config.pruner == "none":
        return optuna.pruners.NopPruner()
    first = config.min_proxy_epochs
    if config.pruner == "hyperband":
        # Rungs at first, 3 x first, 9 x first ... proxy epochs (reduction factor 3, Optuna's
        # default), up to the proxy's length; the brackets differ in how early they first cut.
        epochs = config.proxy.recipe.epochs
        if not epochs or epochs < 2:
            raise SearchError(
                f"the hyperband pruner stops runs between proxy epochs; give --proxy-epochs of at least 3 "
                f"(got {epochs})"
            )
        return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=epochs, reduction_factor=3)
    # Stop a proxy run whose score after an epoch (from epoch `first` on) is below the median of
    # earlier trials at that epoch (never at the last, and only once PRUNE_AFTER trials were
    # trained to it: see Objective).
    return optuna.pruners.MedianPruner(n_startup_trials=0, n_warmup_steps=first)


def open_study(
    config: SearchConfig,
    storage: optuna.storages.BaseStorage,
    worker: int = 0,
    create: bool = False,
    judge: LatencyJudge | None = None,
) -> optuna.Study:
    """The study ``config`` names: created (``create``) or resumed; refuses other settings.
    ``judge``: the objective's latency judge, which screens the sampler's draws."""
    directions: list[Literal["maximize", "minimize"]] = (
        ["maximize", "minimize"] if config.mode == "pareto" else ["maximize"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if create:
            study = optuna.create_study(
                study_name=config.study,
                storage=storage,
                sampler=sampler_for(config, worker, judge),
                pruner=pruner_for(config),
                directions=directions,
                load_if_exists=True,
            )
        else:
            study = optuna.load_study(
                study_name=config.study,
                storage=storage,
                sampler=sampler_for(config, worker, judge),
                pruner=pruner_for(config),
            )
    if study.trials:
        # A resumed or joined study: a sampler seeded as at the start would draw
        # the start's nets again (and its twin on another machine the same ones).
        study.sampler = sampler_for(config, worker + len(study.trials), judge)
    stored = study.user_attrs.get(keys.SETTINGS)
    if stored is None:
        if study.trials:
            raise SearchError(f"study {config.study!r} was not started by reszoo search; choose another --study name")
        study.set_user_attr(keys.SETTINGS, config.settings())
        if config.target.limit_from is not None:  # so that a resumed study still times nets beside it
            study.set_user_attr(keys.LIMIT_FROM, config.target.limit_from.to_dict())
    else:
        check_same_settings(config.study, stored, config)
    return study


def fail_running_trials(study: optuna.Study, reason: str, pids: set[int] | None = None) -> int:
    """Mark as FAIL the RUNNING trials of this machine's worker processes that are gone (``pids``:
    those processes, gone or not, as after an interrupt). A journal file has no heartbeat, so a
    killed worker's trial would stay RUNNING forever; each trial records its worker (host, pid)."""
    host, failed = socket.gethostname(), 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(keys.WORKER)
        if not worker or worker.get("host") != host:
            continue
        pid = worker.get("pid", -1)
        gone = pid in pids if pids is not None else not _alive(pid)
        if not gone:
            continue
        # Optuna has no public call to end another process's trial; the storage API does it.
        storage = study._storage
        storage.set_trial_user_attr(trial._trial_id, keys.FAIL_REASON, reason)
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
