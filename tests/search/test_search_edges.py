"""reszoo search at its edges: worker counts, dying with the parent, Ctrl-C, how infeasible
trials are stored, the progress line, the Pareto picture, data set names, the API's functions."""

import inspect
import math
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from typer.testing import CliRunner

import reszoo
from reszoo.cli.app import app
from reszoo.errors import DatasetError
from reszoo.search import keys
from reszoo.search.processes import bound_workers
from reszoo.search.results import TrialResult, best, trial_results
from reszoo.search.runner import run
from reszoo.search.storage import open_storage
from reszoo.zoo.presets import get_spec
from tests.helpers import REPO, process_running
from tests.search.helpers import PERSISTENT_STORAGES, TINY_CLI, TINY_SPACE, config

runner = CliRunner()


def _env(tmp_path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "RESZOO_HOME": str(tmp_path / "home")}


# ------------------------------------------------------------------ workers


def test_workers_are_bounded_by_the_cores_and_the_trials_to_run(tmp_path, monkeypatch):
    from reszoo.search import runner as runner_module

    asked = {}

    class Stop(Exception):
        pass

    def fake_run(config, *, workers, **_):
        asked["workers"] = workers
        raise Stop

    monkeypatch.setattr(runner_module, "run", fake_run)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    said: list[str] = []
    with pytest.raises(Stop):
        reszoo.search(
            "synthetic:200",
            device="cpu",
            workers=100_000,
            trials=1,
            max_latency_ms=1e6,
            references=[],
            space=TINY_SPACE,
            proxy_images=100,
            val_images=50,
            storage=f"journal:{tmp_path / 'j.log'}",
            registry=str(tmp_path / "r.db"),
            log=said.append,
        )
    assert asked["workers"] == 1  # one process, not 100,000
    assert said == ["workers 100,000: this machine gives reszoo 2 usable cores and 1 trial to run; running 1 worker"]
    assert bound_workers(8, None, 2) == (2, "workers 8: this machine gives reszoo 2 usable cores; running 2 workers")
    assert bound_workers(2, 5, 2) == (2, None)


