"""``reszoo release``: the manifest, building a release idempotently, resuming,
the size cap, the float16 rule, shipping from another registry, and the
scheduler's pieces (nets on streams together, the group monitor)."""

import dataclasses
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from reszoo import LatencyRecord, Registry
from reszoo.cli.app import app
from reszoo.errors import ManifestError
from reszoo.release import build_release, parse_duration, read_manifest
from reszoo.release.build import plan_nets, run_folder
from reszoo.release.manifest import KINDS
from reszoo.release.report import degradation_checks, write_report, zoo_table
from reszoo.release.worker import BudgetExceeded, Deferred, GroupMonitor, keep_float16
from reszoo.train.data import load as load_dataset
from reszoo.train.loop import TrainingRun, train, train_many
from reszoo.train.recipes import ONECYCLE
from reszoo.train.steps import default_precision
from reszoo.zoo.presets import get_spec
from tests.helpers import REPO, child_pids, process_running

TINY = """
pairs = [["resnet8", "plain8"]]

[release]
name = "tiny"
dataset = "synthetic:192"
seed = 1
docs = "docs"
float16_tolerance = 1.0

[recipes.cpu]
base = "onecycle"
epochs = 2
batch_size = 64
version = 1

[recipes.cuda]
base = "paper"
iterations = 100
version = 2

[[entries]]
name = "resnet8"
preset = "resnet20"
overrides = { stage_depths = [1, 1, 1], stage_widths = [4, 8, 16] }
paper_error = 8.75

[[entries]]
name = "plain8"
preset = "plain20"
overrides = { stage_depths = [1, 1, 1], stage_widths = [4, 8, 16] }

[[figures]]
file = "pair.png"
entries = ["plain8", "resnet8"]
title = "tiny pair"
"""


def write_manifest(folder: Path, text: str = TINY) -> Path:
    path = folder / "zoo.toml"
    path.write_text(text)
    return path


def quiet(_message: str) -> None:
    pass


# ---------------------------------------------------------------- manifest


def test_the_shipped_manifest_declares_the_zoo_in_priority_order():
    manifest = read_manifest(REPO / "zoo.toml")
    names = [e.name for e in manifest.entries]
    assert names[:6] == ["resnet20", "plain20", "resnet56", "plain56", "resnet34", "plain34"]
    assert set(manifest.recipes) == set(KINDS)
    assert manifest.recipe_for("resnet20", "cpu").schedule == "onecycle"
    paper = manifest.recipe_for("resnet20", "cuda")
    assert (paper.iterations, paper.milestones, paper.lr, paper.batch_size) == (64_000, (0.5, 0.75), 0.1, 128)
    assert manifest.recipe_for("resnet110", "cuda").warmup_lr == 0.01  # the paper's warm-up, and only there
    assert manifest.recipe_for("resnet110", "cpu").warmup_lr is None
    assert ("resnet20", "plain20") in manifest.pairs
    assert manifest.recipe_key("resnet20", "cpu") == manifest.recipe_key("plain20", "cpu")
    assert manifest.recipe_key("resnet20", "cpu") != manifest.recipe_key("resnet20", "cuda")
    # The presets as they are: resnet34 keeps its ImageNet stem (it loads into timm's resnet34).
    assert manifest.entry("resnet34").spec.stem == "imagenet"


