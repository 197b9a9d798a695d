"""A whole search as one call (``reszoo.search(...)``), with the policy the CLI used to hold.

The policy: a data set found locally when none is named; the latency limit
taken from the first reference preset when none is given (a resumed study
keeps the limit it started with); memory storage unless a study is named or
several workers share it; TPE's start-up trials scaled to the budget. The CLI
(``reszoo search``) only parses its options, calls :func:`search` and
renders the :class:`SearchResult`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reszoo.errors import InputError
from reszoo.limits import DEFAULT_MACS_BUDGET
from reszoo.search.processes import SearchInterrupted

if TYPE_CHECKING:
    import optuna

    from reszoo.search.config import SearchConfig
    from reszoo.search.objective import Objective
    from reszoo.search.results import TrialResult
    from reszoo.search.space import SearchSpace
    from reszoo.train.data import Dataset


#: Trained trials of a search given neither ``trials`` nor ``timeout``: the README's
#: first search, which should take a few minutes on a 2-core CPU. At 20 the search
#: ranked by training loss at batch 32 took 209 s on average over five seeds but
#: 269 s at the slowest, past the 4-minute target; at 16 it still beat resnet20 in
#: every seed on the same proxy, and by the default score (loss and size) in 4 of 5,
#: at 195 s on average and 208.5 s at the slowest (benchmarks/README.md).
DEFAULT_TRIALS = 16


@dataclass
class SearchResult:
    """What a search found: the study (Optuna's, to dig further), every trial, the
    best feasible nets (or the front in Pareto mode) and the reference presets."""

    study: optuna.Study
    config: SearchConfig
    dataset: Dataset
    trials: list[TrialResult]
    best: list[TrialResult]
    front: list[TrialResult]
    references: dict[str, dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        """JSON-ready: settings, counts, best, front, hypervolume (of the top-1 front), references, every trial."""
        from reszoo.search.results import hypervolume, pareto_front
        from reszoo.search.storage import redact

        config, limit = self.config, self.config.target.max_ms
        top1_front = pareto_front(self.trials, by="accuracy")  # the hypervolume is of accuracy x ms
        hv_limit = limit if limit is not None else max((r.known_latency_ms for r in top1_front), default=0.0)
        return {
            "study": config.study,
            "storage": redact(config.storage),
            "mode": config.mode,
            "dataset": config.dataset,
            "device": config.target.setup.label(),
            "max_latency_ms": limit,  # with the threads it timed at
            "batch_size": config.target.batch_size,
            "runtime": config.target.runtime,
            "proxy_score": config.proxy.score,
            "trials": len(self.trials),
            "feasible": sum(1 for r in self.trials if r.feasible),
            "complete": sum(1 for r in self.trials if r.state == "COMPLETE"),
            # Trained to the end, stopped early by the pruner, never trained (over the limit).
            "trained": sum(1 for r in self.trials if r.state == "COMPLETE" and r.feasible),
            "pruned": sum(1 for r in self.trials if r.state == "PRUNED"),
            "infeasible": sum(1 for r in self.trials if not r.feasible),
            "screened_draws": sum(r.screened for r in self.trials),
            "repeated_draws": sum(r.repeated for r in self.trials),
            "best": [r.to_dict() for r in self.best],
            "front": [r.to_dict() for r in self.front],
            "hypervolume": hypervolume([(r.known_latency_ms, r.known_accuracy) for r in top1_front], hv_limit),
            "references": self.references,
            "all_trials": [r.to_dict() for r in self.trials],
        }


def search(
    dataset: str | None = None,
    *,
    data_root: str | None = None,
    device: str = "auto",
    max_latency_ms: float | None = None,
    batch_size: int = 1,
    runtime: str = "auto",
    trials: int | None = None,
    timeout: float | None = None,
    mode: str = "constrained",
    study: str | None = None,
    storage: str | None = None,
    workers: int | None = None,
    seed: int = 0,
    space: SearchSpace | None = None,
    proxy_epochs: int = 3,
    proxy_images: int = 3000,
    val_images: int = 1000,
    proxy_batch_size: int = 32,
    proxy_precision: str = "auto",
    proxy_score: str = "train-loss+params",
    pruner: str = "median",
    min_proxy_epochs: int = 1,
    macs_budget: float | None = DEFAULT_MACS_BUDGET,
    threads: int | None = None,
    references: Sequence[str] = ("resnet20",),
    registry: str | None = None,
    on_progress: Callable[[optuna.Study], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> SearchResult:
    """Search the space for the best-scored net under a latency limit (or the front).

    Args:
        dataset: ``fashion-mnist``, ``cifar10``, ``synthetic`` or a path; default the
            first of Fashion-MNIST and CIFAR-10 found here.
        max_latency_ms: The limit; default the first reference preset's latency
            here, measured afresh (:meth:`reszoo.latency.judge.LatencyJudge.reference_limit`;
            a resumed study: the limit it started with).
        trials: Trained trials to run now (default :data:`DEFAULT_TRIALS`, or none with ``timeout``).
        workers: Processes sharing the trials (default: one per core when the proxy
            trains on a CPU, each with one thread; one on a GPU); at most one per usable
            core and one per trial (``log`` says when fewer run). Latency is then timed
            with the other workers held between two training steps.
        study, storage: Name and storage (``memory``, ``journal:PATH``, a database
            URL) of the Optuna study; a named study resumes.
        space: The search space (default :class:`SearchSpace`'s); fitted to the data.
        proxy_precision: ``float32``, ``bfloat16`` (autocast) or ``auto``: bfloat16 where
            it runs natively (a GPU; a CPU with AVX512-BF16 or AMX), else float32.
        proxy_score: What ranks the nets: ``train-loss+params`` (the proxy's last
            epoch's training loss, less :data:`~reszoo.search.proxy.CAPACITY_WEIGHT`
            times ln(parameters); higher is better), ``train-loss`` (the loss alone) or
            ``top1`` (its validation top-1); see :data:`reszoo.search.proxy.SCORES`.
            Top-1 is reported either way.
        pruner: How proxy runs stop early (:data:`reszoo.search.config.PRUNERS`): ``median``,
            ``hyperband`` (for a proxy of many epochs: most trials stop after one or a few) or ``none``.
        min_proxy_epochs: The epoch from which the pruner may stop a run: Hyperband's first
            rung (``min_resource``), the median pruner's warm-up (``n_warmup_steps``).
        macs_budget: Trials train only nets within this many times the MACs of the largest
            reference under the limit (what bounds the proxy's training cost); ``None``: no
            bound, for a budget that can afford the wide nets a loose limit admits.
        threads: CPU threads latency is timed with (default: the threads this process
            has, or what a resumed study started with; 1 is the steadiest).
        references: Presets trained on the same proxy, beside the result (those under the limit
            start the study, and set the MACs budget; none under it: no bound).
            The first, when it sets the limit, is timed again to judge a net measured over it (a
            resumed study's limit is not).
        registry: Where latency rows are cached (default: the local registry).
        log: Told of decisions worth a line (the limit chosen, a proxy cut to fit, fewer workers).

    Returns:
        The result; ``best`` is empty when no trial was feasible.

    Raises:
        SearchInterrupted: Ctrl-C (a KeyboardInterrupt) stopped it; its ``result`` holds what
            was found so far, and no trial it stopped stays RUNNING.
    """
    from reszoo.devices import resolve_device, usable_cores
    from reszoo.latency.judge import LatencyTarget
    from reszoo.latency.measure import LatencySetup
    from reszoo.latency.runtimes import RUNTIMES
    from reszoo.search import keys
    from reszoo.search.config import MODES, PRUNERS, SearchConfig
    from reszoo.search.processes import bound_workers
    from reszoo.search.proxy import PROXY_RECIPE, Proxy, check_score
    from reszoo.search.results import fitted_preset
    from reszoo.search.runner import run
    from reszoo.search.space import SearchSpace
    from reszoo.search.storage import default_storage, journal_path, study_attrs
    from reszoo.search.study import make_objective, reference_limit
    from reszoo.train.data import load as load_dataset
    from reszoo.train.data import local_dataset
    from reszoo.zoo.hub import local_registry, local_url
    from reszoo.zoo.records import check_name
    from reszoo.zoo.spec import ArchSpec

    say = log or (lambda message: None)
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}", field="mode", value=mode)
    check_score(proxy_score)  # before the data set is loaded
    if pruner not in PRUNERS:
        raise InputError(f"pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}", field="pruner", value=pruner)
    if pruner == "hyperband" and proxy_epochs < 3:
        raise InputError(
            f"the hyperband pruner cuts runs at 1, 3, 9... proxy epochs; give --proxy-epochs of at least 3, "
            f"got {proxy_epochs}",
            field="proxy_epochs",
            value=proxy_epochs,
        )
    if not 1 <= min_proxy_epochs <= proxy_epochs:
        raise InputError(
            f"--min-proxy-epochs must be from 1 to --proxy-epochs ({proxy_epochs}), got {min_proxy_epochs}: "
            f"it is the epoch from which the pruner may stop a proxy run",
            field="min_proxy_epochs",
            value=min_proxy_epochs,
        )
    if trials is None and timeout is None:
        trials = DEFAULT_TRIALS
    torch_device = resolve_device(device)
    cuda = torch_device.type == "cuda"
    if workers is None:
        workers = min(default_workers(torch_device), trials or usable_cores())
    elif workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}; give 1 or more", field="workers", value=workers)
    else:
        workers, fewer = bound_workers(workers, trials, usable_cores())
        if fewer:
            say(fewer)
    runtime = ("graph" if cuda else "eager") if runtime == "auto" else runtime
    if runtime not in RUNTIMES:
        raise InputError(f"runtime must be auto or one of {', '.join(RUNTIMES)}, got {runtime!r}", field="runtime")
    if study is not None:
        check_name(study)
    # An unnamed study gets the time and this process's id: two searches started in one second never join.
    name = study or f"{time.strftime('search-%Y%m%d-%H%M%S')}-{os.getpid()}"
    storage_url = storage or (default_storage() if study or workers > 1 else "memory")
    journal_path(storage_url)  # a bad URL fails now, not after the data set is loaded
    dataset_path = dataset or local_dataset(data_root)
    data = load_dataset(dataset_path, root=data_root)
    space = (space or SearchSpace()).with_overrides(
        num_classes=data.num_classes, in_chans=data.in_chans, input_size=data.input_size
    )
    available = len(data.train) - val_images
    if proxy_images > available > 0:
        say(
            f"proxy images {proxy_images}: {data.name} has {available} training images left after the "
            f"{val_images} held out; using {available}"
        )
        proxy_images = available
    registry_url = registry or local_url()
    import torch

    # Every worker times with the same threads (by default the threads this process has; workers
    # train with fewer): one device label, so the limit, the cache and the trials' rows compare.
    attrs = study_attrs(storage_url, name) if study is not None else {}
    stored = (attrs.get(keys.SETTINGS) or {}).get("target") or {}
    if cuda:
        threads = None
    elif threads is None:
        # A resumed study times as it started (its rows and limit compare).
        threads = stored.get("threads") if stored else torch.get_num_threads()
    proxy = Proxy(
        recipe=PROXY_RECIPE.with_overrides(epochs=proxy_epochs, batch_size=proxy_batch_size),
        train_images=proxy_images,
        val_images=val_images,
        seed=seed,
        device=str(torch_device),
        runtime="graph" if cuda else "eager",
        precision=proxy_precision_for(proxy_precision, torch_device),
        score=proxy_score,
    )
    references = list(references)
    limit_from = None
    if max_latency_ms is None:
        # A resumed study keeps the limit it started with (measured then, perhaps under other load),
        # and the reference it came from, which nets over it are timed beside.
        max_latency_ms = stored.get("max_ms")
        if max_latency_ms is not None and keys.LIMIT_FROM in attrs:
            limit_from = ArchSpec.from_dict(attrs[keys.LIMIT_FROM])
    if max_latency_ms is None and mode == "constrained":
        if not references:
            raise InputError(
                "constrained mode needs a latency limit (--max-latency-ms), or a reference preset "
                "whose latency sets it (--reference)",
                field="max_latency_ms",
            )
        setup = LatencySetup(device=str(torch_device), batch_size=batch_size, runtime=runtime, threads=threads)
        with local_registry(registry) as rows:
            row = reference_limit(fitted_preset(references[0], space), setup, rows)
        max_latency_ms, limit_from = row.median_ms, fitted_preset(references[0], space)
        say(f"latency limit: {references[0]}'s {max_latency_ms:.3f} ms on {row.device} (batch {batch_size}, {runtime})")
    config = SearchConfig(
        dataset=dataset_path,
        data_root=data_root,
        space=space,
        proxy=proxy,
        target=LatencyTarget(
            device=str(torch_device),
            max_ms=max_latency_ms,
            batch_size=batch_size,
            runtime=runtime,
            threads=threads,
            limit_from=limit_from,
        ),
        registry=registry_url,
        study=name,
        storage=storage_url,
        mode=mode,
        seed=seed,
        startup_trials=min(10, max(3, (trials or 30) // 3)),
        pruner=pruner,
        min_proxy_epochs=min_proxy_epochs,
        macs_budget=macs_budget,
    )
    objective = make_objective(config, data)  # this process's (spawned workers load the data set themselves)
    study_so_far = None
    try:
        study_so_far = run(
            config,
            trials=trials,
            workers=workers,
            timeout=timeout,
            on_progress=on_progress,
            start_from=[fitted_preset(r, space) for r in references],
            objective=objective,
        )
        return _result(study_so_far, config, data, objective, references)
    except KeyboardInterrupt as exc:
        interrupted = exc if isinstance(exc, SearchInterrupted) else SearchInterrupted(study_so_far)
        if interrupted.study is not None:  # what was found so far, references as far as they were scored
            interrupted.result = _result(interrupted.study, config, data, None, references)
        raise interrupted from None


def _result(
    study: optuna.Study, config: SearchConfig, data: Dataset, objective: Objective | None, references: Sequence[str]
) -> SearchResult:
    """The result of ``study``; with ``objective``, the references not scored yet are scored first."""
    from reszoo.search import keys
    from reszoo.search.results import best, pareto_front, score_references, trial_results

    if objective is not None and references:
        scored = score_references(study, objective, list(references))
    else:
        stored = study.user_attrs.get(keys.REFERENCES, {})
        scored = {name: stored[name] for name in references if name in stored}
    results = trial_results(study)
    front = pareto_front(results)
    return SearchResult(
        study, config, data, results, best(results, 5) if config.mode == "constrained" else front, front, scored
    )


def proxy_precision_for(precision: str, device: Any) -> str | None:
    """The proxy's precision: ``auto`` is bfloat16 where it runs natively (it trains faster
    there, and a proxy only ranks nets), else the device's default (float32 on a CPU)."""
    from reszoo.train.steps import PRECISIONS, native_bfloat16

    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else None
    if precision not in PRECISIONS:
        raise InputError(
            f"proxy precision must be auto, {', '.join(PRECISIONS)}, got {precision!r}",
            field="proxy_precision",
            value=precision,
        )
    return precision


def default_workers(device: Any) -> int:
    """Worker processes a search runs by default: one per core this process may use when
    the proxy trains on a CPU (one thread each: one-thread processes outrun one process
    with as many threads); one on a GPU (a process per net only time-slices it)."""
    from reszoo.devices import usable_cores

    if getattr(device, "type", str(device)) != "cpu":
        return 1
    return usable_cores()
