"""Edges of training and the commands around it (issue 33): numbers checked at
the edge with one line naming the value, the range and what to do; weights files
given as checkpoints; devices that are not there; the decode status; Ctrl-C on
train and release; curves of nets trained alike."""

import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

import reszoo
from reszoo import DeviceError, InputError, Registry, TrainingError
from reszoo.cli.app import app
from reszoo.limits import LATENCY_MS, SEED, check_seed
from reszoo.train import ONECYCLE, PAPER, train
from reszoo.train.data import synthetic
from tests.helpers import REPO

runner = CliRunner()
TINY = reszoo.ArchSpec(stage_depths=(1, 1, 1), stage_widths=(4, 8, 16))


def one_line_error(args: list[str], *pieces: str, code: int = 2) -> str:
    """Run the CLI; it must refuse with exit ``code`` and one line holding every piece."""
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    for piece in pieces:
        assert piece in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize("flag, value", [("--lr", "inf"), ("--lr", "1e400"), ("--warmup-lr", "inf"), ("--lr", "nan")])
def test_a_learning_rate_that_is_not_finite_is_refused_before_training(flag, value):
    one_line_error(
        ["train", "resnet20", "-d", "synthetic:64", "--epochs", "1", flag, value],
        f"{flag} {value} is not a finite number",
        "give a finite number above 0",
    )
    with pytest.raises(InputError, match="lr inf is not a finite number"):
        ONECYCLE.with_overrides(lr=float("inf"))
    with pytest.raises(InputError, match="warmup_lr inf is not a finite number"):
        PAPER.with_overrides(warmup_lr=float("inf"))


@pytest.mark.parametrize(
    "value, problem", [("nan", "is not a finite number"), ("-5", "is out of range"), ("0", "is out of range")]
)
def test_list_latency_limit_is_positive_and_finite(value, problem):
    one_line_error(
        ["list", "--device", "cpu", "--max-latency-ms", value],
        f"--max-latency-ms {value} {problem}",
        "give a number above 0 and at most 3,600,000",
    )
    with pytest.raises(InputError, match=f"max_latency_ms {value} {problem}"):
        LATENCY_MS.check(float(value) if value == "nan" else int(value), "max_latency_ms")  # Registry.list's range


def test_seeds_fit_torch_numpy_and_optuna():
    huge = "99999999999999999999999"
    one_line_error(
        ["train", "resnet20", "-d", "synthetic:64", "--seed", huge],
        f"--seed {huge} is out of range",
        "from 0 to 2,147,483,647",
    )
    one_line_error(["bench", "--build-table", "--seed", "-1"], "--seed -1 is out of range")
    with pytest.raises(InputError, match="seed 99999999999999999999999 is out of range"):
        train(TINY, synthetic(train=64, test=16), ONECYCLE.with_overrides(epochs=1), seed=int(huge))
    assert check_seed(SEED.upper) == 2**31 - 1
    torch.manual_seed(SEED.upper * 1_000_003 * 7)  # the augmentation's mix of the largest seed fits torch