@pytest.mark.parametrize(
    "change, message",
    [
        (("[release]", "[release]\ncolour = 'red'"), "unknown key.*'colour'"),
        (("epochs = 2", "epochs = 'two'"), r"\[recipes.cpu\]"),
        (('[recipes.cuda]\nbase = "paper"', '[recipes.cuda]\nbase = "paper"\nruntime = "warp"'), "runtime must be"),
        (
            ('[recipes.cpu]\nbase = "onecycle"', '[recipes.cpu]\nbase = "onecycle"\nruntime = "graph"'),
            "runtime 'graph' needs CUDA",
        ),
        (
            ("paper_error = 8.75", "paper_error = 8.75\ncpu = { lr = 0.5 }"),
            "resnet8 and plain8 are a pair but train differently on cpu \\(lr\\)",
        ),
        (('preset = "plain20"', 'preset = "plian20"'), "did you mean 'plain20'"),
        (('file = "pair.png"', 'file = "../pair.gif"'), "plain file name ending .png"),
        (('entries = ["plain8", "resnet8"]', 'entries = ["plain8", "resnet9"]'), "no entry 'resnet9'"),
        (("version = 1", "version = 0"), "version must be a whole number of at least 1"),
    ],
)
def test_bad_manifests_name_the_key(tmp_path, change, message):
    with pytest.raises(ManifestError, match=message):
        read_manifest(write_manifest(tmp_path, TINY.replace(*change)))


def test_missing_or_broken_manifest_files(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "nope.toml")
    with pytest.raises(ManifestError, match="not valid TOML"):
        read_manifest(write_manifest(tmp_path, "[release\nname ="))
    with pytest.raises(ManifestError, match=r"no recipe for 'cuda' devices"):
        cpu_only = TINY.replace('[recipes.cuda]\nbase = "paper"\niterations = 100\nversion = 2\n', "")
        read_manifest(write_manifest(tmp_path, cpu_only)).kind("cuda")


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("45m") == 2700 and parse_duration("1.5h") == 5400
    assert parse_duration("10") == 600  # a bare number is minutes
    assert parse_duration("2h30m") == 9000 and parse_duration("1m30s") == 90
    for bad in ("", "soon", "-5m", "0h", "nanm", "h", "2h30", "inf"):
        with pytest.raises(ManifestError, match="not a duration"):
            parse_duration(bad)


# ---------------------------------------------------------------- building


@pytest.mark.slow
@pytest.mark.two_cores
def test_a_release_trains_publishes_and_a_second_run_adds_nothing(tmp_path, monkeypatch):
    from reszoo.latency import measure as latency_module

    # Steady timings: a busy machine's rows would be re-measured on the second run (test_latency's subject).
    monkeypatch.setattr(latency_module, "measure_module", lambda *a, **k: latency_module.Measurement(1.0, 1.1, 50, []))
    manifest = read_manifest(write_manifest(tmp_path))
    target = Registry(tmp_path / "zoo.db")
    report = build_release(manifest, target, device="cpu", jobs=2, log=quiet)
    assert [(n.name, n.status) for n in report.nets] == [("resnet8", "published"), ("plain8", "published")]
    entry = target.get("resnet8")
    assert entry.version == 1  # the CPU recipe's version
    release = entry.recipe["release"]
    assert release["name"] == "tiny" and release["kind"] == "cpu" and release["key"] == report.nets[0].key
    assert entry.recipe["precision"] in ("bfloat16", "float32") and entry.recipe["seed"] == 1
    assert entry.device.startswith("cpu") and entry.dataset == "synthetic"
    assert len(entry.history) == 2 and entry.metrics["weights_dtype"] == "float16"
    assert entry.metrics["top1"] == entry.top1 and entry.data["classes"]
    assert report.latency["resnet8"]["eager"]["median_ms"] > 0  # measured and stored in the target
    assert (
        target.latency_row(entry.arch_digest, report.latency["resnet8"]["eager"]["device"], 1, "float32", "eager")
        is not None
    )
    files = write_report(manifest, "cpu", target, manifest.docs, report)
    assert (tmp_path / "docs" / "pair.png").stat().st_size > 10_000
    table = (tmp_path / "docs" / "zoo.md").read_text()
    assert "| resnet8 | @1 |" in table and "| 8.75 |" in table
    summary = json.loads((tmp_path / "docs" / "zoo-release-cpu.json").read_text())
    assert [n["status"] for n in summary["nets"]] == ["published", "published"] and len(files) == 5
    assert (tmp_path / "docs" / "zoo-front.png").stat().st_size > 10_000  # both nets timed: the front is drawn
    assert "## Found by search" in table and "No searched net is published yet." in table
    assert "resnet8-v1.html" in (tmp_path / "docs" / "site" / "index.html").read_text()  # the zoo site, redrawn

    before = [e.ref for e in target.list(all_versions=True)]
    again = build_release(manifest, target, device="cpu", jobs=2, log=quiet)
    assert [n.status for n in again.nets] == ["held", "held"]
    assert [e.ref for e in target.list(all_versions=True)] == before
    write_report(manifest, "cpu", target, manifest.docs, again)  # a run that only held: the summary stays
    assert (tmp_path / "docs" / "zoo.md").read_text() == table
    assert json.loads((tmp_path / "docs" / "zoo-release-cpu.json").read_text()) == summary
    # One net timed at another label (a bench at other threads) does not take the latency column over.
    other = dataclasses.replace(
        target.latency_row(entry.arch_digest, report.latency["resnet8"]["eager"]["device"], 1, "float32", "eager"),
        device="cpu Aaa (9 threads)",
    )
    target.add_latency(other)
    assert zoo_table(manifest, target) == table


