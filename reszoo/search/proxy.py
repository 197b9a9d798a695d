"""The proxy: the short training that scores a trial, and what ranks the runs.

A proxy trains a net briefly on a subset of the training images and scores it
by its last epoch's training loss and its size (or by the loss alone, or by
its top-1 on held-out training images). The test split is never used to
choose, so a searched net's test accuracy stays an honest estimate. How well
each score ranks nets as a full training does is measured by
benchmarks/proxy_fidelity.py (figures in benchmarks/README.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from reszoo.errors import InputError, TrainingError
from reszoo.train.data import Dataset, ImageSet
from reszoo.train.recipes import ONECYCLE, Recipe

#: The proxy's default recipe: the one-cycle recipe shortened to 3 epochs at batch 32
#: (at batch 128 a few thousand images give too few steps to rank nets).
PROXY_RECIPE = ONECYCLE.with_overrides(epochs=3, batch_size=32)

#: What ranks the proxy runs (higher is better). ``train-loss+params``: the last
#: epoch's mean training loss, negated, plus :data:`CAPACITY_WEIGHT` x ln(parameters).
#: ``train-loss``: the negated loss alone (Ru et al. 2021, "Speedy performance
#: estimation for neural architecture search"). ``top1``: validation top-1 on the
#: held-out images.
SCORES = ("train-loss+params", "train-loss", "top1")

#: The weight of ``train-loss+params``'s size term: a net twice as large is worth a
#: training loss 0.035 higher. Three proxy epochs reward the nets that learn quickest
#: (small, shallow ones); a full training rewards capacity.
CAPACITY_WEIGHT = 0.05


@dataclass(frozen=True)
class Proxy:
    """The short training that scores a trial.

    Args:
        train_images: Training images drawn for the proxy (``None``: all but the held-out ones).
        val_images: Training images held out to score on.
        seed: Seed of the data split and of every trial's training (same init stream for all nets).
        precision: ``float32`` or ``bfloat16`` (autocast); ``None``: the device's training
            default (:func:`reszoo.train.steps.default_precision`).
        score: What ranks the runs, one of :data:`SCORES`. Validation top-1 is
            measured and reported either way.
    """

    recipe: Recipe = PROXY_RECIPE
    train_images: int | None = 5000
    val_images: int = 1000
    seed: int = 0
    device: str = "cpu"
    runtime: str = "eager"
    precision: str | None = None
    score: str = "train-loss+params"

    def __post_init__(self) -> None:
        check_score(self.score)


def check_score(score: str) -> str:
    """``score`` if it is one of :data:`SCORES`, else an error naming them."""
    if score not in SCORES:
        raise InputError(
            f"proxy score must be one of {', '.join(SCORES)}, got {score!r}", field="proxy_score", value=score
        )
    return score


def epoch_score(record: dict[str, Any], score: str, params: int, capacity_weight: float = CAPACITY_WEIGHT) -> float:
    """One epoch's score (higher is better) from its training record and the net's parameter count
    (``capacity_weight``: another weight of the size term, for the fidelity benchmark's sweep)."""
    if score == "top1":
        return 1 - record["test_err"]
    return -record["train_loss"] + known_part(score, params, capacity_weight)


def known_part(score: str, params: int, capacity_weight: float = CAPACITY_WEIGHT) -> float:
    """The part of ``score`` known before any training: the size term of ``train-loss+params``
    (``capacity_weight`` x ln(params)), 0 for the others."""
    return capacity_weight * math.log(params) if score == "train-loss+params" else 0.0


def proxy_data(dataset: Dataset, train_images: int | None, val_images: int, seed: int) -> Dataset:
    """The proxy's data: disjoint training and validation images, both from the training split."""
    n = len(dataset.train)
    if val_images >= n:
        raise TrainingError(
            f"cannot hold out {val_images} validation images from {n} training images; lower --val-images"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val = order[:val_images].sort().values
    rest = order[val_images:]
    chosen = (rest if train_images is None else rest[:train_images]).sort().values
    images, labels = dataset.train.images, dataset.train.labels
    return Dataset(
        dataset.name,
        ImageSet(images[chosen], labels[chosen]),
        ImageSet(images[val], labels[val]),
        dataset.classes,
        dataset.mean,
        dataset.std,
        f"{dataset.fingerprint}/proxy-train={train_images}/val={val_images}/seed={seed}",
    )