@pytest.mark.parametrize(
    "args, pieces",
    [
        (
            ["train", "resnet20", "-d", "synthetic", "--epochs", "0"],
            ["--epochs 0 is out of range", "from 1 to 100,000"],
        ),
        (["train", "resnet20", "-d", "synthetic", "--iterations", "1e9"], ["--iterations 1e9 is not a whole number"]),
        (
            ["train", "resnet20", "-d", "synthetic", "--batch-size", "99999999"],
            ["--batch-size 99999999 is out of range"],
        ),
        (["train", "resnet20", "-d", "synthetic", "--subset", "5"], ["--subset 5 is out of range"]),
        (
            ["train", "resnet20", "-d", "synthetic", "--threads", "100000"],
            ["--threads 100000 is out of range", "the cores this process may use"],
        ),
        (["train", "resnet20", "-d", "synthetic", "--lr", "abc"], ["--lr abc is not a number"]),
        (["eval", "x", "-d", "synthetic", "--test-subset", "-3"], ["--test-subset -3 is out of range"]),
        (["bench", "resnet20", "--batch-size", "0"], ["--batch-size 0 is out of range", "from 1 to 65,536"]),
        (["bench", "--build-table", "--random", "1000000"], ["--random 1000000 is out of range"]),
        (["bench", "resnet20", "--threads", "0"], ["--threads 0 is out of range"]),
        (["list", "--min-top1", "nan"], ["--min-top1 nan is not a finite number", "a fraction: 0.9 for 90%"]),
        (["list", "--min-top1", "90"], ["--min-top1 90 is out of range"]),
        (["list", "--device", "cpu", "--batch-size", "99999999999999999999"], ["--batch-size 99999999999999999999"]),
        (["release", "zoo.toml", "--into", "r.db", "--jobs", "100000"], ["--jobs 100000 is out of range"]),
    ],
)
def test_every_numeric_option_error_is_one_line_with_value_range_and_what_to_do(args, pieces):
    line = one_line_error(args, *pieces)
    assert "give " in line


def test_usage_errors_are_one_line_too():
    one_line_error(["train", "resnet20"], "Missing option '--dataset'", "reszoo train -h lists the options")
    one_line_error(["lsit"], "No such command 'lsit'", "reszoo -h lists the commands")


def test_recipe_fields_are_checked_as_a_recipe_is_made():
    for change, message in [
        ({"batch_size": 0}, "batch_size 0 is out of range"),
        ({"epochs": 2.5}, "epochs 2.5 is not a whole number"),
        ({"momentum": float("nan")}, "momentum nan is not a finite number"),
        ({"milestones": (0.5, 1.5)}, "milestone 1.5 is out of range"),
        ({"crop_padding": 10**6}, "crop_padding 1000000 is out of range"),
        ({"flip": "yes"}, "flip must be true or false"),
    ]:
        with pytest.raises(InputError, match=message):
            PAPER.with_overrides(**change)


def test_release_jobs_are_bounded_by_the_cores(tmp_path):
    from reszoo.release import build_release, read_manifest
    from tests.release.test_release import write_manifest

    manifest = read_manifest(write_manifest(tmp_path))
    with pytest.raises(InputError, match="jobs 1000 is out of range; give a whole number from 1 to"):
        build_release(manifest, Registry(tmp_path / "zoo.db"), device="cpu", jobs=1000)
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.safetensors"))


def test_the_option_range_shows_in_the_help():
    result = runner.invoke(app, ["train", "-h"])
    assert "0<x" in " ".join(result.output.split()) and "1<=x<=65,536" in " ".join(result.output.split())


# ---------------------------------------------------------------- files and devices


