r"""Proxy fidelity over several draws: Kendall's tau of the search's score over the nets of every draw together.

One draw of 12 nets gives a noisy tau (one swapped pair moves it by 0.03, and the
judge's own seeds disagree on close nets), so a proxy is best judged on every
held-out draw at once. This reads `proxy_fidelity.py` result files, one per draw
and proxy seed, each already scored against its own draw's judge (`--full-from`),
and prints, per proxy seed, tau on each draw and on all their nets pooled (every
net judged by its own draw's mean full-training top-1), then the mean over the
proxy seeds. Nothing is trained.

Baseline, same nets: the parameter count as a ranking; the figure is the
search's score beside it, as a ratio.

    python benchmarks/fidelity_pool.py \
        benchmarks/results/proxy-fidelity-fashion-mnist-draw{1,2}-bf16-batch32-judge2-seed?.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from proxy_fidelity import kendall_tau_b

from reszoo.search.proxy import CAPACITY_WEIGHT, epoch_score

#: What must match across the files: one proxy, one judge's recipe, one region of the space (nets
#: of different draws are compared with each other in the pool, so their judges must be alike).
SAME = (
    "dataset",
    "within",
    "proxy_images",
    "val_images",
    "proxy_epochs",
    "proxy_batch_size",
    "proxy_precision",
    "proxy_recipe_changes",
    "full_epochs",
    "full_precision",
    "full_device",
)

#: The score pooled: the search's (proxy_fidelity.py prints the others per draw).
SCORE = "train-loss+params"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="proxy_fidelity.py --out files: one per draw (--seed) and proxy seed")
    args = parser.parse_args()
    by_proxy_seed: dict[int, dict[int, list[dict]]] = defaultdict(dict)  # proxy seed -> draw -> rows
    first = None
    for path in args.files:
        if not Path(path).is_file():
            parser.error(f"{path}: no such file; give proxy_fidelity.py --out files")
        try:
            stored = json.loads(Path(path).read_text())
            settings, rows = stored["settings"], stored["nets"]
            assert isinstance(settings, dict) and "seed" in settings and isinstance(rows, list)
        except (ValueError, KeyError, TypeError, AssertionError):  # ValueError: bad JSON or not UTF-8
            parser.error(f"{path}: not a proxy_fidelity.py --out file (no settings with a seed, and nets)")
        if settings.get("full_only"):
            parser.error(f"{path} is a judge alone (--full-only): give the file of a proxy scored against it")
        mine = {key: settings.get(key) for key in SAME}
        mine["judge seeds"] = len(settings.get("full_seeds", [settings.get("seed")]))
        if first is None:
            first = (path, mine)
        elif mine != first[1]:
            parser.error(
                f"{path}: other settings than {first[0]} "
                f"({ {k: v for k, v in mine.items() if v != first[1][k]} } against "
                f"{ {k: v for k, v in first[1].items() if v != mine[k]} }); pool one proxy and one judge"
            )
        if not all("full" in r and "proxy_train_loss" in r for r in rows):
            parser.error(
                f"{path}: some nets lack a proxy or a full training (a run not finished, or one written "
                f"before the training loss was recorded)"
            )
        draw, proxy_seed = settings["seed"], settings.get("proxy_seed", settings["seed"])
        if draw in by_proxy_seed[proxy_seed]:
            parser.error(f"{path}: draw {draw} with proxy seed {proxy_seed} is given twice")
        by_proxy_seed[proxy_seed][draw] = rows
    draws = sorted({draw for per_draw in by_proxy_seed.values() for draw in per_draw})
    incomplete = {
        seed: sorted(set(draws) - set(per_draw))
        for seed, per_draw in by_proxy_seed.items()
        if set(per_draw) != set(draws)
    }
    if incomplete:
        parser.error(
            f"proxy seeds lacking a draw: {incomplete}; give every draw for each proxy seed (a file "
            f"written without --proxy-seed took its draw's seed as its proxy seed)"
        )
    for draw in draws:  # every proxy seed must rank the same nets against the same judge
        judged = {seed: {r["digest"]: r["full"] for r in per_draw[draw]} for seed, per_draw in by_proxy_seed.items()}
        first_seed = min(judged)
        ref = judged[first_seed]
        for seed, nets in judged.items():
            if nets != ref:
                judged_apart = sum(nets[d] != ref[d] for d in set(nets) & set(ref))
                parser.error(
                    f"draw {draw}: proxy seed {seed}'s file differs from proxy seed {first_seed}'s: "
                    f"{len(set(ref) - set(nets))} nets missing, {len(set(nets) - set(ref))} extra, "
                    f"{judged_apart} with other judge figures; give files scored against one judge "
                    f"(--full-from) over every net of the draw"
                )
    digests = [r["digest"] for draw in draws for r in by_proxy_seed[min(by_proxy_seed)][draw]]
    if len(set(digests)) < len(digests):
        parser.error("a net is in more than one draw: pool distinct draws (proxy_fidelity.py --seed)")

    def taus(rows: list[dict]) -> tuple[float, float, float]:
        """tau of the search's score, of the training loss alone, of the parameter count"""
        full = [r["full"] for r in rows]
        scored = [
            [epoch_score({"train_loss": r["proxy_train_loss"]}, score, r["params"]) for r in rows]
            for score in (SCORE, "train-loss")
        ]
        return (
            *(kendall_tau_b(ranking, full) for ranking in scored),
            kendall_tau_b([float(r["params"]) for r in rows], full),
        )

    nets = {draw: len(by_proxy_seed[min(by_proxy_seed)][draw]) for draw in draws}
    print(
        f"the search's score (last epoch's training loss less {CAPACITY_WEIGHT} ln(params)) against full "
        f"training; draws {', '.join(f'{d} ({nets[d]} nets)' for d in draws)}; baseline: the parameter count"
    )
    pooled, per_draw_means = [], []
    for seed in sorted(by_proxy_seed):
        per_draw = by_proxy_seed[seed]
        draw_taus = [taus(per_draw[draw])[0] for draw in draws]
        per_draw_means.append(statistics.fmean(draw_taus))
        pooled.append(taus([row for draw in draws for row in per_draw[draw]]))
        print(
            f"proxy seed {seed}: {', '.join(f'draw {d} {t:.3f}' for d, t in zip(draws, draw_taus))}; pooled "
            f"{pooled[-1][0]:.3f}  (the loss alone {pooled[-1][1]:.3f}, parameter count {pooled[-1][2]:.3f})"
        )
    score, loss, params = (statistics.fmean(figures) for figures in zip(*pooled))
    print(
        f"pooled over {sum(nets.values())} nets, mean of {len(pooled)} proxy seeds: tau {score:.3f}  parameter "
        f"count {params:.3f}  ratio {score / params if params else float('nan'):.2f}  (target: >= 0.6); the loss "
        f"alone {loss:.3f}; the mean of the draws' own taus {statistics.fmean(per_draw_means):.3f} (the pool also "
        f"ranks nets of one draw against another's)"
    )


if __name__ == "__main__":
    main()
