"""Check that optuna-dashboard shows a reszoo study's trials and which of them are infeasible.

Runs a small reszoo search (synthetic data, a tiny space, CPU latency) into a
journal file, with a limit between its fastest and its largest net and the
largest enqueued first, so the study holds both feasible and infeasible
trials. Then starts optuna-dashboard on the journal (in a thread), loads the study's page in
headless Chromium, and checks that every trial number shows and that the
dashboard files the infeasible trials as "Infeasible" (its timeline sorts
complete trials with a violated constraint under that name). Saves a
screenshot.

Needs ``pip install optuna-dashboard`` and Debian's ``chromium``; takes about
a minute on a 2-core CPU, so it stays out of the test suite::

    python tools/dashboard_check.py --screenshot /work/scratch/dashboard.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

STUDY = "dashboard-check"


def make_study(work: Path) -> tuple[str, list[dict]]:
    """A reszoo study in ``work``/studies.log with feasible and infeasible trials; returns its
    storage URL and, per trial, its number and feasibility as reszoo recorded them."""
    import reszoo
    from reszoo.latency.judge import LatencyTarget
    from reszoo.search import keys
    from reszoo.search.config import SearchConfig
    from reszoo.search.proxy import PROXY_RECIPE, Proxy
    from reszoo.search.runner import run
    from reszoo.search.space import SearchSpace
    from reszoo.search.storage import open_storage
    from reszoo.search.study import open_study

    space = SearchSpace(families=("residual", "plain"), blocks=("basic",), max_depth=2, base_widths=(4, 8, 16))
    registry = f"sqlite:///{work / 'registry.db'}"
    smallest, largest = space.fastest_candidates()[0], space.make_spec("residual", "basic", (2, 2, 2), 16, "C")
    fast, slow = (
        reszoo.latency(spec, device="cpu", registry=reszoo.Registry(registry)).median_ms for spec in (smallest, largest)
    )
    if slow <= fast:
        sys.exit(f"the largest net timed {slow:.3f} ms, no slower than the smallest ({fast:.3f} ms): run again")
    storage = f"journal:{work / 'studies.log'}"
    config = SearchConfig(
        dataset="synthetic:400",
        space=space,
        registry=registry,
        study=STUDY,
        storage=storage,
        startup_trials=3,
        proxy=Proxy(recipe=PROXY_RECIPE.with_overrides(epochs=1, batch_size=50), train_images=200, val_images=100),
        target=LatencyTarget(device="cpu", max_ms=(fast * slow) ** 0.5),
    )
    study = open_study(config, open_storage(storage), create=True)
    study.enqueue_trial(space.params_for(largest))  # over the limit: an infeasible trial for certain
    run(config, trials=3)
    study = open_study(config, open_storage(storage))
    return storage, [
        {"number": t.number, "feasible": t.user_attrs.get(keys.FEASIBLE), "state": t.state.name} for t in study.trials
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(journal: Path, port: int) -> None:
    """optuna-dashboard on ``journal``, in a thread of this process, once it answers."""
    import threading

    import optuna_dashboard
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(journal)))
    threading.Thread(target=optuna_dashboard.run_server, args=(storage, "127.0.0.1", port), daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit("optuna-dashboard did not answer within 60 s")


def browse(url: str, screenshot: Path | None) -> str:
    """The page's DOM after its scripts ran, in headless Chromium (and a screenshot)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no chromium on PATH: apt-get install -y chromium")
    common = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1400,1600",
        "--virtual-time-budget=15000",
    ]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*common, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120)
    return subprocess.run([*common, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, default=Path("dashboard.png"))
    parser.add_argument("--keep", type=Path, help="keep the study in this folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="reszoo-dashboard-"))
    work.mkdir(parents=True, exist_ok=True)
    storage, trials = make_study(work)
    print(json.dumps(trials))
    infeasible = [t["number"] for t in trials if t["feasible"] is False]
    assert infeasible and any(t["feasible"] for t in trials), trials
    port = free_port()
    serve(Path(storage.removeprefix("journal:")), port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as answer:
        study_id = next(s["study_id"] for s in json.load(answer)["study_summaries"] if s["study_name"] == STUDY)
    # What the dashboard's pages are drawn from: each trial's state and constraint values.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study_id}", timeout=30) as answer:
        served = {t["number"]: t for t in json.load(answer)["trials"]}
    for trial in trials:
        constraints = served[trial["number"]]["constraints"]
        if trial["feasible"] is not None:
            assert bool(constraints) and (max(constraints) > 0) == (not trial["feasible"]), (trial, constraints)
    dom = browse(f"http://127.0.0.1:{port}/dashboard/studies/{study_id}", args.screenshot)
    missing = [n for n in served if f"#{n}" not in dom and f"Trial {n}" not in dom]
    assert "Infeasible" in dom, "the dashboard shows no trial as infeasible"
    assert not missing, f"trials {missing} do not show on the study page"
    print(
        f"optuna-dashboard shows all {len(served)} trials, {len(infeasible)} of them infeasible "
        f"(trials {infeasible}); screenshot {args.screenshot}"
    )


if __name__ == "__main__":
    main()
