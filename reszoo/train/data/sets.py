"""What a data set is once decoded: uint8 image tensors, labels, class names and
the normalisation that travels with trained weights; and the synthetic set tests use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from reszoo.zoo.spec import ArchSpec


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # uint8, (N, C, H, W)
    labels: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int, seed: int = 0) -> ImageSet:
        """``n`` images, as balanced across classes as the set allows, chosen by ``seed``."""
        if n >= len(self):
            return self
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=generator)
        # Round-robin over classes in a random order: balanced and deterministic.
        by_class = [order[self.labels[order] == c] for c in range(int(self.labels.max()) + 1)]
        picked: list[int] = []
        depth = 0
        while len(picked) < n:
            for members in by_class:
                if depth < len(members) and len(picked) < n:
                    picked.append(int(members[depth]))
            depth += 1
        index = torch.tensor(sorted(picked))
        return ImageSet(self.images[index], self.labels[index])


@dataclass(frozen=True)
class Dataset:
    """A train and a test split with the facts that travel with trained weights."""

    name: str
    train: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, of the training images scaled to [0, 1]
    std: tuple[float, ...]
    fingerprint: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return self.train.images.shape[1]

    @property
    def input_size(self) -> int:
        return self.train.images.shape[-1]

    def info(self) -> dict:
        """What an entry records about its data: name, classes, normalisation, sizes."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "mean": list(self.mean),
            "std": list(self.std),
            "train_images": len(self.train),
            "test_images": len(self.test),
            "input_size": self.input_size,
            "fingerprint": self.fingerprint,
        }

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> Dataset:
        """A smaller data set; its fingerprint names the subset, so checkpoints tell them apart."""
        if not train and not test:
            return self
        return Dataset(
            self.name,
            self.train.subset(train, seed) if train else self.train,
            self.test.subset(test, seed) if test else self.test,
            self.classes,
            self.mean,
            self.std,
            f"{self.fingerprint}/train={train}/test={test}/seed={seed}",
        )


def fit_spec(spec: ArchSpec, dataset: Dataset) -> ArchSpec:
    """``spec`` with the data set's classes, channels and image size: the one step
    between a preset (1000 ImageNet classes at 224x224, say) and what trains here."""
    changes = {
        key: value
        for key, value in (
            ("num_classes", dataset.num_classes),
            ("in_chans", dataset.in_chans),
            ("input_size", dataset.input_size),
        )
        if getattr(spec, key) != value
    }
    return spec.with_overrides(**changes) if changes else spec


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.float().div_(255)
    return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).tolist())


def make_dataset(name: str, train: ImageSet, test: ImageSet, classes: Iterable[str], fingerprint: str) -> Dataset:
    mean, std = channel_stats(train.images)
    return Dataset(name, train, test, tuple(classes), mean, std, fingerprint)


def synthetic(
    train: int = 2000, test: int = 500, num_classes: int = 10, size: int = 32, channels: int = 3, seed: int = 0
) -> Dataset:
    """A learnable set: each class is a fixed smooth random template plus noise.

    Templates are 4x4 random images upsampled, so a few pixels of random crop
    (the default augmentation) leave each class recognisable.
    """
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, channels, 4, 4, generator=generator)
    templates = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False) * 255

    def split(n: int) -> ImageSet:
        labels = torch.randint(0, num_classes, (n,), generator=generator)
        noise = torch.randn(n, channels, size, size, generator=generator) * 48
        images = (templates[labels] + noise).clamp_(0, 255).to(torch.uint8)
        return ImageSet(images, labels)

    return make_dataset(
        "synthetic",
        split(train),
        split(test),
        [f"class{i}" for i in range(num_classes)],
        f"synthetic-{train}-{test}-{num_classes}-{size}-{channels}-{seed}",
    )
