"""The latency screen's effect alone: share of trials under the limit, random draws with and without it.

Random draws learn nothing from scores, so the proxy training is skipped
(every trial scores 0.5): what differs between the arms is the screen of
search/sampling.py alone, judged against real latency measured on this
machine. Limit: resnet20's batch-1 latency here. Baseline: the same random
sampler without the screen, same seeds, same latency cache, same run.
Run it with nothing else on the machine (timings).

    python benchmarks/screen_share.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from reszoo.latency.judge import LatencyTarget
from reszoo.latency.measure import cpu_threads, latency
from reszoo.search.config import SearchConfig
from reszoo.search.proxy import Proxy
from reszoo.search.results import fitted_preset, trial_results
from reszoo.search.runner import run
from reszoo.search.space import SearchSpace
from reszoo.search.study import make_objective
from reszoo.train.data import load as load_dataset
from reszoo.zoo.registry import Registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=6, help="trials under the limit per run (as --trials counts)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for latency")
    args = parser.parse_args()

    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='reszoo-screen-')) / 'registry.db'}"
    dataset = load_dataset(args.dataset, root=args.data_root)
    space = SearchSpace().with_overrides(
        num_classes=dataset.num_classes, in_chans=dataset.in_chans, input_size=dataset.input_size
    )
    with cpu_threads(args.threads):
        limit = latency(
            fitted_preset("resnet20", space), device="cpu", threads=args.threads, registry=Registry(url)
        ).median_ms
    print(f"limit: resnet20's {limit:.3f} ms ({dataset.name}, cpu, {args.threads} threads, batch 1, eager)")
    shares: dict[bool, list[float]] = {False: [], True: []}
    for screen in (False, True):
        for seed in range(args.seeds):
            config = SearchConfig(
                dataset=args.dataset,
                data_root=args.data_root,
                space=space,
                proxy=Proxy(),
                target=LatencyTarget(device="cpu", max_ms=limit, threads=args.threads),
                registry=url,
                study=f"screen-{screen}-{seed}",
                seed=seed,
                sampler="random",
                screen=screen,
                size_preference=False,
            )  # the screen alone, without the size preference
            objective = make_objective(config, dataset)
            objective.train_proxy = lambda spec, trial=None: {
                "score": 0.5,
                "accuracy": 0.5,
                "train_err": 0.5,
                "train_seconds": 0.0,
            }
            started = time.perf_counter()
            results = trial_results(run(config, trials=args.trials, objective=objective))
            feasible = sum(1 for r in results if r.feasible)
            shares[screen].append(feasible / len(results))
            print(
                f"random{', screened' if screen else ''}, seed {seed}: {feasible}/{len(results)} trials under the "
                f"limit ({100 * feasible / len(results):.0f}%), {sum(r.screened for r in results)} draws screened "
                f"out, {sum(1 for r in results if r.latency_source == 'measured')} measured, "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
    plain, screened = (sum(v) / len(v) for v in (shares[False], shares[True]))
    print(
        f"share under the limit: screened {screened:.3f}  unscreened {plain:.3f}  ratio "
        f"{screened / plain if plain else float('inf'):.2f}"
    )


if __name__ == "__main__":
    main()
