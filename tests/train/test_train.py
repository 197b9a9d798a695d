"""Training and evaluation on the CPU: real data sets, resume, errors, CLI."""

import dataclasses
import gzip
import io
import json
import math
import os
import struct
import tarfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import reszoo
from reszoo import DatasetError, Registry, TrainingError
from reszoo.cli.app import app
from reszoo.train import ONECYCLE, PAPER, evaluate, load_dataset, train
from reszoo.train.data import ImageSet, synthetic
from tests.helpers import CIFAR_TAR, FASHION, need

SMALL = reszoo.ArchSpec(stage_depths=(1, 1, 1), stage_widths=(16, 32, 64))
runner = CliRunner()


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("data-cache")


@pytest.fixture(scope="session")
def cifar(data_cache):
    return load_dataset(str(need(CIFAR_TAR)), cache_dir=data_cache)


def test_recipes_follow_the_paper_schedule():
    assert [PAPER.lr_at(s, 64_000) for s in (0, 31_999, 32_000, 48_000, 63_999)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.001, 0.001]
    )
    assert (PAPER.batch_size, PAPER.weight_decay, PAPER.momentum, PAPER.iterations) == (128, 1e-4, 0.9, 64_000)
    lrs = [ONECYCLE.lr_at(s, 100) for s in range(100)]
    assert max(lrs) == pytest.approx(ONECYCLE.lr) and lrs[0] < lrs[24] and lrs[-1] < lrs[50]


def test_training_on_the_synthetic_set_learns_within_seconds():
    data = synthetic(train=1000, test=300)
    result = train(SMALL, data, ONECYCLE.with_overrides(epochs=4, batch_size=64, lr=0.05), seed=0)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.metrics["top1"] > 0.5  # chance is 0.1
    assert result.steps == 4 * 16 and len(result.metrics["per_class_top1"]) == 10


def test_cifar10_jpeg_loader_reads_the_real_archive(cifar):
    assert cifar.classes == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert cifar.train.images.shape == (50_000, 3, 32, 32) and cifar.test.images.shape == (10_000, 3, 32, 32)
    assert cifar.train.labels.bincount().tolist() == [5000] * 10
    assert cifar.mean == pytest.approx((0.491, 0.482, 0.447), abs=0.01)


def test_a_short_cifar10_run_on_2000_images_beats_chance(cifar):
    data = cifar.subset(train=2000, test=1000)
    result = train(SMALL, data, ONECYCLE.with_overrides(epochs=3, batch_size=64, lr=0.05), seed=0)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.metrics["top1"] > 0.2, result.metrics  # chance is 0.1


def test_fashion_mnist_idx_loader(data_cache, monkeypatch):
    data = load_dataset(str(need(FASHION)), cache_dir=data_cache)
    assert data.name == "fashion-mnist" and data.classes[0] == "T-shirt/top"
    assert data.train.images.shape == (60_000, 1, 28, 28) and data.test.images.shape == (10_000, 1, 28, 28)
    assert data.train.labels.bincount().tolist() == [6000] * 10
    again = load_dataset(str(FASHION), cache_dir=data_cache)  # from the cache
    assert torch.equal(again.test.images, data.test.images) and again.fingerprint == data.fingerprint


def _encoded(value: int, format: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (value, value, value)).save(buffer, format=format)
    return buffer.getvalue()


def _jpeg(value: int) -> bytes:
    return _encoded(value, "JPEG")


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_image_folder_archive_and_tree(tmp_path):
    members = {
        f"{split}/{label}/{i}.jpg": _jpeg(40 * i + 10)
        for split in ("train", "test")
        for label in ("cat", "dog")
        for i in range(3)
    }
    data = load_dataset(str(_tar(tmp_path / "tiny.tar.gz", members)), cache_dir=tmp_path / "cache")
    assert data.classes == ("cat", "dog") and data.train.images.shape == (6, 3, 8, 8)
    tree = tmp_path / "tree"
    for name, blob in members.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(blob)
    assert torch.equal(load_dataset(str(tree), cache_dir=tmp_path / "cache").train.labels, data.train.labels)