def test_a_weights_file_given_as_a_checkpoint_to_resume_is_refused(tmp_path):
    from safetensors.torch import save_file

    weights = tmp_path / "w.safetensors"
    save_file(reszoo.create_model("resnet20").state_dict(), str(weights))
    one_line_error(
        ["train", "resnet20", "-d", "synthetic:64", "--epochs", "1", "--checkpoint", str(weights), "--resume"],
        f"{weights} is not a training checkpoint",
        "give the file --checkpoint wrote",
        code=1,
    )
    with pytest.raises(TrainingError, match="is not a training checkpoint"):
        train(TINY, synthetic(train=64, test=16), ONECYCLE.with_overrides(epochs=1), checkpoint=weights, resume=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_create_model_on_a_missing_gpu_is_a_device_error():
    for make in (
        lambda: reszoo.create_model("resnet20", device="cuda"),
        lambda: reszoo.create_model("resnet20", device="cuda:1"),
    ):
        with pytest.raises(DeviceError, match="this machine has no CUDA GPU"):
            make()
    with pytest.raises(DeviceError, match="not a device name"):
        reszoo.create_model("resnet20", device="gpu")
    assert next(reszoo.create_model("resnet20", device="meta").parameters()).is_meta


# ---------------------------------------------------------------- the training bar


def test_training_says_it_is_loading_the_data_before_the_first_step(monkeypatch):
    import reszoo.cli.train as cli_train
    import reszoo.train.data as data_module

    screen = io.StringIO()
    monkeypatch.setattr(cli_train, "err_console", Console(file=screen, force_terminal=True, width=200))
    seen = []

    def slow_decode(*args, **kwargs):
        seen.append(screen.getvalue())  # what the bar shows while the data set decodes
        raise reszoo.DatasetError("stopped here")

    monkeypatch.setattr(data_module, "load", slow_decode)
    result = runner.invoke(app, ["train", "resnet20", "-d", "cifar10", "--epochs", "1"])
    assert result.exit_code == 2 and "stopped here" in result.stderr
    assert "loading cifar10" in seen[0] and "about a minute" in seen[0]
    assert "nan" not in seen[0] and "0/?" not in seen[0]


# ---------------------------------------------------------------- Ctrl-C


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RESZOO_HOME": str(tmp_path / "home"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def _epochs_in(path: Path) -> int:
    from reszoo.train.checkpoints import load_checkpoint

    try:
        return load_checkpoint(path)[2]["epochs_done"]
    except (TrainingError, OSError):
        return 0


def _interrupt_when(process: subprocess.Popen, ready, timeout: float = 300) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()[1]
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


@pytest.mark.slow
def test_ctrl_c_on_train_keeps_the_checkpoint_and_prints_the_command_that_resumes(tmp_path):
    spec = tmp_path / "tiny.json"
    spec.write_text(TINY.to_json())
    checkpoint = tmp_path / "run.safetensors"
    args = [
        "train",
        str(spec),
        "-d",
        "synthetic:512",
        "--epochs",
        "400",
        "--batch-size",
        "64",
        "--checkpoint",
        str(checkpoint),
        "--force",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "reszoo", *args],
        env=_env(tmp_path),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    code, stderr = _interrupt_when(process, lambda: _epochs_in(checkpoint) >= 2)
    assert code == 130, stderr
    done = _epochs_in(checkpoint)
    assert f"{checkpoint} holds {done} finished epochs" in stderr and "interrupted: at step" in stderr
    again = stderr.split("to carry on: ", 1)[1].strip()
    assert shlex.split(again) == ["reszoo", *args[:-1], "--resume"]  # --force would start over
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # nothing half-written beside it

    # The printed command carries on from the checkpoint: its history goes on from there.
    before = json.dumps(_history(checkpoint)[:done])
    process = subprocess.Popen(
        [sys.executable, "-m", *shlex.split(again)],
        env=_env(tmp_path),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    code, stderr = _interrupt_when(process, lambda: _epochs_in(checkpoint) > done)
    assert code == 130 and json.dumps(_history(checkpoint)[:done]) == before, stderr


def _history(path: Path) -> list:
    from reszoo.train.checkpoints import load_checkpoint

    return load_checkpoint(path)[2]["history"]


@pytest.mark.slow
def test_ctrl_c_on_release_stops_its_workers_and_says_what_was_done(tmp_path):
    from tests.release.test_release import TINY as MANIFEST

    manifest = tmp_path / "zoo.toml"
    manifest.write_text(MANIFEST.replace("epochs = 2", "epochs = 500"))
    args = [
        "release",
        str(manifest),
        "--into",
        str(tmp_path / "zoo.db"),
        "--device",
        "cpu",
        "--jobs",
        "1",
        "--no-latency",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "reszoo", *args],
        env=_env(tmp_path),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    run = tmp_path / "home" / "release" / "tiny" / "cpu"
    code, stderr = _interrupt_when(process, lambda: any(_epochs_in(p) >= 1 for p in run.glob("resnet8-*.safetensors")))
    assert code == 130, stderr
    one = " ".join(stderr.split())
    assert "interrupted: stopped resnet8 (" in one and "in its checkpoint); not started plain8" in one, one
    assert one.endswith("to carry on: " + shlex.join(["reszoo", *args]))
    with pytest.raises(ProcessLookupError):  # the workers are gone too
        for _ in range(50):
            os.killpg(process.pid, 0)
            time.sleep(0.1)
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]
    assert _epochs_in(next(run.glob("resnet8-*.safetensors"))) >= 1
    assert Registry(tmp_path / "zoo.db").list() == []  # readable, and nothing half-published


# ---------------------------------------------------------------- curves


def _entry(registry, name, version, recipe, steps):
    history = [
        {"epoch": i + 1, "iteration": (i + 1) * steps, "train_err": 0.5 / (i + 1), "test_err": 0.6 / (i + 1)}
        for i in range(3)
    ]
    model = reszoo.create_model(TINY)
    return registry.add(
        name,
        model,
        version=version,
        dataset="cifar10",
        history=history,
        recipe={**recipe.to_dict(), "steps": 3 * steps},
        data={"label": "CIFAR-10 (JPEG q75)"},
    )


def test_curves_of_bare_names_share_one_recipe(tmp_path, monkeypatch):
    from reszoo.train.plots import alike

    zoo = Registry(tmp_path / "zoo.db")
    cpu, gpu = ONECYCLE.with_overrides(epochs=15), PAPER
    for name in ("plain20", "resnet20"):
        _entry(zoo, name, 1, cpu, 391)
        _entry(zoo, name, 2, gpu, 64_000)
    _entry(zoo, "resnet56", 1, cpu, 391)
    monkeypatch.setenv("RESZOO_REMOTE", str(tmp_path / "zoo.db"))
    out = tmp_path / "c.png"
    result = runner.invoke(app, ["plot", "curves", "plain20", "resnet56", "resnet20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "drew plain20@1 (not plain20@2), resnet20@1 (not resnet20@2)" in " ".join(result.stderr.split())
    picked = alike([(zoo.list(n, all_versions=True), None) for n in ("plain20", "resnet56", "resnet20")])
    assert [e.ref for e in picked] == ["plain20@1", "resnet56@1", "resnet20@1"]
    both = alike([(zoo.list(n, all_versions=True), None) for n in ("plain20", "resnet20")])
    assert [e.ref for e in both] == ["plain20@2", "resnet20@2"]  # the newest, where all have it
    one_line_error(
        ["plot", "curves", "plain20@2", "resnet56", "--out", str(out)],
        "plain20@2 (paper recipe, 64,000 iterations, batch 128) and resnet56@1 (onecycle recipe, 15 "
        "epochs (1,173 iterations), batch 128) were trained differently",
    )
    mixed = one_line_error(["plot", "curves", "plain20@2", "resnet20@1", "--out", str(out)], "trained differently")
    assert "draw plain20@2 resnet20@2 (trained alike)" in mixed  # the versions that can share an axis


def test_curves_title_names_data_set_and_recipe_and_the_legend_the_entries(tmp_path, monkeypatch):
    from reszoo.train import plots

    zoo = Registry(tmp_path / "zoo.db")
    entries = [
        _entry(zoo, "resnet8", 1, ONECYCLE.with_overrides(epochs=15), 391),
        _entry(zoo, "mine", 1, ONECYCLE.with_overrides(epochs=15), 391),
    ]
    drawn = {}
    monkeypatch.setattr(
        plots, "_draw", lambda figure, axes, plt, entries, out, title, labels: drawn.update(title=title)
    )
    plots.plot_curves(entries, tmp_path / "c.png")
    assert (
        plots.curves_title(entries) == "CIFAR-10 (JPEG q75), onecycle recipe, 15 epochs (1,173 iterations), batch 128"
    )
    assert [plots.curve_label(e) for e in entries] == ["resnet8@1", "mine@1 (residual-8)"]
