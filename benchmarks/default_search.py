"""The README's first search, as a new user runs it: `reszoo search --data-root DIR --seed S`.

Each seed runs the command line in a fresh $RESZOO_HOME (no latency rows,
no predictor table, no studies: a fresh clone's first run) and is timed from
process start to exit. Baseline, same run: resnet20, the reference the
command trains on the same proxy and whose latency is the limit. A seed is
won when the best net is another net, more accurate than resnet20 on the
proxy, at no more than resnet20's latency. Then the issue's impossible limit
(`--dataset synthetic --device cpu --max-latency-ms 0.000001 --trials 3`),
which must exit 1 within seconds.

Targets (issue "search that pays off"): >= 4 of 5 seeds won, each run
<= 240 s, the impossible limit <= 10 s. Run it on an otherwise idle machine:
the search times nets.

    python benchmarks/default_search.py --data-root ../shared/data --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def run_cli(args: list[str], home: str) -> tuple[int, float, str, str]:
    env = {**os.environ, "RESZOO_HOME": home}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "reszoo", *args], env=env, capture_output=True, text=True)
    return done.returncode, time.perf_counter() - started, done.stdout, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--out", default=None, help="write every seed's result JSON here")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    root = ["--data-root", args.data_root] if args.data_root else []

    rows, results = [], {}
    print(f"{'seed':>4} {'wall s':>7} {'trained':>7} {'screened':>8} {'best %':>7} {'resnet20 %':>10} "
          f"{'ratio':>6} {'ms / limit':>10}  won  best net", flush=True)
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="reszoo-home-") as home:
            rc, wall, out, err = run_cli(["search", *root, "--seed", str(seed), "--json"], home)
        if rc not in (0, 1) or not out.strip():
            sys.exit(f"seed {seed}: reszoo search exited {rc}\n{err[-2000:]}")
        result = json.loads(out)
        results[seed] = {"wall_s": wall, "exit": rc, **result}
        ref = result["references"]["resnet20"]
        top = result["best"][0] if result["best"] else None
        won = (top is not None and ref["accuracy"] is not None and top["spec"] != ref["spec"]
               and top["accuracy"] > ref["accuracy"] and top["latency_ms"] <= result["max_latency_ms"])
        rows.append((seed, wall, won))
        best_acc = 100 * top["accuracy"] if top else float("nan")
        ref_acc = 100 * ref["accuracy"] if ref["accuracy"] is not None else float("nan")
        print(f"{seed:>4} {wall:7.1f} {result['feasible']:>7} {result['screened_draws']:>8} {best_acc:7.2f} "
              f"{ref_acc:10.2f} {best_acc / ref_acc:6.3f} {top['latency_ms'] / result['max_latency_ms'] if top else 0:10.3f}"
              f"  {'yes' if won else 'no ':3}  {top['summary'] if top else '-'}", flush=True)
    won = sum(1 for _, _, w in rows if w)
    print(f"won {won} of {len(rows)} seeds (target >= 4 of 5); slowest {max(w for _, w, _ in rows):.1f} s, "
          f"mean {sum(w for _, w, _ in rows) / len(rows):.1f} s (target <= 240 s)", flush=True)

    with tempfile.TemporaryDirectory(prefix="reszoo-home-") as home:
        rc, wall, _, err = run_cli(["search", "--dataset", "synthetic", "--device", "cpu", "--max-latency-ms",
                                    "0.000001", "--trials", "3"], home)
    said = " ".join(err.split())
    print(f"impossible limit: exit {rc} in {wall:.1f} s (target: exit 1 in <= 10 s; {wall / 10:.2f} of the target)")
    print(f"  it said: {said[-400:]}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"seeds": results, "impossible": {"exit": rc, "wall_s": wall, "said": said}}, f, indent=2)


if __name__ == "__main__":
    main()
