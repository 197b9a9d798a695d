r"""Proxy fidelity: does the search's proxy rank nets as a full training does?

The search optimises the proxy (a few epochs on a few thousand images, scored
on held-out training images). This draws --nets distinct nets from the
default space fitted to the data set, scores each with the search's own proxy
and with a full short training (every training image, --full-epochs, top-1 on
the test split), and prints Kendall's tau-b between the two rankings: for the
search's score (the proxy's last epoch's training loss less 0.05 ln(parameters))
and for the others (the training loss alone, validation top-1, validation loss).

Baseline, same run: the parameter count as a ranking (a zero-cost proxy);
the figure is the proxy's tau beside it, as a ratio. The search's score has the
parameter count in it, so its ratio says what the training adds to the count;
the training loss alone is printed beside it too.

By default the nets are drawn where the README's default search trains them:
at most resnet20's multiply-accumulates (its latency limit is resnet20's
latency, and the latency screen turns away the costlier draws before they are
trained), so the proxy is judged on the nets it has to rank. `--within none`
draws from the whole space. MACs, not measured latency, pick the nets so that
the draw does not depend on how busy the machine is.

The full trainings are the judge, and one seed of them is noisy too:
`--full-seeds 0,1,2` trains each net once per seed and judges by the mean
top-1, and prints how well the seeds' rankings agree with each other (the
ceiling any proxy can reach against one seed). `--full-only` trains the judge
alone, on any `--full-device` (gpu_fidelity_judge.sh: 12 nets x 3 seeds on a GPU
in one call); its file then serves `--full-from` for proxies scored on this
machine. A run stopped between seeds leaves each net judged by the seeds it has.
Seeds trained apart (another day, device or `--full-precision`) make one judge:
`--full-from a.json,b.json` judges each net by the mean of all their seeds, and
`--proxy-from` scores an earlier run's proxy against it without training it again.

Each net's figures are written to --out as they finish; a rerun with the same
--out skips nets already done (the full run takes hours of a 2-core CPU).
`--shard I/N` trains only every N-th net from the I-th, so N processes of one
thread each share the work and one --out file (each merges its rows into the
file under a lock); tau is printed once every net is in the file.

    python benchmarks/proxy_fidelity.py --dataset fashion-mnist --data-root ../shared/data --out fidelity.json
    # both cores:  ... --shard 0/2 &  ... --shard 1/2
    # another proxy, judged against the full trainings of an earlier run (they do not depend on the proxy):
    python benchmarks/proxy_fidelity.py ... --proxy-precision bfloat16 --full-from fidelity.json \
        --out fidelity-bf16.json
    # another judge seed on this CPU (bfloat16: 1.1-2x quicker per net), then the same proxy against both seeds:
    python benchmarks/proxy_fidelity.py ... --full-only --full-seeds 1 --full-precision bfloat16 --out judge-s1.json
    python benchmarks/proxy_fidelity.py ... --proxy-precision bfloat16 --full-from fidelity.json,judge-s1.json \
        --proxy-from fidelity-bf16.json --out fidelity-bf16-judge2.json
    # the judge alone, three seeds, on a GPU (one process per net: eager steps are bound by the launching CPU):
    for i in $(seq 0 11); do python benchmarks/proxy_fidelity.py ... --full-only --full-device cuda \
        --full-seeds 0,1,2 --shard $i/12 --out judge.json & done; wait
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import statistics
import time
from itertools import combinations
from pathlib import Path

import torch

from reszoo.errors import InputError
from reszoo.search.proxy import CAPACITY_WEIGHT, PROXY_RECIPE, Proxy, epoch_score, proxy_data
from reszoo.search.results import fitted_preset
from reszoo.search.space import SearchSpace
from reszoo.train.data import load as load_dataset
from reszoo.train.loop import train
from reszoo.train.recipes import ONECYCLE
from reszoo.zoo.counting import count


def kendall_tau_b(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b (ties in either ranking counted as scipy.stats.kendalltau does)."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)) ** 0.5
    return (concordant - discordant) / denominator if denominator else 0.0


def merge_into(out: Path, settings: dict, row: dict) -> dict[str, dict]:
    """Add one net's row to --out and return every row there, by digest.

    Shards write the same file: the read-merge-write happens under an
    exclusive lock, and the file is replaced atomically, so neither shard
    loses the other's rows."""
    with open(out.with_suffix(out.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = {r["digest"]: r for r in json.loads(out.read_text())["nets"]} if out.exists() else {}
        rows[row["digest"]] = row
        partial = out.with_suffix(out.suffix + f".{os.getpid()}")
        partial.write_text(json.dumps({"settings": settings, "nets": list(rows.values())}, indent=2))
        partial.replace(out)
    return rows


def merged_judge(paths: list[str], settings: dict, full_from: dict[str, dict], error) -> dict:
    """Fill full_from (digest -> the judge's row) from one or more earlier --out files, and return the
    settings that say which judge this is.

    Several files are several seeds of one judge, trained apart (on another day, device or precision):
    each net is judged by the mean top-1 over every file's seeds, so only nets all of them hold count.
    A file without full_by_seed holds one training, of its --seed."""
    same = ("dataset", "seed", "full_epochs", "within")
    per_seed: dict[str, dict] = {}  # seed -> that training's settings (device, precision)
    rows_by_file = []
    for path in paths:
        if not Path(path).is_file():
            error(f"--full-from {path}: no such file; give the --out of an earlier run")
        earlier = json.loads(Path(path).read_text())
        if any(earlier["settings"].get(key) != settings[key] for key in same):
            error(
                f"--full-from {path}: its full trainings had other settings "
                f"({ {key: earlier['settings'].get(key) for key in same} }, this run: "
                f"{ {key: settings[key] for key in same} })"
            )
        seeds = [str(seed) for seed in earlier["settings"].get("full_seeds", [earlier["settings"]["seed"]])]
        for seed in seeds:
            if seed in per_seed:
                error(
                    f"--full-from {path}: full-training seed {seed} is also in {per_seed[seed]['file']}; "
                    f"give each seed once"
                )
            per_seed[seed] = {
                "file": path,
                "full_device": earlier["settings"].get("full_device", "cpu"),
                "full_precision": earlier["settings"].get("full_precision", "float32"),
            }
        rows_by_file.append(
            {
                row["digest"]: {**row, "full_by_seed": row.get("full_by_seed", {seeds[0]: row["full"]})}
                for row in earlier["nets"]
                if "full" in row
            }
        )
    for digest in set.intersection(*(set(rows) for rows in rows_by_file)):
        by_seed = {seed: top1 for rows in rows_by_file for seed, top1 in rows[digest]["full_by_seed"].items()}
        full_from[digest] = {
            "full": statistics.fmean(by_seed.values()),
            "full_by_seed": by_seed,
            "full_seconds": sum(rows[digest].get("full_seconds", 0.0) for rows in rows_by_file),
        }
    judge = {"full_seeds": [int(seed) for seed in per_seed]}  # in the files' order, as one file's were kept
    if len(paths) == 1 and "full_seeds" not in earlier["settings"]:
        judge = {}  # one judge of --seed alone: recorded as before, so earlier runs still resume
        for row in full_from.values():
            del row["full_by_seed"]
    for key, default in (("full_device", "cpu"), ("full_precision", "float32")):
        values = {seed: trained[key] for seed, trained in per_seed.items()}
        if set(values.values()) != {default}:  # one value, or which seed had which when they differ
            judge[key] = next(iter(values.values())) if len(set(values.values())) == 1 else values
    return judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--nets", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw and of every training")
    parser.add_argument("--proxy-images", type=int, default=3000, help="as reszoo search's default")
    parser.add_argument("--val-images", type=int, default=1000)
    parser.add_argument("--proxy-epochs", type=int, default=3)
    parser.add_argument(
        "--proxy-batch-size",
        type=int,
        default=PROXY_RECIPE.batch_size,
        help=f"as reszoo search's default ({PROXY_RECIPE.batch_size})",
    )
    parser.add_argument(
        "--proxy-seed",
        type=int,
        default=None,
        help="seed of the proxy's data split and training (default --seed): another one shows how "
        "much of tau is the proxy's own noise",
    )
    parser.add_argument(
        "--proxy-precision",
        default="float32",
        choices=("float32", "bfloat16"),
        help="the proxy's training precision (bfloat16: autocast)",
    )
    parser.add_argument(
        "--proxy-set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change one field of the proxy's recipe, e.g. lr=0.05 or pct_start=0.4 (repeatable): "
        "a proxy variant to judge before the search adopts it",
    )
    parser.add_argument("--full-epochs", type=int, default=5)
    parser.add_argument(
        "--full-seeds",
        default=None,
        help="seeds of the full trainings, e.g. 0,1,2: each net is judged by their mean top-1 (default: --seed alone)",
    )
    parser.add_argument("--full-device", default="cpu", help="device of the full trainings (cpu, cuda, cuda:N)")
    parser.add_argument(
        "--full-precision",
        default="float32",
        choices=("float32", "bfloat16"),
        help="the full trainings' precision (bfloat16: autocast; on a CPU with AMX 1.1-2x "
        "quicker per net, which makes another judge seed affordable there)",
    )
    parser.add_argument(
        "--full-only", action="store_true", help="train the full trainings alone (no proxy): a judge for --full-from"
    )
    parser.add_argument(
        "--within",
        default="resnet20",
        help="draw only nets with at most this preset's MACs (the default search's region); 'none': the whole space",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="proxy-fidelity.json")
    parser.add_argument(
        "--full-from",
        default=None,
        help="take the full trainings from this earlier --out (same data set, seed, full epochs, nets); "
        "nets it lacks are skipped. Several files, comma-separated, each of other full-training "
        "seeds, judge each net by the mean of all their seeds",
    )
    parser.add_argument(
        "--proxy-from",
        default=None,
        help="take the proxy trainings from this earlier --out (same data set, seed and proxy "
        "settings): a proxy scored against another judge without training it again",
    )
    parser.add_argument("--shard", default="0/1", help="I/N: train only nets I, I+N, I+2N, ... (0-based)")
    parser.add_argument(
        "--report-only", action="store_true", help="train nothing: print the figures of what --out holds"
    )
    args = parser.parse_args()
    try:
        shard, shards = (int(part) for part in args.shard.split("/"))
        assert 0 <= shard < shards
    except (ValueError, AssertionError):
        parser.error(f"--shard {args.shard!r}: expected I/N with 0 <= I < N, for example 0/2")
    if args.nets < 3:
        parser.error(f"--nets {args.nets}: a ranking needs at least 3 nets (the issue asks for 12)")
    try:
        full_seeds = [args.seed] if args.full_seeds is None else [int(s) for s in args.full_seeds.split(",")]
        assert full_seeds and len(set(full_seeds)) == len(full_seeds)
    except (ValueError, AssertionError):
        parser.error(f"--full-seeds {args.full_seeds!r}: expected distinct integers separated by commas, e.g. 0,1,2")
    if args.full_only and args.full_from:
        parser.error("--full-only trains the full trainings, --full-from takes them from a file: give one of them")
    torch.set_num_threads(args.threads)

    dataset = load_dataset(args.dataset, root=args.data_root)
    space = SearchSpace().with_overrides(
        num_classes=dataset.num_classes, in_chans=dataset.in_chans, input_size=dataset.input_size
    )
    max_macs = None if args.within == "none" else count(fitted_preset(args.within, space)).macs
    rng, specs = random.Random(args.seed), {}
    while len(specs) < args.nets:  # distinct nets, drawn as the search's uniform start-up draws are
        spec = space.sample(rng)
        if max_macs is None or count(spec).macs <= max_macs:
            specs.setdefault(spec.digest, spec)
    proxy_changes = {}
    for change in args.proxy_set:
        field, equals, value = change.partition("=")
        if not equals or not value or field in ("epochs", "batch_size"):
            parser.error(
                f"--proxy-set {change!r}: expected FIELD=VALUE of the proxy's recipe, e.g. lr=0.05 "
                f"(epochs and batch size have --proxy-epochs and --proxy-batch-size)"
            )
        try:
            proxy_changes[field] = json.loads(value)
        except json.JSONDecodeError:
            proxy_changes[field] = value  # a word, e.g. schedule=cosine
    try:
        proxy_recipe = PROXY_RECIPE.with_overrides(
            epochs=args.proxy_epochs, batch_size=args.proxy_batch_size, **proxy_changes
        )
    except (InputError, TypeError) as exc:
        parser.error(f"--proxy-set {' '.join(args.proxy_set)}: {exc}")
    proxy_seed = args.seed if args.proxy_seed is None else args.proxy_seed
    proxy = None if args.full_only else proxy_data(dataset, args.proxy_images, args.val_images, proxy_seed)
    out = Path(args.out)
    settings = {
        key: value
        for key, value in vars(args).items()
        if key
        not in (
            "out",
            "threads",
            "nets",
            "shard",
            "full_from",
            "proxy_from",
            "proxy_precision",
            "proxy_set",
            "proxy_seed",
            "full_seeds",
            "full_device",
            "full_precision",
            "full_only",
            "report_only",
        )
    }
    if args.proxy_precision != "float32":  # kept out of a float32 run's settings, so earlier runs still resume
        settings["proxy_precision"] = args.proxy_precision
    if args.proxy_seed is not None:
        settings["proxy_seed"] = args.proxy_seed
    if proxy_changes:
        settings["proxy_recipe_changes"] = proxy_changes
    # Like the two above, the judge's new settings are recorded only when given, so earlier files still resume.
    if args.full_seeds is not None:
        settings["full_seeds"] = full_seeds
    if args.full_device != "cpu":
        settings["full_device"] = args.full_device
    if args.full_precision != "float32":
        settings["full_precision"] = args.full_precision
    if args.full_only:
        settings["full_only"] = True
    full_from: dict[str, dict] = {}
    if args.full_from:
        if args.full_seeds is not None or args.full_device != "cpu" or args.full_precision != "float32":
            parser.error(
                f"--full-from {args.full_from} takes its full trainings' seeds, device and precision from "
                f"the file(s); drop --full-seeds, --full-device and --full-precision"
            )
        settings.update(merged_judge(args.full_from.split(","), settings, full_from, parser.error))
    proxy_from: dict[str, dict] = {}
    if args.proxy_from:
        if args.full_only:
            parser.error("--full-only trains no proxy: drop --proxy-from")
        if not Path(args.proxy_from).is_file():
            parser.error(f"--proxy-from {args.proxy_from}: no such file; give the --out of an earlier run")
        earlier = json.loads(Path(args.proxy_from).read_text())
        same = (
            "dataset",
            "seed",
            "within",
            "proxy_images",
            "val_images",
            "proxy_epochs",
            "proxy_batch_size",
            "proxy_precision",
            "proxy_seed",
            "proxy_recipe_changes",
        )

        def proxy_settings(given: dict) -> dict:  # absent keys had their defaults (recorded only when given)
            defaults = {"proxy_precision": "float32", "proxy_seed": given.get("seed")}
            return {key: given.get(key, defaults.get(key)) for key in same}

        then, now = proxy_settings(earlier["settings"]), proxy_settings(settings)
        if then != now:
            parser.error(
                f"--proxy-from {args.proxy_from}: its proxy had other settings "
                f"({ {k: v for k, v in then.items() if now[k] != v} }, this run: "
                f"{ {k: v for k, v in now.items() if then[k] != v} })"
            )
        proxy_from = {
            row["digest"]: {key: value for key, value in row.items() if key.startswith("proxy")}
            for row in earlier["nets"]
            if "proxy" in row
        }
        if not proxy_from:
            parser.error(
                f"--proxy-from {args.proxy_from}: it holds no proxy runs (a --full-only judge?); give the "
                f"--out of a run that trained the proxy"
            )
    done = {}
    if out.exists():  # a rerun resumes, but only a run of the same settings
        stored = json.loads(out.read_text())
        if stored["settings"] != settings:
            parser.error(f"{out} holds a run with other settings ({stored['settings']}); give another --out")
        done = {row["digest"]: row for row in stored["nets"]}
    region = "the whole default space" if max_macs is None else f"the default space within {args.within}'s MACs"
    judge = settings.get("full_seeds", [args.seed])
    print(
        f"{args.nets} nets of {region} on {dataset.name}; "
        + ("" if args.full_only else f"proxy {args.proxy_images} images x {args.proxy_epochs} epochs, ")
        + f"full {len(dataset.train)} images x {args.full_epochs} epochs, seed(s) {judge} on "
        f"{settings.get('full_device', 'cpu')} in {settings.get('full_precision', 'float32')}; "
        f"{args.threads} thread(s)",
        flush=True,
    )

    def unfinished(row: dict | None) -> bool:
        """Still to train here: the proxy, or a full-training seed (a net's row is kept per seed)."""
        if row is None or (not args.full_only and "proxy" not in row) or "full" not in row:
            return True
        return not args.full_from and args.full_seeds is not None and len(row.get("full_by_seed", {})) < len(full_seeds)

    for index, spec in enumerate(specs.values(), 1):
        if args.report_only or (index - 1) % shards != shard:
            continue
        row = done.get(spec.digest)
        if unfinished(row) and args.full_from and spec.digest not in full_from:
            print(f"{index:>3}/{args.nets} not in {args.full_from} yet: skipped (run again once it is)", flush=True)
            continue
        if unfinished(row):
            row = row or {"digest": spec.digest, "summary": spec.summary(), "params": count(spec).params}
            if not args.full_only and "proxy" not in row and spec.digest in proxy_from:
                row.update(proxy_from[spec.digest])
            elif args.proxy_from and "proxy" not in row:
                print(f"{index:>3}/{args.nets} not in {args.proxy_from}: its proxy is trained here", flush=True)
            if not args.full_only and "proxy" not in row:
                started = time.perf_counter()
                scored = train(spec, proxy, proxy_recipe, seed=proxy_seed, precision=args.proxy_precision)
                row.update(
                    proxy=scored.metrics["top1"],
                    proxy_val_loss=scored.metrics["loss"],
                    proxy_train_loss=scored.history[-1]["train_loss"],  # the last epoch's mean
                    proxy_train_losses=[epoch["train_loss"] for epoch in scored.history],
                    proxy_seconds=time.perf_counter() - started,
                )
                done = merge_into(out, settings, row)  # kept before the (long) full trainings
            if spec.digest in full_from:
                row.update(
                    {
                        key: value
                        for key, value in full_from[spec.digest].items()
                        if key in ("full", "full_by_seed", "full_seconds")
                    }
                )
            else:
                by_seed = dict(row.get("full_by_seed", {}))
                for seed in (s for s in full_seeds if str(s) not in by_seed):
                    started = time.perf_counter()
                    by_seed[str(seed)] = train(
                        spec,
                        dataset,
                        ONECYCLE.with_overrides(epochs=args.full_epochs),
                        seed=seed,
                        device=args.full_device,
                        precision=args.full_precision,
                    ).metrics["top1"]
                    # Kept per seed, the mean of the seeds so far: a run stopped by a time limit
                    # still leaves a judge (of fewer seeds), and loses one training at most.
                    row["full"] = statistics.fmean(by_seed.values())
                    row["full_seconds"] = row.get("full_seconds", 0.0) + time.perf_counter() - started
                    if args.full_seeds is not None:
                        row["full_by_seed"] = by_seed
                        if len(by_seed) < len(full_seeds):
                            done = merge_into(out, settings, row)
                            print(
                                f"{index:>3}/{args.nets} full-training seed {seed}: {100 * by_seed[str(seed)]:6.2f}% "
                                f"({row['full_seconds']:.0f} s so far)",
                                flush=True,
                            )
        done = merge_into(out, settings, row)
        proxy_part = "" if "proxy" not in row else f"proxy {100 * row['proxy']:6.2f}%  "
        seconds = ("" if "proxy" not in row else f"{row['proxy_seconds']:5.0f} s + ") + f"{row['full_seconds']:5.0f} s"
        print(
            f"{index:>3}/{args.nets} {proxy_part}full {100 * row['full']:6.2f}%  "
            f"{row['params'] / 1e6:5.2f}M  {seconds}  {row['summary']}",
            flush=True,
        )

    done = {r["digest"]: r for r in json.loads(out.read_text())["nets"]} if out.exists() else {}
    rows = [
        done[digest]
        for digest in specs
        if "full" in done.get(digest, {}) and (args.full_only or "proxy" in done[digest])
    ]
    if len(rows) < len(specs):
        print(f"{len(rows)} of {len(specs)} nets in {out}; tau once the other shards finish")
        return
    counts = sorted({len(r.get("full_by_seed", {0: 0})) for r in rows})
    if counts[0] < len(settings.get("full_seeds", [args.seed])):
        print(
            f"the judge is short of seeds (a run stopped early): nets have {'/'.join(map(str, counts))} of "
            f"{len(settings['full_seeds'])}; each is judged by the mean of its own"
        )
    full = [r["full"] for r in rows]
    tau_params = kendall_tau_b([float(r["params"]) for r in rows], full)
    seeds = sorted(set.intersection(*(set(r.get("full_by_seed", {})) for r in rows)), key=int)  # every net's
    if len(seeds) > 1:  # how far one seed's ranking is from another's: the ceiling against one seed
        pairs = [
            kendall_tau_b([r["full_by_seed"][a] for r in rows], [r["full_by_seed"][b] for r in rows])
            for a, b in combinations(seeds, 2)
        ]
        print(
            f"the judge: mean top-1 of {len(seeds)} full-training seeds; seed against seed: tau "
            f"{', '.join(f'{t:.3f}' for t in pairs)} (mean {statistics.fmean(pairs):.3f})"
        )
    if args.full_only:
        print(
            f"{len(rows)} nets judged; the parameter count ranks them with tau {tau_params:.3f}. "
            f"Score proxies against this file with --full-from {out}"
        )
        return

    # Each score of the same proxy runs, higher is better (so a loss is negated); files
    # written before the losses were recorded lack them.
    def ranking(key: str, sign: float) -> list[float] | None:
        return [sign * r[key] for r in rows] if all(key in r for r in rows) else None

    def with_capacity(weight: float) -> list[float] | None:  # the search's train-loss+params at another weight
        if not all("proxy_train_loss" in r for r in rows):
            return None
        return [
            epoch_score({"train_loss": r["proxy_train_loss"]}, "train-loss+params", r["params"], weight) for r in rows
        ]

    scores = {
        "train-loss+params": (
            f"last epoch's training loss less {CAPACITY_WEIGHT} ln(params)",
            with_capacity(CAPACITY_WEIGHT),
        ),
        "train-loss": ("last epoch's training loss", ranking("proxy_train_loss", -1)),
        "top1": ("validation top-1", ranking("proxy", 1)),
        "val-loss": ("validation loss", ranking("proxy_val_loss", -1)),
    }
    for key, (name, ranked) in sorted(scores.items(), key=lambda item: item[0] != Proxy().score):
        tau = kendall_tau_b(ranked, full) if ranked is not None else None
        figure = "not recorded in this file" if tau is None else f"{tau:.3f}"
        if key == Proxy().score:  # the search's own score first, against the baseline
            ratio = f"ratio {tau / tau_params:.2f}" if tau is not None and tau_params else ""
            print(
                f"Kendall tau-b against full training: the search's score (the proxy's {name}) {figure}  "
                f"parameter count {tau_params:.3f}  {ratio}  (target: >= 0.6)"
            )
        else:
            print(f"  the proxy's {name} as the score: tau {figure}")
    if scores["train-loss"][1] is not None:  # how much the capacity term's weight matters
        print(
            "  training loss less WEIGHT ln(params), by weight: "
            + ", ".join(
                f"{weight}: {kendall_tau_b(with_capacity(weight), full):.3f}" for weight in (0.02, 0.05, 0.1, 0.2, 0.3)
            )
        )
    if len(seeds) > 1 and scores[Proxy().score][1] is not None:
        against = [kendall_tau_b(scores[Proxy().score][1], [r["full_by_seed"][seed] for r in rows]) for seed in seeds]
        print(
            f"  the search's score against each full-training seed alone: tau {', '.join(f'{t:.3f}' for t in against)}"
        )


if __name__ == "__main__":
    main()