def test_one_data_set_gets_one_name_however_it_was_given(tmp_path, monkeypatch):
    members = {f"{split}/{label}/0.jpg": _jpeg(90) for split in ("train", "test") for label in ("cat", "dog")}
    archive = _tar(tmp_path / "cifar10-jpeg.tar.gz", members)  # the file name KNOWN lists under cifar10
    monkeypatch.setenv("RESZOO_DATA", str(tmp_path))
    assert load_dataset(str(archive), cache_dir=tmp_path / "cache").name == "cifar10"
    assert load_dataset("cifar10", cache_dir=tmp_path / "cache").name == "cifar10"  # from the cache
    other = _tar(tmp_path / "pets.tar.gz", members)
    assert load_dataset(str(other), cache_dir=tmp_path / "cache").name == "pets"


@pytest.mark.parametrize(
    "members, message",
    [
        ({"train/cat/0.jpg": b"not a jpeg", "test/cat/0.jpg": b"x"}, "cannot decode image train/cat/0.jpg"),
        ({"train/cat/0.jpg": b"x"}, "has no test/<class>/<image> files"),
        ({"images/0.jpg": b"x"}, "has no train/<class>/<image> files"),
    ],
)
def test_malformed_archives_name_the_problem(tmp_path, members, message):
    if "cannot decode" not in message:
        members = {k: _jpeg(1) for k in members}
    with pytest.raises(DatasetError, match=message):
        load_dataset(str(_tar(tmp_path / "bad.tar.gz", members)), cache_dir=tmp_path / "cache")


def _png(value: int) -> bytes:
    return _encoded(value, "PNG")


def test_images_decode_on_the_cpu_and_a_bad_one_is_named():
    from reszoo.train.data import readers

    blobs, names = [_jpeg(10), _png(200), _jpeg(90)], ["a.jpg", "b.png", "c.jpg"]
    images = readers._decode(blobs, names)
    assert images.dtype == torch.uint8 and images.shape == (3, 3, 8, 8) and images[1].eq(200).all()
    with pytest.raises(DatasetError, match="cannot decode image b.jpg"):
        readers._decode([_jpeg(10), b"\xff\xd8 truncated"], ["a.jpg", "b.jpg"])


def test_mismatched_classes_and_bad_archives(tmp_path):
    members = {"train/cat/0.jpg": _jpeg(1), "test/dog/0.jpg": _jpeg(1)}
    with pytest.raises(DatasetError, match=r"test classes \['dog'\] differ from train classes \['cat'\]"):
        load_dataset(str(_tar(tmp_path / "bad.tar.gz", members)), cache_dir=tmp_path / "cache")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DatasetError, match="not a readable tar archive"):
        load_dataset(str(broken), cache_dir=tmp_path / "cache")


def test_malformed_idx_files(tmp_path):
    folder = tmp_path / "fashion"
    folder.mkdir()
    header = struct.pack(">IIII", 0x00000803, 2, 28, 28)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(100)))
    with pytest.raises(DatasetError, match="is truncated: header says"):
        load_dataset(str(folder), cache_dir=tmp_path / "cache")
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x09\x03" + bytes(20)))
    with pytest.raises(DatasetError, match="not an idx file of unsigned bytes"):
        load_dataset(str(folder), cache_dir=tmp_path / "cache")


def test_unknown_or_missing_data_sets(tmp_path, monkeypatch):
    monkeypatch.setenv("RESZOO_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match="'imagenet' is neither a path nor a known name"):
        load_dataset("imagenet")
    with pytest.raises(DatasetError, match="data set 'cifar100' not found; looked in"):
        load_dataset("cifar100")
    with pytest.raises(DatasetError, match="holds no data set reszoo knows"):
        load_dataset(str(tmp_path))


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path):
    data = synthetic(train=400, test=100)
    recipe = ONECYCLE.with_overrides(epochs=4, batch_size=64)
    whole = train(SMALL, data, recipe, seed=3)

    class Killed(Exception):
        pass

    def kill_in_epoch_3(record):
        if record["epoch"] == 3:
            raise Killed  # before epoch 3's checkpoint: the run restarts from epoch 2's

    checkpoint = tmp_path / "run.safetensors"
    with pytest.raises(Killed):
        train(SMALL, data, recipe, seed=3, checkpoint=checkpoint, on_epoch=kill_in_epoch_3)
    resumed = train(SMALL, data, recipe, seed=3, checkpoint=checkpoint, resume=True)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in whole.history]
    with pytest.raises(TrainingError, match="belongs to another run"):
        train(SMALL, data, recipe, seed=4, checkpoint=checkpoint, resume=True)


