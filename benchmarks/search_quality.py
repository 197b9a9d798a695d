"""Search quality: reszoo's TPE search against Optuna's RandomSampler.

Same space, same proxy, same latency limit, same number of trained trials,
several seeds. Latency rows are shared through one registry (cached by
architecture digest), so every arm sees the same latency for the same net
and the comparison measures the sampler, not the timer. Every arm starts from
the same preset (resnet20 unless --start-from none), as `reszoo search` does.

Arms (--samplers, the last one the baseline): ``tpe`` (screened by the
latency predictor, the screen handing on the largest of its passing draws
under the default score, as `reszoo search` runs), ``tpe-unpreferred`` (the
screen without that preference), ``tpe-unscreened`` (no screen, as before
search/sampling.py) and ``random``. Prints, per seed and on
average: the best feasible score (what the search ranks by: the proxy's
last-epoch training loss, negated, plus 0.05 ln(params), by default) and that
net's proxy top-1,
the hypervolume of the feasible top-1 front (accuracy x ms under the limit)
and the share of trials under the limit, each arm's figure over the
baseline's, and how many seeds each arm won on the best score and on the
best net's top-1.

Each (seed, arm) search is one job; ``--jobs 2`` runs two at once, each one
process of one thread, so a 2-core CPU is used fully. Latency is still timed
alone: every reszoo process of a machine shares the quiet lock
(latency/quiet.py), so a measurement holds the other job's training steps.
Nothing else may run meanwhile.

    python benchmarks/search_quality.py --dataset fashion-mnist --data-root ../shared/data --jobs 2
    python benchmarks/search_quality.py --dataset ../shared/data/cifar10-jpeg.tar.gz --device cuda --runtime graph \
        --max-latency-ms 0.3 --trials 40 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from reszoo.devices import device_label
from reszoo.latency.judge import LatencyTarget
from reszoo.latency.measure import cpu_threads, latency
from reszoo.search.api import proxy_precision_for
from reszoo.search.config import SearchConfig
from reszoo.search.proxy import PROXY_RECIPE, Proxy
from reszoo.search.results import best, fitted_preset, hypervolume, pareto_front, trial_results
from reszoo.search.runner import run
from reszoo.search.space import SearchSpace
from reszoo.train.data import load as load_dataset
from reszoo.zoo.registry import Registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runtime", default="eager", help="latency runtime (graph on a GPU)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for latency (1 is steadiest)")
    parser.add_argument("--max-latency-ms", type=float, default=None, help="default: resnet20's latency here")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--proxy-images", type=int, default=3000)
    parser.add_argument("--val-images", type=int, default=1000)
    parser.add_argument("--proxy-epochs", type=int, default=3)
    parser.add_argument("--max-depth", type=int, default=4)
    parser.add_argument(
        "--start-from",
        default="resnet20",
        help="preset both samplers start from, as `reszoo search` does ('none': from nothing)",
    )
    parser.add_argument("--registry", default=None, help="registry caching latency (default: a temporary one)")
    parser.add_argument(
        "--samplers",
        default="tpe,random",
        help="arms, comma-separated, the last one the baseline: tpe (screened by the latency "
        "predictor and preferring the larger passing draws, as reszoo search runs), "
        "tpe-unpreferred (screened only), tpe-unscreened (neither), random "
        "(Optuna's RandomSampler, unscreened)",
    )
    parser.add_argument("--proxy-precision", default="auto", help="as reszoo search's --proxy-precision")
    parser.add_argument("--proxy-batch-size", type=int, default=PROXY_RECIPE.batch_size)
    parser.add_argument("--proxy-score", default=Proxy().score, help="as reszoo search's --proxy-score")
    parser.add_argument("--jobs", type=int, default=1, help="searches run at once (one process of one thread each)")
    parser.add_argument("--out", default=None, help="write the per-seed figures as JSON")
    args = parser.parse_args()
    arms = args.samplers.split(",")
    unknown = [a for a in arms if a not in ("tpe", "tpe-unpreferred", "tpe-unscreened", "random")]
    if unknown or len(arms) < 2:
        parser.error(f"--samplers {args.samplers!r}: give two or more of tpe, tpe-unpreferred, tpe-unscreened, random")

    work = Path(tempfile.mkdtemp(prefix="reszoo-search-quality-"))
    registry_url = args.registry or f"sqlite:///{work / 'registry.db'}"
    dataset = load_dataset(args.dataset, root=args.data_root)
    space = SearchSpace(
        max_depth=args.max_depth,
        num_classes=dataset.num_classes,
        in_chans=dataset.in_chans,
        input_size=dataset.input_size,
    )
    limit = args.max_latency_ms
    if limit is None:
        limit = latency(
            fitted_preset("resnet20", space),
            device=args.device,
            runtime=args.runtime,
            registry=Registry(registry_url),
            threads=args.threads,
        ).median_ms
    with cpu_threads(args.threads):
        label = device_label(args.device)
    print(
        f"{args.dataset} on {label}; limit {limit:.3f} ms (batch 1, {args.runtime}); "
        f"{args.trials} trials x {args.seeds} seeds; proxy {args.proxy_images} images x {args.proxy_epochs} epochs"
    )
    jobs = [(args, space, registry_url, limit, seed, sampler) for seed in range(args.seeds) for sampler in arms]
    if args.jobs > 1:
        with ProcessPoolExecutor(
            args.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread
        ) as pool:
            done = list(pool.map(_search, *zip(*jobs)))
    else:
        done = [_search(*job) for job in jobs]
    rows = [
        {"seed": seed, **{sampler: done[seed * len(arms) + i] for i, sampler in enumerate(arms)}}
        for seed in range(args.seeds)
    ]

    def mean(sampler: str, key: str) -> float:
        return statistics.mean(r[sampler][key] for r in rows)

    baseline = arms[-1]
    for key in ("best_score", "best", "hypervolume", "feasible_share"):
        base = mean(baseline, key)
        for arm in arms[:-1]:
            figure = mean(arm, key)
            # A score may be negative (a negated loss): its ratio would mislead, the difference does not.
            versus = (
                f"difference {figure - base:+.4f}"
                if key == "best_score"
                else f"ratio {figure / base if base else float('inf'):.3f}"
            )
            print(f"{key:>14}: {arm} {figure:.4f}  {baseline} {base:.4f}  {versus}")
    for arm in arms[:-1]:
        for key, what in (("best_score", "the best score"), ("best", "the best-scored net's proxy top-1")):
            wins = sum(r[arm][key] > r[baseline][key] for r in rows)
            ties = sum(r[arm][key] == r[baseline][key] for r in rows)
            print(f"{arm} beat {baseline} on {what} in {wins} of {len(rows)} seeds ({ties} tied)")
    if args.out:
        Path(args.out).write_text(json.dumps({"limit_ms": limit, "rows": rows}, indent=2))


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)  # one job per core


def _search(
    args: argparse.Namespace, space: SearchSpace, registry_url: str, limit: float, seed: int, sampler: str
) -> dict[str, Any]:
    """One arm's search for one seed: its figures."""
    cuda = args.device.startswith("cuda")
    config = SearchConfig(
        dataset=args.dataset,
        data_root=args.data_root,
        space=space,
        # The proxy `reszoo search` trains by default (bfloat16 where it runs natively).
        proxy=Proxy(
            recipe=PROXY_RECIPE.with_overrides(epochs=args.proxy_epochs, batch_size=args.proxy_batch_size),
            train_images=args.proxy_images,
            val_images=args.val_images,
            seed=seed,
            device=args.device,
            runtime="graph" if cuda else "eager",
            precision=proxy_precision_for(args.proxy_precision, args.device),
            score=args.proxy_score,
        ),
        target=LatencyTarget(device=args.device, max_ms=limit, runtime=args.runtime, threads=args.threads),
        registry=registry_url,
        study=f"{sampler}-{seed}",
        seed=seed,
        sampler=sampler.split("-")[0],
        screen=sampler in ("tpe", "tpe-unpreferred"),
        size_preference=sampler == "tpe",
        startup_trials=min(10, max(3, args.trials // 3)),
    )
    started = time.perf_counter()
    start = [] if args.start_from == "none" else [fitted_preset(args.start_from, space)]
    results = trial_results(run(config, trials=args.trials, start_from=start))
    top = best(results)
    front = pareto_front(results, by="accuracy")
    figures = {
        "best_score": top[0].rank_score if top else float("-inf"),
        "best": top[0].accuracy if top else 0.0,  # the best-scored net's proxy top-1
        "best_top1": max((r.accuracy for r in results if r.usable), default=0.0),  # the highest top-1 of any net
        "hypervolume": hypervolume([(r.latency_ms, r.accuracy) for r in front], limit),
        "feasible": sum(1 for r in results if r.feasible),
        "trials": len(results),
        # Share of the draws that became trials (each measured) that met the limit; the
        # screen's dropped draws cost one prediction each and are counted apart.
        "feasible_share": sum(1 for r in results if r.feasible) / len(results),
        "screened": sum(r.screened for r in results),
        "repeated": sum(r.repeated for r in results),
        "best_net": top[0].spec.summary() if top else None,
        "seconds": time.perf_counter() - started,
    }
    print(
        f"seed {seed} {sampler:>14}: best score {figures['best_score']:.4f} ({100 * figures['best']:.2f}%)"
        f"  hypervolume {figures['hypervolume']:.4f}  feasible {figures['feasible']}/{figures['trials']} trials "
        f"({100 * figures['feasible_share']:.0f}%), {figures['screened']} draws screened out, "
        f"{figures['repeated']} repeats dropped  {figures['seconds']:.0f} s",
        flush=True,
    )
    return figures


if __name__ == "__main__":
    main()
