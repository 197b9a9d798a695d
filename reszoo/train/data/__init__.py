"""Image classification data sets, decoded once into uint8 tensors.

:func:`load` takes a path or a known name (names.py), picks the reader for
what the path holds (readers.py: image folders and their archives,
torchvision's CIFAR folders, idx files), and keeps the decoded tensors in a
safetensors cache keyed by a fingerprint of the source (cache.py), so a
second load reads one file. Per-channel mean and std and the class names
travel with the data set (sets.py) into the registry.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from reszoo.errors import DatasetError
from reszoo.train.data import cache
from reszoo.train.data.names import KNOWN, data_roots, find, known_name, local_dataset
from reszoo.train.data.readers import reader_for
from reszoo.train.data.sets import Dataset, ImageSet, channel_stats, fit_spec, synthetic


def load(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> Dataset:
    """Load a data set by path or name, decoding it once into a safetensors cache.

    Args:
        name: A path (folder or archive), ``cifar10``, ``cifar100``,
            ``fashion-mnist``, or ``synthetic`` (optionally ``synthetic:N``).
        root: Folder to look in for named data sets, before ``$RESZOO_DATA``.
        cache_dir: Where decoded tensors are kept (default ``$RESZOO_HOME/data``).
        download: For ``cifar10``/``cifar100`` not found locally, let torchvision
            download them (needs network access) into ``root`` or the cache folder.
    """
    if name == "synthetic" or name.startswith("synthetic:"):
        count_text = name.partition(":")[2] or "2000"
        if not count_text.isdigit() or int(count_text) < 10:
            raise DatasetError(f"synthetic:N takes a number of training images (at least 10), got {name!r}")
        count = int(count_text)
        return synthetic(train=count, test=max(count // 4, 100))
    try:
        path = find(name, root)
    except DatasetError:
        if not (download and name in ("cifar10", "cifar100")):
            raise
        path = _download_cifar(name, Path(root) if root else cache.default_cache() / "torchvision")
    reader = reader_for(path)
    fingerprint = cache.fingerprint(path)
    stored = Path(cache_dir if cache_dir is not None else cache.default_cache()) / f"{fingerprint}.safetensors"
    if stored.is_file():
        try:
            return _named(cache.read(stored), known_name(name, path))
        except cache.CACHE_ERRORS:
            pass  # a damaged cache entry is rebuilt below
    dataset = dataclasses.replace(reader(path), fingerprint=fingerprint)
    cache.save(dataset, stored)
    return _named(dataset, known_name(name, path))


def _named(dataset: Dataset, name: str | None) -> Dataset:
    # The cache keeps the name of whatever load decoded first; the caller's name wins.
    return dataclasses.replace(dataset, name=name) if name else dataset


def _download_cifar(name: str, folder: Path) -> Path:
    """torchvision's download of CIFAR-10/100 (checksummed by torchvision) into ``folder``."""
    from torchvision.datasets import CIFAR10, CIFAR100

    folder.mkdir(parents=True, exist_ok=True)
    cls = CIFAR100 if name == "cifar100" else CIFAR10
    try:
        for train in (True, False):
            cls(str(folder), train=train, download=True)
    except (OSError, RuntimeError) as exc:  # urllib errors are OSErrors
        raise DatasetError(f"could not download {name} into {folder}: {exc}") from None
    return folder


__all__ = [
    "KNOWN",
    "Dataset",
    "DatasetError",
    "ImageSet",
    "channel_stats",
    "data_roots",
    "find",
    "fit_spec",
    "load",
    "local_dataset",
    "synthetic",
]
