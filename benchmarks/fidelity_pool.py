"""Proxy fidelity over several draws: Kendall's tau of the search's score over the nets of every draw together.

One draw of 12 nets gives a noisy tau (one swapped pair moves it by 0.03, and the
judge's own seeds disagree on close nets), so a proxy is best judged on every
held-out draw at once. This reads `proxy_fidelity.py` result files, one per draw
and proxy seed, each already scored against its own draw's judge (`--full-from`),
and prints, per proxy seed, tau on each draw and on all their nets pooled (every
net judged by its own draw's mean full-training top-1), then the mean over the
proxy seeds. Nothing is trained.

Baseline, same nets: the parameter count as a ranking; the figure is the
search's score beside it, as a ratio.

    python benchmarks/fidelity_pool.py benchmarks/results/proxy-fidelity-fashion-mnist-draw{1,2}-bf16-batch32-judge2-seed?.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from proxy_fidelity import kendall_tau_b

from reszoo.search.objective import CAPACITY_WEIGHT, Proxy, epoch_score

#: What must match across the files: one proxy, one judge's recipe, one region of the space.
SAME = ("dataset", "within", "proxy_images", "val_images", "proxy_epochs", "proxy_batch_size", "proxy_precision",
        "proxy_recipe_changes", "full_epochs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="proxy_fidelity.py --out files: one per draw (--seed) and proxy seed")
    args = parser.parse_args()
    by_proxy_seed: dict[int, dict[int, list[dict]]] = defaultdict(dict)  # proxy seed -> draw -> rows
    first = None
    for path in args.files:
        if not Path(path).is_file():
            parser.error(f"{path}: no such file; give proxy_fidelity.py --out files")
        stored = json.loads(Path(path).read_text())
        settings, rows = stored["settings"], stored["nets"]
        if settings.get("full_only"):
            parser.error(f"{path} is a judge alone (--full-only): give the file of a proxy scored against it")
        mine = {key: settings.get(key) for key in SAME}
        if first is None:
            first = (path, mine)
        elif mine != first[1]:
            parser.error(f"{path}: other settings than {first[0]} "
                         f"({ {k: v for k, v in mine.items() if v != first[1][k]} } against "
                         f"{ {k: v for k, v in first[1].items() if v != mine[k]} }); pool one proxy and one judge")
        if not all("full" in r and "proxy_train_loss" in r for r in rows):
            parser.error(f"{path}: some nets lack a proxy or a full training (a run not finished?)")
        draw, proxy_seed = settings["seed"], settings.get("proxy_seed", settings["seed"])
        if draw in by_proxy_seed[proxy_seed]:
            parser.error(f"{path}: draw {draw} with proxy seed {proxy_seed} is given twice")
        by_proxy_seed[proxy_seed][draw] = rows
    draws = sorted({draw for per_draw in by_proxy_seed.values() for draw in per_draw})
    incomplete = {seed: sorted(set(draws) - set(per_draw)) for seed, per_draw in by_proxy_seed.items()
                  if set(per_draw) != set(draws)}
    if incomplete:
        parser.error(f"proxy seeds lacking a draw: {incomplete}; give every draw for each proxy seed")

    def score(rows: list[dict]) -> list[float]:
        return [epoch_score({"train_loss": r["proxy_train_loss"]}, Proxy().score, r["params"]) for r in rows]

    def taus(rows: list[dict]) -> tuple[float, float]:
        full = [r["full"] for r in rows]
        return kendall_tau_b(score(rows), full), kendall_tau_b([float(r["params"]) for r in rows], full)

    nets = {draw: len(by_proxy_seed[min(by_proxy_seed)][draw]) for draw in draws}
    print(f"the search's score (last epoch's training loss less {CAPACITY_WEIGHT} ln(params)) against full "
          f"training; draws {', '.join(f'{d} ({nets[d]} nets)' for d in draws)}; baseline: the parameter count")
    pooled_scores, pooled_params = [], []
    for seed in sorted(by_proxy_seed):
        per_draw = by_proxy_seed[seed]
        figures = [f"draw {draw} {taus(per_draw[draw])[0]:.3f}" for draw in draws]
        pooled, params = taus([row for draw in draws for row in per_draw[draw]])
        pooled_scores.append(pooled)
        pooled_params.append(params)
        print(f"proxy seed {seed}: {', '.join(figures)}; pooled {pooled:.3f}  parameter count {params:.3f}")
    mean, params = statistics.fmean(pooled_scores), statistics.fmean(pooled_params)
    print(f"pooled over {sum(nets.values())} nets, mean of {len(pooled_scores)} proxy seeds: tau {mean:.3f}  "
          f"parameter count {params:.3f}  ratio {mean / params if params else float('nan'):.2f}  (target: >= 0.6)")


if __name__ == "__main__":
    sys.exit(main())