@pytest.mark.parametrize("n, world", [(10, 1), (10, 3), (512, 2), (7, 4)])
def test_each_rank_orders_only_its_own_shard(n, world):
    from reszoo.train.augment import shard_order

    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    ids = torch.arange(n)  # an image's global index, held as train() shards it
    picked = [ids[rank::world][shard_order(permutation, rank, world)] for rank in range(world)]
    position = torch.empty(n, dtype=torch.long)
    position[permutation] = torch.arange(n)
    for rank, mine in enumerate(picked):
        assert len(mine) == n // world and (mine % world == rank).all()
        assert (position[mine].diff() > 0).all()  # in the permutation's order
    union = torch.cat(picked).tolist()
    assert len(set(union)) == len(union) == world * (n // world)
    if world == 1:
        assert torch.equal(shard_order(permutation, 0, 1), permutation)


def test_augment_params_split_a_global_batch_into_contiguous_shares():
    from reszoo.train.augment import AugmentParams

    whole = AugmentParams.draw(12, torch.Generator().manual_seed(0), padding=4)
    shares = [whole.shard(rank, 3) for rank in range(3)]
    assert torch.equal(torch.cat([s.dx for s in shares]), whole.dx)
    assert torch.equal(torch.cat([s.flip for s in shares]), whole.flip)
    assert torch.equal(whole.shard(0, 1).dy, whole.dy)  # one process: the whole batch


@pytest.mark.parametrize("world", [2, 3])
def test_a_data_parallel_rank_trains_on_its_shard_only(monkeypatch, world):
    """train() as rank r of ``world`` (DDP and the all-reduce stubbed out) trains on
    its shard only, as many images as every other rank, and no image twice."""
    import torch.distributed
    import torch.nn.parallel

    from reszoo.train import loop

    n = 256
    data = synthetic(train=n, test=32)
    data.train.images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)  # each image carries its index
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", lambda model, device_ids: model)
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda tensor: tensor)
    seen: dict[int, list[int]] = {}
    real_augment = loop.augment

    def augment(images, params, padding, flip):
        assert len(params.flip) == len(images)
        seen.setdefault(rank, []).extend(images[:, 0, 0, 0].tolist())
        return real_augment(images, params, padding, flip)

    monkeypatch.setattr(loop, "augment", augment)
    recipe = ONECYCLE.with_overrides(epochs=1, batch_size=96 if world == 3 else 64)
    for rank in range(world):
        monkeypatch.setattr(loop, "data_parallel", lambda rank=rank: (rank, world))
        result = train(SMALL, data, recipe)
        assert result.steps == math.ceil((n // world) / (recipe.batch_size // world))
        assert all(index % world == rank for index in seen[rank])
        assert len(seen[rank]) == n // world
    everything = [index for rank in seen for index in seen[rank]]
    assert len(set(everything)) == len(everything) == world * (n // world)


def test_a_run_without_per_epoch_tests_still_tests_once_at_the_end():
    # A search proxy ranked by training loss skips the test pass after each epoch, not the final one.
    from reszoo.train.loop import TrainingRun

    data = synthetic(train=256, test=64)
    recipe = ONECYCLE.with_overrides(epochs=2, batch_size=64, lr=0.05)
    run = TrainingRun(SMALL, data, recipe, validate_epochs=False)
    for _ in run.steps():
        pass
    result = run.result()
    assert [sorted(r) for r in result.history] == [
        ["epoch", "iteration", "lr", "seconds", "train_err", "train_loss"]
    ] * 2
    tested = train(SMALL, data, recipe)  # the same run, tested after each epoch: same weights, same result
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in tested.history]
    assert result.metrics["top1"] == tested.metrics["top1"] and "test_err" in tested.history[0]


def test_a_non_finite_loss_stops_the_run_and_keeps_the_checkpoint(tmp_path):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Exploding(type(ONECYCLE)):
        """A sane first epoch (4 steps), then a learning rate no net survives."""

        def lr_at(self, step, total):
            return 0.01 if step < 4 else 1e12

    data = synthetic(train=256, test=64)
    checkpoint = tmp_path / "run.safetensors"
    epochs_checkpointed = []

    def watch(record):
        epochs_checkpointed.append(record["epoch"])

    recipe = Exploding(name="exploding", epochs=3, iterations=None, batch_size=64)
    with pytest.raises(TrainingError, match="loss became .* stopped; the last good checkpoint is"):
        train(SMALL, data, recipe, checkpoint=checkpoint, on_epoch=watch)
    assert epochs_checkpointed == [1]
    from reszoo.train.checkpoints import load_checkpoint

    state, _, meta = load_checkpoint(checkpoint)
    assert meta["epochs_done"] == 1 and all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_bad_training_inputs(tmp_path):
    data = synthetic(train=128, test=32)
    with pytest.raises(reszoo.InputError, match="resume needs a checkpoint"):
        train(SMALL, data, ONECYCLE.with_overrides(epochs=1), resume=True)
    with pytest.raises(DatasetError, match="synthetic:N takes a number"):
        load_dataset("synthetic:abc")
    empty = dataclasses.replace(data, train=ImageSet(data.train.images[:0], data.train.labels[:0]))
    with pytest.raises(reszoo.InputError, match="0 training images do not split over 1 process"):
        train(SMALL, empty, ONECYCLE.with_overrides(epochs=1))
    damaged = tmp_path / "run.safetensors"
    damaged.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(TrainingError, match="cannot read checkpoint"):
        train(SMALL, data, ONECYCLE.with_overrides(epochs=1), checkpoint=damaged, resume=True)


def test_cli_train_publishes_and_eval_reproduces_the_stored_accuracy(tmp_path):
    registry = f"sqlite:///{tmp_path / 'r.db'}"
    result = runner.invoke(
        app,
        [
            "--registry",
            registry,
            "train",
            "resnet20",
            "--dataset",
            "synthetic:400",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--lr",
            "0.05",
            "--publish",
            "syn20",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    entry = Registry(registry).get("syn20")
    assert summary["published"] == "syn20@1" and entry.top1 == pytest.approx(summary["top1"])
    assert [h["epoch"] for h in entry.history] == [1, 2] and entry.recipe["name"] == "onecycle"
    assert entry.data["name"] == "synthetic" and entry.device.startswith("cpu")
    evaluated = runner.invoke(app, ["--registry", registry, "eval", "syn20", "--dataset", "synthetic:400", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["top1"] == pytest.approx(entry.top1, abs=1e-9)
    model = Registry(registry).load("syn20")
    direct = evaluate(model, synthetic(train=400, test=100).test, tuple(entry.data["mean"]), tuple(entry.data["std"]))
    assert direct["top1"] == pytest.approx(entry.top1)


def _cli_env(tmp_path):
    return {**os.environ, "RESZOO_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_and_publishes_once(tmp_path):
    import subprocess
    import sys

    registry = str(tmp_path / "r.db")
    args = [
        "--registry",
        registry,
        "train",
        "resnet20",
        "--dataset",
        "synthetic:512",
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--lr",
        "0.05",
        "--json",
    ]
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "reszoo",
            *args,
            "--publish",
            "ddp",
        ],
        env=_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = runner.invoke(app, [*args, "--publish", "single"])
    assert single.exit_code == 0, single.output
    entries = Registry(registry).list(all_versions=True)
    assert sorted(e.ref for e in entries) == ["ddp@1", "single@1"]  # rank 1 published nothing
    ddp_curve = [h["train_loss"] for h in Registry(registry).get("ddp").history]
    single_curve = [h["train_loss"] for h in Registry(registry).get("single").history]
    # Close, not equal: BatchNorm statistics stay per rank, and each rank draws its
    # half of a batch from its own shard, so the batches are not the single run's.
    # Another order alone moves this curve by up to 4.3% (seeds 0-3); DDP is 6.1% off.
    assert ddp_curve == pytest.approx(single_curve, rel=0.1)


def test_plot_curves_draws_trained_entries(tmp_path):
    registry = Registry(tmp_path / "r.db")
    data = synthetic(train=256, test=64)
    for name in ("plain-a", "res-a"):
        spec = SMALL.with_overrides(family="plain") if name.startswith("plain") else SMALL
        result = train(spec, data, ONECYCLE.with_overrides(epochs=2, batch_size=64))
        registry.add(name, result.model, history=result.history, dataset="synthetic")
    out = tmp_path / "curves.png"
    result = runner.invoke(app, ["--registry", registry.url, "plot", "curves", "plain-a", "res-a", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    registry.add("untrained", reszoo.create_model(SMALL))
    failed = runner.invoke(app, ["--registry", registry.url, "plot", "curves", "untrained", "--out", str(out)])
    assert failed.exit_code == 1 and "no training history stored for untrained@1" in failed.stderr


def test_graph_runtime_needs_a_gpu():
    with pytest.raises(reszoo.DeviceError, match="runtime 'graph' captures CUDA graphs and needs a CUDA device"):
        train(SMALL, synthetic(train=128, test=32), ONECYCLE.with_overrides(epochs=1), runtime="graph")


def test_eval_of_a_spec_and_a_weights_file(tmp_path):
    from safetensors.torch import save_file

    data = synthetic(train=256, test=100)
    result = train(SMALL, data, ONECYCLE.with_overrides(epochs=2, batch_size=64))
    weights = tmp_path / "w.safetensors"
    save_file(result.model.state_dict(), str(weights))
    spec_file = tmp_path / "small.json"
    spec_file.write_text(SMALL.to_json())
    out = runner.invoke(
        app, ["eval", str(spec_file), "--weights", str(weights), "--dataset", "synthetic:256", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["top1"] == pytest.approx(result.metrics["top1"])


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_weights(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from safetensors import safe_open

    registry = str(tmp_path / "r.db")
    checkpoint = tmp_path / "run.safetensors"
    base = [
        sys.executable,
        "-m",
        "reszoo",
        "--registry",
        registry,
        "train",
        "resnet20",
        "--dataset",
        "synthetic:512",
        "--epochs",
        "4",
        "--batch-size",
        "64",
        "--lr",
        "0.05",
        "--seed",
        "7",
    ]
    env = _cli_env(tmp_path)
    subprocess.run([*base, "--publish", "whole"], env=env, check=True, capture_output=True, timeout=600)

    process = subprocess.Popen(
        [*base, "--checkpoint", str(checkpoint)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    epochs_done = 0
    while epochs_done < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        try:
            with safe_open(str(checkpoint), "pt") as handle:
                epochs_done = json.loads(handle.metadata()["reszoo"])["epochs_done"]
        except Exception:  # not written yet
            pass
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 2 <= epochs_done < 4, epochs_done  # killed mid-run
    subprocess.run(
        [*base, "--checkpoint", str(checkpoint), "--resume", "--publish", "resumed"],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    reg = Registry(registry)
    assert reg.get("resumed").blob_sha256 == reg.get("whole").blob_sha256  # bit-identical weights


def test_warmup_holds_until_the_training_error_falls():
    data = synthetic(train=256, test=64)
    stays = train(SMALL, data, PAPER.with_overrides(epochs=2, batch_size=64, warmup_lr=0.05, warmup_until_error=-1))
    assert [h["lr"] for h in stays.history] == [0.05, 0.05]
    leaves = train(SMALL, data, PAPER.with_overrides(epochs=2, batch_size=64, warmup_lr=0.05, warmup_until_error=1.01))
    # Back on the paper's schedule in epoch 2: its last step (7 of 8) is past both milestones.
    assert [h["lr"] for h in leaves.history] == [0.05, pytest.approx(PAPER.lr_at(7, 8))]


def test_download_lets_torchvision_fetch_cifar(tmp_path, monkeypatch):
    import numpy as np
    import torchvision.datasets as tvd

    calls = []

    class FakeCIFAR10:
        classes = [f"c{i}" for i in range(10)]

        def __init__(self, root, train, download):
            calls.append((Path(root), train, download))
            (Path(root) / "cifar-10-batches-py").mkdir(parents=True, exist_ok=True)
            count = 20 if train else 10
            self.data = np.full((count, 32, 32, 3), 7, dtype=np.uint8)
            self.targets = [i % 10 for i in range(count)]

    monkeypatch.setattr(tvd, "CIFAR10", FakeCIFAR10)
    monkeypatch.setenv("RESZOO_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="data set 'cifar10' not found"):
        load_dataset("cifar10", cache_dir=tmp_path / "cache")
    data = load_dataset("cifar10", root=tmp_path / "dl", cache_dir=tmp_path / "cache", download=True)
    assert data.name == "cifar10" and data.train.images.shape == (20, 3, 32, 32) and len(data.test) == 10
    assert (tmp_path / "dl", True, True) in calls


def test_checkpoint_paths_are_checked_before_any_training(tmp_path):
    data = synthetic(train=64, test=32)
    recipe = ONECYCLE.with_overrides(epochs=1, batch_size=32)
    finished = tmp_path / "run.safetensors"
    train(SMALL, data, recipe, checkpoint=finished)
    before = finished.read_bytes()
    for path, message in (
        (finished, "already exists; --resume continues that run, --force starts over"),
        (tmp_path, "is a folder"),
        (tmp_path / "missing" / "run.safetensors", "folder .* does not exist"),
    ):
        with pytest.raises(reszoo.InputError, match=message):
            train(SMALL, data, recipe, checkpoint=path, on_step=pytest.fail)  # refused before a step
    assert finished.read_bytes() == before  # a finished run's checkpoint is never silently replaced
    train(SMALL, data, recipe, checkpoint=finished, overwrite=True)
    result = runner.invoke(
        app, ["train", "resnet20", "-d", "synthetic:64", "--epochs", "1", "--checkpoint", str(finished)]
    )
    assert result.exit_code == 2 and "--force starts over" in result.output


def test_a_full_disk_stops_a_checkpoint_with_one_line_and_only_costs_the_data_cache(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    from reszoo.train import checkpoints as loop_module
    from reszoo.train.data import cache as data_cache

    def disk_full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device (os error 28))")

    data = synthetic(train=64, test=32)
    checkpoint = tmp_path / "run.safetensors"
    monkeypatch.setattr(loop_module, "save_file", disk_full)
    with pytest.raises(TrainingError, match=r"cannot write checkpoint .* \(is the disk full\?\)"):
        train(SMALL, data, ONECYCLE.with_overrides(epochs=1, batch_size=32), checkpoint=checkpoint)
    assert not checkpoint.exists() and not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind
    monkeypatch.setattr(data_cache, "save_file", disk_full)
    with pytest.warns(RuntimeWarning, match="could not cache the decoded data set"):
        members = {f"{split}/{label}/0.jpg": _jpeg(99) for split in ("train", "test") for label in ("cat", "dog")}
        loaded = load_dataset(str(_tar(tmp_path / "tiny.tar.gz", members)), cache_dir=tmp_path / "cache")
    assert len(loaded.train) == 2


def test_train_publishes_into_a_registry_file_not_yet_created(tmp_path):
    url = str(tmp_path / "new.db")
    result = runner.invoke(
        app, ["--registry", url, "train", "resnet20", "-d", "synthetic:64", "--epochs", "1", "--publish", "fresh"]
    )
    assert result.exit_code == 0, result.output
    assert Registry(url).get("fresh").recipe["steps"] > 0


def test_bfloat16_norm32_keeps_batchnorm_and_the_residual_stream_in_float32():
    """Only the convolutions and the classifier run in bf16; BatchNorm, its ReLU and the
    residual add stay float32, and the weights' names and dtypes are those of any net."""
    from reszoo.train.precision import apply_precision, autocast

    model = apply_precision(reszoo.create_model("resnet20"), "bfloat16-norm32")
    seen = {}
    block = model.layer1[0]
    for name in ("conv1", "bn1", "conv2", "bn2"):
        getattr(block, name).register_forward_hook(lambda m, a, out, name=name: seen.__setitem__(name, out.dtype))
    block.register_forward_hook(lambda m, a, out: seen.__setitem__("block", out.dtype))
    with autocast("cpu", "bfloat16-norm32"):
        logits = model(torch.randn(2, 3, 32, 32))
    assert seen == {
        "conv1": torch.bfloat16,
        "bn1": torch.float32,
        "conv2": torch.bfloat16,
        "bn2": torch.float32,
        "block": torch.float32,
    }
    assert logits.dtype == torch.bfloat16  # the classifier is a matmul: bf16, upcast for the loss
    assert model.state_dict().keys() == reszoo.create_model("resnet20").state_dict().keys()
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_training_in_bfloat16_norm32_learns_and_evaluates_in_float32():
    data = synthetic(train=1000, test=300)
    result = train(
        SMALL, data, ONECYCLE.with_overrides(epochs=4, batch_size=64, lr=0.05), seed=0, precision="bfloat16-norm32"
    )
    assert result.metrics["top1"] > 0.5 and result.extra["precision"] == "bfloat16-norm32"
    with pytest.raises(reszoo.InputError, match="precision must be one of 'float32', 'bfloat16', 'bfloat16-norm32'"):
        train(SMALL, data, ONECYCLE, precision="float16")
