"""Data order and augmentation of a training run, on the training device.

Every epoch's order and augmentation come from generators seeded by (seed,
epoch), drawn on the CPU in one fixed order, so that a resumed run, a run on
another device and each data-parallel rank (its shard of one global shuffle)
see exactly the batches an uninterrupted single-process run would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7 + stream)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (images.float().div_(255) - mean) / std


@dataclass(frozen=True)
class AugmentParams:
    """Random crop offsets and flips for one global batch, drawn once so that
    every data-parallel rank applies the ones of its own samples."""

    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor

    @classmethod
    def draw(cls, batch: int, generator: torch.Generator, padding: int) -> AugmentParams:
        dy = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
        return cls(dy, dx, torch.rand(batch, generator=generator) < 0.5)

    @classmethod
    def draw_epoch(
        cls, batches: list[int], generator: torch.Generator, padding: int, rank: int, world: int, device: torch.device
    ) -> list[AugmentParams]:
        """Every batch's parameters of one epoch (global batch sizes ``batches``), drawn
        in the order a batch-by-batch draw would use, and moved to ``device`` at once:
        three copies an epoch instead of three a step, which would each wait for the
        GPU (and on CUDA streams, for the stream's last step)."""
        drawn = [cls.draw(size, generator, padding).shard(rank, world) for size in batches]
        if not drawn:
            return []
        sizes = [len(p.flip) for p in drawn]
        dy, dx, flip = (torch.cat([getattr(p, k) for p in drawn]).to(device) for k in ("dy", "dx", "flip"))
        return [cls(*parts) for parts in zip(dy.split(sizes), dx.split(sizes), flip.split(sizes), strict=True)]

    def shard(self, rank: int, world: int) -> AugmentParams:
        """Rank ``rank``'s contiguous share: every rank's part of a global batch has the same length."""
        size = len(self.flip) // world
        part = slice(rank * size, (rank + 1) * size)
        return AugmentParams(self.dy[part], self.dx[part], self.flip[part])


def shard_order(permutation: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s epoch order, as indices into its shard of the training set.

    Global image ``i`` lives on rank ``i % world`` at local index ``i // world``.
    A rank visits its images in the order of the global ``permutation`` and stops
    after ``len(permutation) // world`` of them, so that every rank takes the
    same number of steps. With one process this is ``permutation`` itself.
    """
    mine = permutation[permutation % world == rank] // world
    return mine[: len(permutation) // world]


def augment(images: torch.Tensor, params: AugmentParams, padding: int, flip: bool) -> torch.Tensor:
    """Crops of the zero-padded batch and horizontal flips, on the batch's device."""
    batch, _, height, width = images.shape
    device = images.device
    if padding:
        padded = F.pad(images, (padding, padding, padding, padding))
        rows = (params.dy.to(device)[:, None] + torch.arange(height, device=device))[:, None, :, None]
        cols = (params.dx.to(device)[:, None] + torch.arange(width, device=device))[:, None, None, :]
        index = torch.arange(batch, device=device)[:, None, None, None]
        channels = torch.arange(images.shape[1], device=device)[None, :, None, None]
        images = padded[index, channels, rows, cols]
    if flip:
        images = torch.where(params.flip.to(device)[:, None, None, None], images.flip(-1), images)
    return images
