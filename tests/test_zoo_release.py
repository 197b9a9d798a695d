"""benchmarks/zoo_release.py in --tiny mode on the CPU, on a small slice of the
real JPEG CIFAR-10 archive, with temporary registries (never registry.db)."""

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reszoo import Registry
from reszoo.cli.app import app

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "benchmarks"))  # the script is no package; its spawned workers import it by name
import zoo_release  # noqa: E402 (after the path it is found on)

from .helpers import CIFAR_TAR, need  # noqa: E402

PRESETS = ["resnet20", "plain20"]


@pytest.fixture(scope="module")
def small_cifar(tmp_path_factory) -> Path:
    """The first 20 training and 10 test images of each class of the real archive."""
    keep = {"train": 20, "test": 10}
    taken: dict[tuple[str, str], int] = {}
    out = tmp_path_factory.mktemp("data") / "cifar10-small.tar.gz"
    with tarfile.open(need(CIFAR_TAR), "r:*") as source, tarfile.open(out, "w:gz") as target:
        for member in source:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 3 or parts[-3] not in keep:
                continue
            key = (parts[-3], parts[-2])
            if taken.get(key, 0) < keep[parts[-3]]:
                taken[key] = taken.get(key, 0) + 1
                data = source.extractfile(member).read()
                info = tarfile.TarInfo(member.name)
                info.size = len(data)
                target.addfile(info, io.BytesIO(data))
    assert len(taken) == 20 and sum(taken.values()) == 300
    return out


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(tmp_path: Path, data: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "out"
    code = zoo_release.main([
        "--tiny", "--dataset", str(data), "--out", str(out), "--registry", str(tmp_path / "work.db"),
        "--ship", str(out / "release.db"), "--subset", "128", "--test-subset", "64", *extra,
    ])
    return code, out


@pytest.mark.slow
def test_tiny_release_trains_ships_measures_and_draws(tmp_path, small_cifar):
    # --runtime graph: as on a GPU, a worker process first checks the graph step
    # against eager; on a CPU it cannot capture one, and every net trains eager.
    code, out = run(tmp_path, small_cifar, "--presets", *PRESETS, "--parallel", "2", "--runtime", "graph")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runtime"] == "eager", summary["runtime_check"]
    assert summary["runtime_check"].startswith("graph check failed (DeviceError: runtime 'graph' captures CUDA graphs")
    assert [row["name"] for row in summary["nets"]] == PRESETS
    assert all(row["status"] == "done" for row in summary["nets"]), summary["nets"]
    assert summary["tiny"] and summary["recipe"]["name"] == "onecycle" and summary["recipe"]["epochs"] == 2

    ship = Registry(out / "release.db", readonly=True)
    for name in PRESETS:
        entry = ship.get(name)
        assert entry.version == 1 and entry.dataset == "cifar10" and entry.top1 is not None
        assert entry.recipe["name"] == "onecycle" and entry.recipe["release"] == zoo_release.RELEASE
        assert [h["epoch"] for h in entry.history] == [1, 2]
        assert entry.data["test_subset"] == 64 and entry.data["source"] == f"archive with sha256 {sha256(small_cifar)}"
        assert entry.device.startswith("cpu") and entry.recipe["runtime"] == "eager"
        assert entry.metrics["weights_dtype"].startswith(("float16", "float32"))
        assert entry.metrics["top1_float32"] is not None and entry.metrics["top1_float16"] is not None
        assert [row.runtime for row in ship.latency(entry.arch_digest)] == ["eager"]
        if entry.metrics["weights_dtype"] == "float16":
            assert entry.dtypes.startswith("float16")

    # reszoo eval of a shipped entry gives its stored top-1 (same CPU, same images).
    evaluated = CliRunner().invoke(app, ["--registry", str(out / "release.db"), "eval", "resnet20",
                                         "--dataset", str(small_cifar), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["top1"] == pytest.approx(ship.get("resnet20").top1, abs=1e-9)

    figure = out / "degradation-20-56.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000
    assert summary["figures"]["degradation-34.png"].startswith("skipped")
    assert not (out / "degradation-34.png").exists()
    assert "| resnet20 |" in (out / "table.md").read_text()

    # Shipping the run into another registry twice adds its entries once.
    again = tmp_path / "again.db"
    Registry(again).close()
    first = zoo_release.ship_from(out, again, None, print)
    second = zoo_release.ship_from(out, again, None, print)
    assert sorted(first.values()) == ["shipped as plain20@1", "shipped as resnet20@1"]
    assert all(text.startswith("already shipped as") for text in second.values())


def test_a_budget_that_fits_nothing_starts_nothing_and_says_so(tmp_path, small_cifar):
    code, out = run(tmp_path, small_cifar, "--presets", "resnet20", "--budget-minutes", "0.1")
    assert code == 1  # nothing trained
    summary = json.loads((out / "summary.json").read_text())
    assert summary["not_fit"] == ["resnet20"] and summary["nets"][0]["detail"].startswith("did not fit")
    assert Registry(out / "release.db", readonly=True).list() == []


def test_tiny_runs_never_ship_into_the_real_zoo(tmp_path, small_cifar):
    with pytest.raises(SystemExit):
        zoo_release.main(["--tiny", "--dataset", str(small_cifar), "--ship", str(zoo_release.SHIPPED)])


def test_fair_share_splits_each_second_among_the_runs_in_it():
    share = zoo_release.fair_share_seconds({"a": (0.0, 10.0), "b": (5.0, 15.0)})
    assert share == pytest.approx({"a": 7.5, "b": 7.5})


def test_float16_keeps_tensors_beyond_its_range_in_float32():
    import torch

    state = {"w": torch.tensor([1.0, 2.0]), "var": torch.tensor([1e6]), "n": torch.tensor(3)}
    half, kept = zoo_release.to_float16(state)
    assert half["w"].dtype == torch.float16 and half["var"].dtype == torch.float32 and kept == ["var"]
    assert half["n"].dtype == torch.int64


def test_the_graph_check_decides_the_runtime():
    assert zoo_release.judge_graph_check({"graph": 2.05, "eager": 2.0})[0] == "graph"
    runtime, why = zoo_release.judge_graph_check({"graph": 2.5, "eager": 2.0})
    assert runtime == "eager" and "they disagree" in why
    assert zoo_release.judge_graph_check({"graph": float("nan"), "eager": 2.0})[0] == "eager"
    runtime, why = zoo_release.judge_graph_check("DeviceError: no GPU")
    assert runtime == "eager" and why == "graph check failed (DeviceError: no GPU); eager instead"



def test_the_scheduler_skips_a_net_that_does_not_fit_and_starts_a_smaller_one(monkeypatch):
    import time

    def run(name: str, work_s: float) -> "zoo_release.Run":
        job = zoo_release.Job(name, None, None, 10, "", "", None, None, "cuda", "graph", 0, "", 2, None, 0.0)
        return zoo_release.Run(job=job, work_s=work_s)

    # 300 s of budget less 20 + 2 x 5 s kept for after training (two nets, two latency runtimes): 270 s.
    runs = [run("big", 200.0), run("huge", 100.0), run("small", 40.0)]
    scheduler = zoo_release.Scheduler(runs, 2, time.monotonic(), 300.0, "cuda", 2, 1.0, lambda message: None)
    started = []
    monkeypatch.setattr(scheduler, "start", lambda r: (started.append(r.job.name), setattr(r, "status", "running")))
    scheduler.admit()
    # huge: 15 s to start + (200 + 100) s of work > 270 s; small: 15 + 240 s fits.
    assert started == ["big", "small"] and runs[1].status == "skipped"
    assert runs[1].detail.startswith("did not fit: needs about 315 s")
