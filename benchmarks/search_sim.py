"""Sampler settings on a simulated search: many seeds in minutes, no training.

search_quality.py trains every trial, so five seeds take half an hour and a
sampler setting can be tried once a session. This replays the same contest
(reszoo's sampler against Optuna's RandomSampler, each starting from resnet20
and stopped after --trials trained trials, with the draws over the limit
recorded and not counted) on a model of the default search, so that settings
can be compared over 30 seeds first and the winner checked once for real:

- **Score**: the default score, -(proxy training loss) + 0.05 ln(params). The
  loss is a linear model (ln params, layers, family, block, plain x layers)
  fitted to the proxy-fidelity result files (--fidelity: 24 nets, 4 proxy
  seeds each); each simulated seed draws every net's own deviation from it
  (the fit's residual spread) and its proxy noise (the spread between seeds).
- **Latency**: this machine's per-part predictor for every net of the space,
  times the predictor's error measured here (--error-nets nets timed whole,
  per block type: its bias and spread), drawn once per seed.
- **Limit**: resnet20's measured latency (as `reszoo search` takes it), or
  --max-latency-ms.

Baseline: the random arm (the last of --arms), same landscape per seed; each
arm's mean best score is printed beside it, with the seeds it wins. Arms:
``tpe`` (as `reszoo search` runs), ``tpe-unpreferred`` (the screen without
the size preference), ``tpe-unscreened``, ``random``. What the model leaves out
(pruning, the proxy's own quirks, a host whose speed moves: every rough reading
is believed and no reading is judged against the reference timed again, as the
search did before those checks) is why search_quality.py has the last word.

    python benchmarks/search_sim.py --seeds 30
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import math
import os
import random
import re
import statistics
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import torch

from reszoo.latency.judge import DEFAULT_POLICY, LatencyTarget
from reszoo.latency.measure import LatencySetup, latency
from reszoo.latency.predictor import LatencyPredictor
from reszoo.search.config import SearchConfig
from reszoo.search.objective import UNTRAINED, record_constraint
from reszoo.search.proxy import CAPACITY_WEIGHT, Proxy
from reszoo.search.results import fitted_preset
from reszoo.search.runner import TrainedBudget
from reszoo.search.space import SearchSpace
from reszoo.search.study import sampler_for
from reszoo.zoo.counting import count
from reszoo.zoo.registry import Registry

RESULTS = Path(__file__).parent / "results"
FIDELITY = (
    "proxy-fidelity-fashion-mnist-bf16-batch32-judge3-seed*.json",
    "proxy-fidelity-fashion-mnist-draw1-bf16-batch32-judge2-seed*.json",
)
ARMS = ("tpe", "tpe-unpreferred", "tpe-unscreened", "random")


def features(family: str, block: str, layers: int, params: int) -> list[float]:
    return [
        1.0,
        math.log(params),
        layers,
        family == "plain",
        family == "highway",
        block == "bottleneck",
        (family == "plain") * layers,
    ]


def fit_loss(files: list[str]) -> tuple[np.ndarray, float, float]:
    """Coefficients of the loss model, the nets' residual spread and the proxy seeds' spread."""
    nets: dict[str, dict] = {}
    for file in files:
        for net in json.loads(Path(file).read_text())["nets"]:
            found = re.match(r"(\w+) (\d+)-layer (\w+),", net["summary"])
            row = nets.setdefault(
                net["digest"], {"x": features(found[1], found[3], int(found[2]), net["params"]), "losses": []}
            )
            row["losses"].append(net["proxy_train_loss"])
    x = np.array([n["x"] for n in nets.values()], float)
    y = np.array([statistics.mean(n["losses"]) for n in nets.values()])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = float((y - x @ coef).std(ddof=x.shape[1]))
    seed_sd = statistics.mean(statistics.stdev(n["losses"]) for n in nets.values() if len(n["losses"]) > 1)
    print(
        f"loss model: {len(nets)} nets from {len(files)} files; residual spread {residual:.4f}, "
        f"proxy seeds' spread {seed_sd:.4f}"
    )
    return coef, residual, seed_sd


def every_net(space: SearchSpace) -> list:
    axes = space.distributions()
    choices = [d.choices if hasattr(d, "choices") else range(d.low, d.high + 1) for d in axes.values()]
    specs = {}
    for values in itertools.product(*choices):
        spec = space.from_params(dict(zip(axes, values)))
        specs[spec.digest] = spec
    return list(specs.values())


def predictor_error(
    specs: list, predicted: dict[str, float], setup: LatencySetup, registry: Registry, limit: float, nets: int
) -> dict[str, tuple[float, float]]:
    """Per block type: (mean, spread) of ln(measured / predicted), from ``nets`` nets near the limit."""
    near = [s for s in specs if 0.5 * limit <= predicted[s.digest] <= 1.6 * limit]
    errors: dict[str, list[float]] = {}
    for spec in random.Random(0).sample(near, min(nets, len(near))):
        ms = latency(spec, setup, registry=registry).median_ms
        errors.setdefault(spec.block, []).append(math.log(ms / predicted[spec.digest]))
    found = {block: (statistics.mean(e), statistics.stdev(e) if len(e) > 1 else 0.1) for block, e in errors.items()}
    print(
        "predictor error (measured / predicted): "
        + ", ".join(
            f"{block} x{math.exp(m):.2f} (spread {s:.2f}, {len(errors[block])} nets)" for block, (m, s) in found.items()
        )
    )
    return found


def search(
    arm: str,
    seed: int,
    trials: int,
    space: SearchSpace,
    predicted: dict[str, float],
    limit: float,
    model: dict,
    limit_from_reference: bool,
) -> tuple[float, float, float]:
    """One simulated search: the best feasible score it observed, the share of its trials under the limit
    and its trained nets' mean MACs over resnet20's (what the search's training time follows;
    ``limit_from_reference``: the limit is resnet20's latency, so resnet20 takes exactly that, as in a search)."""
    coef, residual, seed_sd, error = model["coef"], model["residual"], model["seed_sd"], model["error"]
    landscape: dict[str, tuple[float, float]] = {}

    def net(spec) -> tuple[float, float]:
        """(score, measured ms) of ``spec`` in this seed's landscape, the same for every arm."""
        if spec.digest not in landscape:
            rng = np.random.default_rng([seed, int(spec.digest[:12], 16)])
            params = count(spec).params
            loss = float(np.dot(coef, features(spec.family, spec.block, spec.depth, params)))
            loss += rng.normal(0, residual) + rng.normal(0, seed_sd)  # the net's own deviation, its proxy seed's noise
            bias, spread = error.get(spec.block, (0.0, 0.1))
            landscape[spec.digest] = (
                -loss + CAPACITY_WEIGHT * math.log(params),
                predicted[spec.digest] * math.exp(bias + rng.normal(0, spread)),
            )
        return landscape[spec.digest]

    config = SearchConfig(
        dataset="simulated",
        space=space,
        proxy=Proxy(),
        target=LatencyTarget(max_ms=limit),
        registry="sqlite://",
        study="sim",
        seed=seed,
        sampler=arm.split("-")[0],
        screen=arm in ("tpe", "tpe-unpreferred"),
        size_preference=arm == "tpe",
        startup_trials=min(10, max(3, trials // 3)),  # as search_quality.py
    )
    judge = SimpleNamespace(predicted_ms=lambda spec: predicted[spec.digest], limit_ms=limit, policy=DEFAULT_POLICY)
    study = optuna.create_study(direction="maximize", sampler=sampler_for(config, judge=judge))
    reference = fitted_preset("resnet20", space)
    if limit_from_reference or net(reference)[1] <= limit:  # as the search: a reference over the limit is not tried
        study.enqueue_trial(space.params_for(reference))
    margin = DEFAULT_POLICY.predict_margin

    def objective(trial: optuna.Trial) -> float:
        spec = space.suggest(trial)
        digest = spec.digest
        # As Objective: a net predicted far over the limit is recorded at its prediction, one a rough
        # timing puts far over it at that timing (not stored), the rest measured.
        score, ms = net(spec)
        source = (
            "predicted"
            if predicted[digest] > margin * limit
            else "rough"
            if ms > DEFAULT_POLICY.rough_margin * limit
            else "measured"
        )
        taken = predicted[digest] if source == "predicted" else ms
        if digest == reference.digest and limit_from_reference:
            source, taken = "measured", limit
        for key, value in {
            "worker": {"pid": os.getpid()},
            "spec": spec.to_dict(),
            "latency_ms": taken,
            "latency_source": source,
            "feasible": taken <= limit,
        }.items():
            trial.set_user_attr(key, value)
        record_constraint(trial, taken - limit)
        return score if taken <= limit else UNTRAINED

    study.optimize(objective, n_trials=None, callbacks=[TrainedBudget(trials)])
    feasible = [t for t in study.trials if t.user_attrs["feasible"]]
    cost = statistics.mean(count(space.from_params(t.params)).macs for t in feasible) / count(reference).macs
    return max(t.value for t in feasible), len(feasible) / len(study.trials), cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument(
        "--arms",
        default="tpe,tpe-unpreferred,random",
        help=f"comma-separated, the last one the baseline: {', '.join(ARMS)}",
    )
    parser.add_argument("--max-latency-ms", type=float, default=None, help="default: resnet20's latency here")
    parser.add_argument("--error-nets", type=int, default=40, help="nets timed whole to measure the predictor's error")
    parser.add_argument(
        "--fidelity",
        default=",".join(str(RESULTS / f) for f in FIDELITY),
        help="proxy-fidelity result files (globs) the loss model is fitted to",
    )
    parser.add_argument("--registry", default=None, help="registry caching latency (default: a temporary one)")
    args = parser.parse_args()
    arms = args.arms.split(",")
    if any(a not in ARMS for a in arms) or len(arms) < 2:
        parser.error(f"--arms {args.arms!r}: give two or more of {', '.join(ARMS)}")
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(1)

    coef, residual, seed_sd = fit_loss(sorted(f for pattern in args.fidelity.split(",") for f in glob.glob(pattern)))
    space = SearchSpace(max_depth=4, num_classes=10, in_chans=1, input_size=28)  # Fashion-MNIST's default space
    registry = Registry(args.registry or f"sqlite:///{Path(tempfile.mkdtemp(prefix='reszoo-sim-')) / 'r.db'}")
    setup = LatencySetup("cpu", 1, "float32", "eager", 1)
    specs = every_net(space)
    predictor = LatencyPredictor(registry, setup)
    predictor.fill(specs)
    predicted = {s.digest: predictor.predict(s) for s in specs}
    limit = args.max_latency_ms or latency(fitted_preset("resnet20", space), setup, registry=registry).median_ms
    error = predictor_error(specs, predicted, setup, registry, limit, args.error_nets)
    model = {"coef": coef, "residual": residual, "seed_sd": seed_sd, "error": error}
    print(
        f"{len(specs)} nets, {sum(predicted[s.digest] <= limit for s in specs)} predicted under the limit of "
        f"{limit:.3f} ms; {args.trials} trained trials x {args.seeds} seeds"
    )

    runs = {
        arm: [
            search(arm, seed, args.trials, space, predicted, limit, model, args.max_latency_ms is None)
            for seed in range(args.seeds)
        ]
        for arm in arms
    }
    baseline = arms[-1]
    base_best, base_share, base_cost = (statistics.mean(run[i] for run in runs[baseline]) for i in range(3))
    for arm in arms:
        best, share, cost = (statistics.mean(run[i] for run in runs[arm]) for i in range(3))
        wins = sum(a[0] > b[0] for a, b in zip(runs[arm], runs[baseline]))
        print(
            f"{arm:>16}: mean best score {best:.4f} (difference to {baseline} {best - base_best:+.4f}), wins "
            f"{wins} of {args.seeds}; feasible share {share:.2f} (ratio {share / base_share:.2f}); trained "
            f"nets' MACs {cost:.2f}x resnet20's (ratio {cost / base_cost:.2f})"
        )


if __name__ == "__main__":
    main()