@pytest.mark.slow
def test_a_cut_run_resumes_from_its_checkpoint(tmp_path):
    manifest = read_manifest(write_manifest(tmp_path))
    target = Registry(tmp_path / "zoo.db")
    dataset = load_dataset(manifest.dataset)
    net = plan_nets(manifest, "cpu", dataset, target, "eager", default_precision("cpu"), ["resnet8"])[0]

    class Stop(Exception):
        pass

    def stop_in_epoch_two(state):
        if state["step"] > 3:  # 3 steps an epoch (192 images, batch 64)
            raise Stop

    net.job.folder.mkdir(parents=True)
    with pytest.raises(Stop):  # as a killed run leaves it: a checkpoint after epoch 1 of 2
        train(
            net.spec,
            dataset,
            net.job.recipe,
            seed=net.job.seed,
            precision=net.job.precision,
            checkpoint=net.job.checkpoint,
            on_step=stop_in_epoch_two,
            report_every=1,
        )
    assert net.job.checkpoint.is_file()
    lines: list[str] = []
    report = build_release(
        manifest, target, device="cpu", jobs=1, only=["resnet8"], measure_latency=False, log=lines.append
    )
    assert report.nets[0].status == "published"
    assert any("resnet8: resumed after epoch 1 of 2" in line for line in lines)
    assert len(target.get("resnet8").history) == 2


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_release_leaves_no_worker_training(tmp_path):
    # SIGKILL gives `reszoo release` no say: its worker must notice by itself and stop, not train
    # on for hours unseen, holding a core.
    write_manifest(tmp_path, TINY.replace("epochs = 2", "epochs = 100000"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "RESZOO_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    args = ["release", "zoo.toml", "--into", "r.db", "--only", "resnet8", "--jobs", "1", "--no-latency"]
    parent = subprocess.Popen([sys.executable, "-m", "reszoo", *args], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "home").rglob("*.safetensors")) and time.monotonic() < deadline:
            time.sleep(0.5)  # training has begun once the first epoch's checkpoint is written
        children = child_pids(parent.pid)
        assert children, "the release started no worker"
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 40
    while any(process_running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(process_running(pid) for pid in children), "a worker outlived its killed release"


@pytest.mark.two_cores
def test_nets_that_cannot_fit_the_budget_are_not_started(tmp_path):
    manifest = read_manifest(write_manifest(tmp_path))
    target = Registry(tmp_path / "zoo.db")
    report = build_release(manifest, target, device="cpu", jobs=2, budget_s=1.0, measure_latency=False, log=quiet)
    assert [n.status for n in report.nets] == ["skipped", "skipped"]
    assert "did not fit" in report.nets[0].detail
    assert target.list() == [] and not any(run_folder(manifest, "cpu").glob("*.safetensors"))


def test_a_version_taken_by_other_content_is_a_conflict(tmp_path):
    from tests.helpers import tiny_model

    manifest = read_manifest(write_manifest(tmp_path))
    target = Registry(tmp_path / "zoo.db")
    target.add("resnet8", tiny_model())  # resnet8@1, not from this release
    report = build_release(
        manifest, target, device="cpu", only=["resnet8"], budget_s=1.0, measure_latency=False, log=quiet
    )
    assert report.nets[0].status == "conflict" and "resnet8@1 exists in the target" in report.nets[0].detail


@pytest.mark.slow
@pytest.mark.two_cores
def test_over_the_size_cap_a_net_is_kept_out_with_its_history(tmp_path):
    manifest = read_manifest(
        write_manifest(tmp_path, TINY.replace('docs = "docs"', 'docs = "docs"\nmax_registry_mb = 0.001'))
    )
    target = Registry(tmp_path / "zoo.db")
    report = build_release(manifest, target, device="cpu", jobs=2, measure_latency=False, log=quiet)
    assert [n.status for n in report.nets] == ["over-cap", "over-cap"]
    assert "past its 0 MB cap" in report.nets[0].detail and target.list() == []
    assert len(report.to_dict()["nets"][0]["history"]) == 2  # kept in the summary


def test_ship_from_copies_a_releases_entries_with_their_versions(tmp_path):
    from tests.helpers import tiny_model

    manifest = read_manifest(write_manifest(tmp_path))
    gpu = Registry(tmp_path / "gpu.db")
    spec = manifest.entry("resnet8").spec.with_overrides(num_classes=3, input_size=8)
    recipe = {"name": "paper", "iterations": 100, "release": {"name": "tiny", "kind": "cuda", "key": "k"}}
    gpu.add(
        "resnet8",
        tiny_model(spec=spec),
        version=2,
        recipe=recipe,
        history=[{"iteration": 100, "train_err": 0.1, "test_err": 0.2}],
    )
    gpu.add("other", tiny_model(spec=spec))  # not in the manifest: stays behind
    measured = get_spec("resnet56")  # a latency row of an architecture no entry uses: it comes along
    gpu.add_architecture(measured, "resnet56")
    gpu.add_latency(
        LatencyRecord(measured.digest, "NVIDIA H200", 1, "float32", "graph", 0.67, 0.7, 100, {}, datetime.now(UTC))
    )
    target = Registry(tmp_path / "zoo.db")
    result = CliRunner().invoke(
        app, ["release", str(manifest.path), "--into", str(tmp_path / "zoo.db"), "--from", str(tmp_path / "gpu.db")]
    )
    assert result.exit_code == 0, result.output
    assert [e.ref for e in target.list(all_versions=True)] == ["resnet8@2"]
    assert target.get("resnet8@2").blob_sha256 == gpu.get("resnet8@2").blob_sha256
    assert target.latency_row(measured.digest, "NVIDIA H200", 1, "float32", "graph").median_ms == 0.67
    again = CliRunner().invoke(
        app, ["release", str(manifest.path), "--into", str(tmp_path / "zoo.db"), "--from", str(tmp_path / "gpu.db")]
    )
    assert again.exit_code == 0 and [e.ref for e in target.list(all_versions=True)] == ["resnet8@2"]


def test_cli_bad_manifest_exits_2_with_the_reason(tmp_path):
    path = write_manifest(tmp_path, TINY.replace("[recipes.cpu]", "[recipes.tpu]"))
    result = CliRunner().invoke(app, ["release", str(path), "--into", str(tmp_path / "zoo.db")])
    assert result.exit_code == 2 and "unknown key(s) 'tpu'" in result.output
    assert not (tmp_path / "zoo.db").exists()


# ---------------------------------------------------------------- the pieces


def test_float16_is_kept_only_within_the_tolerance():
    assert keep_float16(0.9100, 0.9096, 0.0005)
    assert not keep_float16(0.9100, 0.9090, 0.0005)
    assert keep_float16(0.9100, 0.9120, 0.0005) is False  # a change either way counts


def test_nets_trained_together_equal_nets_trained_alone():
    from reszoo.train.data import synthetic
    from reszoo.zoo.presets import get_spec

    data = synthetic(train=200, test=60)
    recipe = ONECYCLE.with_overrides(epochs=2, batch_size=64)
    specs = [
        get_spec("resnet20").with_overrides(stage_depths=(1, 1, 1)),
        get_spec("plain20").with_overrides(stage_depths=(1, 1, 1)),
    ]
    alone = [train(s, data, recipe, seed=3) for s in specs]
    together = train_many([TrainingRun(s, data, recipe, seed=3) for s in specs])
    for a, b in zip(alone, together):
        sa, sb = a.model.state_dict(), b.model.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]


def test_one_run_stopping_never_stops_the_others():
    from reszoo.train.data import synthetic
    from reszoo.zoo.presets import get_spec

    data = synthetic(train=200, test=60)
    recipe = ONECYCLE.with_overrides(epochs=2, batch_size=32)
    spec = get_spec("resnet20").with_overrides(stage_depths=(1, 1, 1))

    def stop(state):
        if state["step"] >= 4:
            raise BudgetExceeded("out of time")

    runs = [TrainingRun(spec, data, recipe, on_step=stop, report_every=2), TrainingRun(spec, data, recipe)]
    stopped, finished = train_many(runs)
    assert isinstance(stopped, BudgetExceeded) and finished.steps == 14


def test_the_group_monitor_drops_the_lowest_priority_net_once_the_group_cannot_finish(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    monitor = GroupMonitor(["first", "second", "third"])
    stop_at = 1000.0 + 100  # 100 s left; a round takes 0.01 s: 10,000 steps fit, 20,000 do not
    for step in range(0, 101, 20):  # the first net's reports measure the round time
        clock[0] = 1000.0 + step * 0.01
        monitor.check("first", step, 20_000, stop_at)
    assert monitor.active == ["first", "second"]  # judged after two windows of 40 steps
    with pytest.raises(Deferred, match="lowest priority"):
        monitor.check("third", 180, 20_000, stop_at)
    monitor.check("first", 180, 5_000, stop_at)  # a group that fits is left alone
    clock[0] = stop_at + 1
    with pytest.raises(BudgetExceeded, match="budget ran out"):
        monitor.check("first", 200, 5_000, stop_at)


def test_checks_and_table_say_what_is_not_trained_yet(tmp_path):
    manifest = read_manifest(REPO / "zoo.toml")
    target = Registry(tmp_path / "empty.db")
    assert set(degradation_checks(manifest, target, "cpu").values()) == {None}
    assert "| net | version |" in zoo_table(manifest, target)


@pytest.mark.two_cores
def test_an_entry_may_train_in_its_own_precision_and_a_figure_mixes_only_interchangeable_ones(tmp_path, monkeypatch):
    from reszoo.latency import measure as latency_module

    monkeypatch.setattr(latency_module, "measure_module", lambda *a, **k: latency_module.Measurement(1.0, 1.1, 50, []))
    text = TINY.replace("version = 1", 'version = 1\nprecision = "float32"').replace(
        'preset = "plain20"', 'preset = "plain20"\ncpu = { precision = "bfloat16-norm32" }'
    )
    manifest = read_manifest(write_manifest(tmp_path, text))
    assert manifest.precision_for("plain8", "cpu") == "bfloat16-norm32"
    assert manifest.precision_for("resnet8", "cpu") == "float32"
    assert manifest.recipe_key("plain8", "cpu") != manifest.recipe_key("resnet8", "cpu")
    target = Registry(tmp_path / "zoo.db")
    build_release(manifest, target, device="cpu", jobs=2, log=quiet, measure_latency=False)
    assert target.get("plain8").recipe["precision"] == "bfloat16-norm32"
    assert target.get("resnet8").recipe["precision"] == "float32"
    said: list[str] = []
    write_report(manifest, "cpu", target, manifest.docs, log=said.append)
    assert not (tmp_path / "docs" / "pair.png").exists()
    assert said == [
        "pair.png: not drawn: it mixes precisions bfloat16-norm32, float32, not all listed in "
        "[release] interchangeable_precisions",
        "zoo-front.png: not drawn: no entry has a CPU latency row yet",  # trained with measure_latency=False
    ]
    alike = read_manifest(
        write_manifest(
            tmp_path,
            text.replace("[release]", '[release]\ninterchangeable_precisions = ["float32", "bfloat16-norm32"]'),
        )
    )
    assert build_release(alike, target, device="cpu", jobs=2, log=quiet, measure_latency=False).trained_now == []
    write_report(alike, "cpu", target, alike.docs, log=said.append)
    assert (tmp_path / "docs" / "pair.png").stat().st_size > 10_000 and len(said) == 3
    with pytest.raises(ManifestError, match="precision must be auto or one of float32, bfloat16, bfloat16-norm32"):
        read_manifest(write_manifest(tmp_path, text.replace('"bfloat16-norm32"', '"float8"')))


def test_a_figure_of_two_recipes_is_refused(tmp_path):
    import shutil

    from reszoo.release.report import mixed_recipes

    manifest = read_manifest(REPO / "zoo.toml")
    shipped = Registry(shutil.copy(REPO / "registry.db", tmp_path / "zoo.db"))
    cpu, gpu = shipped.get("resnet20@1"), shipped.get("plain20@2")
    assert mixed_recipes([cpu, shipped.get("plain20@1")], manifest) is None
    assert "different versions" in mixed_recipes([cpu, gpu], manifest)


def test_table6_says_whether_each_ordering_holds_and_which_pair_breaks_it():
    from reszoo.release.report import _ordering

    falling = [(20, "resnet20@1", 0.146), (32, "resnet32@1", 0.135), (56, "resnet56@1", 0.132)]
    assert _ordering(falling, rising=False, what="test error").startswith("holds (test error %: resnet20@1 14.60")
    broken = [(20, "resnet20@1", 0.146), (32, "resnet32@1", 0.150), (56, "resnet56@1", 0.132)]
    assert _ordering(broken, rising=False, what="test error").startswith(
        "does not hold: resnet32@1 15.00 vs resnet20@1 14.60"
    )
    assert _ordering(falling[:1], rising=False, what="x") == "not enough depths trained yet"


def test_the_zoo_front_marks_the_limit_and_the_searched_nets_join_the_zoo_table(tmp_path, monkeypatch):
    from reszoo.release.front import draw_front, searched_section
    from reszoo.site import chart
    from reszoo.zoo.network import build

    target = Registry(tmp_path / "zoo.db")
    for name, study, ms in (("resnet20", None, 2.0), ("resnet56", None, 5.5), ("wide11", "journal:s.log#c10", 1.9)):
        spec = get_spec(name if study is None else "resnet20").with_overrides(
            **({} if study is None else {"stage_depths": (1, 2, 2), "stage_widths": (32, 64, 128)})
        )
        entry = target.add(
            name, build(spec), dataset="cifar10", metrics={"top1": 0.85}, study=study, trial=7 if study else None
        )
        target.add_latency(
            LatencyRecord(
                entry.arch_digest,
                "cpu Zen (2 threads)",
                1,
                "float32",
                "eager",
                ms,
                ms,
                9,
                {},
                datetime.now(UTC),
            )
        )
    drawn = {}
    monkeypatch.setattr(chart, "plot_accuracy_latency", lambda points, out, **kw: drawn.update(points=points, **kw))
    assert (
        draw_front(target, "cifar10", "CIFAR-10 (JPEG q75)", tmp_path) == "zoo-front.png: drawn: 3 entries on "
        "cpu Zen (2 threads)"
    )
    assert drawn["limit_ms"] == 2.0 and "resnet20's latency" in drawn["limit_label"]
    assert sorted(p.label for p in drawn["points"]) == ["resnet20@1", "resnet56@1", "wide11@1"]
    section = "\n".join(searched_section(target, "cifar10", "cpu Zen (2 threads)"))
    assert "| wide11 | @1 |" in section and "| 1.90 | journal:s.log#c10, trial 7 |" in section
    assert "resnet56" not in section and "zoo-front.png" in section
