"""Small models and weights shared by the registry tests."""

import os
from pathlib import Path

import pytest
import torch

import reszoo

#: The real data sets, beside the clone (CI has them at the same path).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
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

