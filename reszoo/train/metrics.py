"""Evaluation: a net's top-1, top-5, loss and per-class top-1 on a test set.

What every trained entry's metrics are (``reszoo eval`` too), and the per-epoch
test of a training run (reszoo.train.loop).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reszoo.devices import resolve_device
from reszoo.errors import InputError
from reszoo.train.augment import normalize
from reszoo.train.data import ImageSet
from reszoo.train.precision import autocast


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: ImageSet,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 500,
    precision: str = "float32",
) -> dict[str, Any]:
    """Top-1, top-5 (fractions), mean cross-entropy and per-class top-1 of ``model`` on ``data``.

    ``precision="bfloat16"`` (or ``bfloat16-norm32``) runs the forward under
    autocast: the per-epoch test error of a bf16 run, at its speed. Stored
    metrics use float32.
    """
    device = resolve_device(device)
    if len(data) == 0:
        raise InputError("cannot evaluate on an empty test set")
    was_training = model.training
    model.eval()
    mean_t = torch.tensor(mean, device=device)[None, :, None, None]
    std_t = torch.tensor(std, device=device)[None, :, None, None]
    num_classes: int | None = None
    correct1 = correct5 = 0
    loss_sum = 0.0
    per_class_correct: torch.Tensor | None = None  # sized by the first batch's logits
    per_class_total: torch.Tensor | None = None
    for start in range(0, len(data), batch_size):
        x = normalize(data.images[start : start + batch_size].to(device), mean_t, std_t)
        y = data.labels[start : start + batch_size].to(device)
        with autocast(device.type, precision):
            logits = model(x).float()
        if num_classes is None or per_class_correct is None or per_class_total is None:  # the first batch
            num_classes = logits.shape[1]
            per_class_correct = torch.zeros(num_classes, device=device)
            per_class_total = torch.zeros(num_classes, device=device)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        top = logits.topk(min(5, num_classes), dim=1).indices
        hit1 = top[:, 0] == y
        correct1 += int(hit1.sum())
        correct5 += int((top == y[:, None]).any(dim=1).sum())
        per_class_correct.index_add_(0, y, hit1.float())
        per_class_total.index_add_(0, y, torch.ones_like(y, dtype=torch.float))
    model.train(was_training)
    if per_class_correct is None or per_class_total is None:
        raise AssertionError("the test set is not empty (checked above): the loop ran")
    n = len(data)
    per_class = (per_class_correct / per_class_total.clamp(min=1)).tolist()
    return {"top1": correct1 / n, "top5": correct5 / n, "loss": loss_sum / n, "per_class_top1": per_class, "images": n}
