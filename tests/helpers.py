"""Small models and weights shared by the registry tests."""

import os
from datetime import UTC
from pathlib import Path

import pytest
import torch

import reszoo

#: The repository's root (zoo.toml, registry.db, tools/): tests in subfolders find it here, not beside themselves.
REPO = Path(__file__).resolve().parents[1]
#: The real data sets, beside the clone (CI has them at the same path).
SHARED = REPO.parent / "shared" / "data"
CIFAR_TAR = SHARED / "cifar10-jpeg.tar.gz"
FASHION = SHARED / "fashion-mnist"


def need(path: Path) -> Path:
    """The shared data sets are there in CI (beside the clone): missing there is a failure."""
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must have ../shared/data beside the clone")
        pytest.skip(f"{path} is not here")
    return path


TINY = reszoo.ArchSpec(stage_depths=(1, 1), stage_widths=(4, 8), num_classes=3, input_size=8)


def tiny_model(seed: int = 0, spec: reszoo.ArchSpec = TINY) -> reszoo.ReszooNet:
    torch.manual_seed(seed)
    model = reszoo.create_model(spec)
    with torch.no_grad():  # BN statistics that differ from the defaults, so they are checked too
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    return model.eval()


def outputs(model: torch.nn.Module, seed: int = 1) -> torch.Tensor:
    spec = model.spec
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(4, spec.in_chans, spec.input_size, spec.input_size, generator=generator)
    with torch.no_grad():
        return model.eval()(x)


def need_onnx() -> None:
    """The optional ONNX extra: skipped where it is not installed, a failure in CI (which installs it)."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install the onnx extra (pip install -e '.[dev,onnx]'); missing {', '.join(missing)}")
        pytest.skip(f"{', '.join(missing)} not installed: pip install 'reszoo[onnx]'")


def tiny_zoo(path: Path):
    """A registry of three tiny trained-looking entries (a residual net in two versions, one
    the parent of a plain net) with histories, recipes and a batch-1 latency row each."""
    from datetime import datetime

    from reszoo.zoo.records import LatencyRecord

    registry = reszoo.Registry(path)
    plain = TINY.with_overrides(family="plain")
    history = [
        {"epoch": e, "iteration": 10 * e, "train_err": 0.5 / e, "test_err": 0.6 / e, "lr": 0.1} for e in (1, 2, 3)
    ]
    recipe = {"name": "short", "epochs": 3, "batch_size": 32, "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
    registry.add(
        "tiny",
        tiny_model(0),
        dataset="synthetic",
        metrics={"top1": 0.5},
        history=history,
        recipe=recipe,
        device="cpu Test CPU (1 thread)",
    )
    registry.add(
        "tiny",
        tiny_model(1),
        dataset="synthetic",
        metrics={"top1": 0.625},
        history=history,
        recipe=recipe,
        device="cpu Test CPU (1 thread)",
    )
    registry.add(
        "tiny-plain",
        tiny_model(2, plain),
        dataset="synthetic",
        metrics={"top1": 0.375},
        history=history,
        recipe=recipe,
        parent="tiny@2",
        device="cpu Test CPU (1 thread)",
    )
    for spec, ms in ((TINY, 0.25), (plain, 0.125)):
        registry.add_latency(
            LatencyRecord(
                spec.digest,
                "cpu Test CPU (1 thread)",
                1,
                "float32",
                "eager",
                ms,
                1.1 * ms,
                100,
                {},
                datetime.now(UTC),
            )
        )
    return registry


def blobs_as_before_0004(path) -> None:
    """Store a SQLite registry's blobs as a reszoo before schema 0004 did: as their safetensors
    bytes, with no encoding column (for tests that make a registry look older)."""
    import sqlite3

    from reszoo.zoo import blob_codec

    conn = sqlite3.connect(path)
    for sha, data, encoding in conn.execute("SELECT sha256, data, encoding FROM blobs").fetchall():
        conn.execute("UPDATE blobs SET data = ? WHERE sha256 = ?", (blob_codec.decode(data, encoding), sha))
    conn.commit()
    conn.execute("ALTER TABLE blobs DROP COLUMN encoding")
    conn.commit()
    conn.close()


def process_running(pid: int) -> bool:
    """Whether ``pid`` is alive: a zombie has exited, only its parent (now init) has not reaped it yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