def test_a_worker_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path):
    parent_code = (
        "import time; from reszoo.search.processes import start_worker; "
        "worker = start_worker(time.sleep, (600,), 'w'); print(worker.pid, flush=True); time.sleep(600)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, env=_env(tmp_path), text=True
    )
    try:
        worker = int(parent.stdout.readline())
        time.sleep(1.0)  # the worker is up and watching
    finally:
        parent.kill()  # SIGKILL: the parent gets no chance to stop its workers itself
        parent.wait()
    deadline = time.monotonic() + 30
    while process_running(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process_running(worker), "the worker outlived its killed parent"


def test_ctrl_c_fails_the_interrupted_trials_shows_the_result_and_how_to_resume(tmp_path):
    journal = tmp_path / "j.log"
    args = TINY_CLI[:-2]  # without --workers 1
    command = [
        sys.executable,
        "-m",
        "reszoo",
        "--registry",
        str(tmp_path / "r.db"),
        "search",
        *args,
        "--workers",
        "2",
        "--max-latency-ms",
        "1000000",
        "--trials",
        "40",
        "--proxy-epochs",
        "3",
        "--study",
        "s",
        "--storage",
        f"journal:{journal}",
    ]
    search = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(tmp_path), text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and search.poll() is None:
            if journal.is_file() and b'"op_code":4' in journal.read_bytes().replace(b" ", b""):  # a trial was created
                break
            time.sleep(0.5)
        time.sleep(1.0)  # mid-trial
        assert search.poll() is None, search.communicate()
        os.kill(search.pid, signal.SIGINT)  # to the search alone: it must stop its workers itself
        out, err = search.communicate(timeout=120)
    finally:
        if search.poll() is None:
            search.kill()
    assert search.returncode == 130, err
    said = " ".join((out + err).split())
    assert "interrupted:" in said and "resume with: reszoo --registry" in said
    assert f"--study s --storage journal:{journal}" in said and "--trials 40" in said
    study = optuna.load_study(study_name="s", storage=open_storage(f"journal:{journal}"))
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states, states
    assert any(t.user_attrs.get(keys.FAIL_REASON) == "interrupted (Ctrl-C)" for t in study.trials)
    assert "marked failed" in said
    workers = {t.user_attrs[keys.WORKER]["pid"] for t in study.trials if keys.WORKER in t.user_attrs}
    assert workers and not any(process_running(pid) for pid in workers)  # none left behind


# -------------------------------------------------------- infeasible trials


def test_an_infeasible_trial_is_an_optuna_constraint_violation_with_no_made_up_score(
    tmp_path, fake_latency, study_storage
):
    from optuna.study._constrained_optimization import _get_feasible_trials

    study = run(config(tmp_path, max_ms=3.0, storage=study_storage), trials=4)
    infeasible = [t for t in study.trials if t.user_attrs[keys.FEASIBLE] is False]
    assert infeasible
    for trial in study.trials:
        over = trial.user_attrs[keys.LATENCY_MS] - 3.0
        # The list form: Optuna reads it, and it is the one optuna-dashboard reads.
        assert trial.system_attrs[keys.CONSTRAINTS] == [pytest.approx(over)]
        assert list(trial.constraints.values()) == [pytest.approx(over)]
    assert all(t.value == -math.inf for t in infeasible)  # never a score a trained net could have
    assert {t.number for t in _get_feasible_trials(study.trials)} == {
        t.number for t in study.trials if t.user_attrs[keys.FEASIBLE]
    }


@PERSISTENT_STORAGES
def test_a_study_with_trials_stored_the_old_way_resumes(tmp_path, fake_latency, study_storage):
    cfg = config(tmp_path, max_ms=3.0, storage=study_storage)
    study = optuna.create_study(study_name="s", storage=open_storage(cfg.storage), direction="maximize")
    study.set_user_attr(keys.SETTINGS, cfg.settings())
    spec = TINY_SPACE.make_spec("residual", "basic", (2, 2, 2), 16, "A")
    params = TINY_SPACE.params_for(spec)
    distributions = TINY_SPACE.distributions()
    study.add_trial(
        optuna.trial.create_trial(  # an infeasible trial as reszoo stored it before: -1000, new-format key
            params=params,
            distributions={name: distributions[name] for name in params},
            value=-1000.0,
            user_attrs={
                keys.SPEC: spec.to_dict(),
                keys.DIGEST: spec.digest,
                keys.LATENCY_MS: 9.0,
                keys.LATENCY_SOURCE: "measured",
                keys.FEASIBLE: False,
            },
            system_attrs={"constraints:latency_over_limit_ms": 6.0},
        )
    )
    resumed = run(cfg, trials=1)
    results = trial_results(resumed)
    assert len(results) >= 2 and results[0].feasible is False
    assert best(results) and best(results)[0].number != 0


# ------------------------------------------------------- what the CLI shows


def test_the_progress_line_says_when_the_search_should_end():
    from reszoo.cli.search_report import eta_text

    assert eta_text(60.0, 2, 6, None) == "eta 2:00"  # 4 trained trials left at 30 s each
    assert eta_text(60.0, 2, 6, 90.0) == "eta 0:30"  # the timeout comes first
    assert eta_text(60.0, 0, None, 300.0) == "eta 4:00"
    assert eta_text(5.0, 0, 6, None) == "eta -"  # no pace to go by yet
    assert eta_text(7200.0, 1, 3, None) == "eta 4:00:00"


def test_the_pareto_picture_gives_untrained_trials_no_accuracy_and_keeps_its_title():
    from reszoo.search.plots import pareto_figure

    spec = get_spec("resnet20")
    trained = TrialResult(0, "COMPLETE", spec, 272474, 0.8, 1.5, "measured", True, None)
    over = TrialResult(1, "COMPLETE", spec, 272474, None, 5.0, "rough", False, None)
    title = (
        "a-long-study-name-" * 8 + ": cifar10, batch-1 eager latency on cpu AMD EPYC 7B13 (2 threads), limit 1.78 ms"
    )
    figure = pareto_figure([trained, over], max_ms=1.78319, title=title)
    accuracy_axes = figure.axes[0]
    drawn = [tuple(point) for c in accuracy_axes.collections for point in c.get_offsets()]
    assert (1.5, 80.0) in drawn and not any(x == 5.0 for x, _ in drawn)  # the untrained trial has no height here
    strip = figure.axes[1]
    assert [tuple(p) for c in strip.collections for p in c.get_offsets()] == [(5.0, 0.0)]
    assert not strip.get_yticks().size  # the strip has no accuracy scale
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "limit 1.78 ms" in labels
    figure.canvas.draw()
    box, page = accuracy_axes.title.get_window_extent(), figure.bbox
    assert box.x0 >= page.x0 and box.x1 <= page.x1 and box.y1 <= page.y1  # not clipped
    import matplotlib.pyplot as plt

    plt.close(figure)


def test_a_misspelt_data_set_name_gets_a_suggestion(tmp_path):
    from reszoo.train.data import load

    with pytest.raises(DatasetError, match=r"did you mean 'cifar10'\?"):
        load("cifar")
    result = runner.invoke(app, ["--registry", str(tmp_path / "r.db"), "search", "-d", "cifar"])
    assert result.exit_code == 2 and "did you mean 'cifar10'?" in " ".join(result.output.split())


# ----------------------------------------------------------------- the API


def test_search_and_latency_are_plain_functions_a_type_checker_can_follow():
    for function, parameter in ((reszoo.search, "max_latency_ms"), (reszoo.latency, "remeasure")):
        assert inspect.isfunction(function), function
        assert parameter in inspect.signature(function).parameters
    from reszoo.latency import measure
    from reszoo.search import api

    assert reszoo.search is api.search and inspect.isfunction(reszoo.latency)  # still, after the subpackages load
    assert measure.latency is not reszoo.latency  # the top-level one delegates, so `import reszoo` stays light
