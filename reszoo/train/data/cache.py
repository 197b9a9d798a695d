"""The decoded-tensor cache: a data set is decoded once, then read back from one
safetensors file named by a fingerprint of its source."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from reszoo.files import atomic_file
from reszoo.train.data.sets import Dataset, ImageSet

#: What a damaged cache entry raises when read (it is then decoded again).
CACHE_ERRORS = (OSError, ValueError, KeyError, RuntimeError, SafetensorError)


def fingerprint(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's file names, sizes and modification times."""
    digest = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    else:
        for item in sorted(path.rglob("*")):
            if item.is_file():
                stat = item.stat()
                digest.update(f"{item.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def default_cache() -> Path:
    from reszoo.zoo.hub import home

    return home() / "data"


def save(dataset: Dataset, cache: Path) -> None:
    """Keep the decoded set for next time. A cache that cannot be written (a full
    disk, an unwritable home) costs a decoding next time, never this run."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(cache) as tmp:
            save_file(
                {
                    "train_images": dataset.train.images,
                    "train_labels": dataset.train.labels,
                    "test_images": dataset.test.images,
                    "test_labels": dataset.test.labels,
                },
                str(tmp),
                metadata={
                    "info": json.dumps(
                        {
                            "name": dataset.name,
                            "classes": list(dataset.classes),
                            "mean": list(dataset.mean),
                            "std": list(dataset.std),
                        }
                    )
                },
            )
    except (OSError, SafetensorError) as exc:
        warnings.warn(
            f"could not cache the decoded data set in {cache.parent} ({exc}); it will be decoded again next time",
            RuntimeWarning,
            stacklevel=3,
        )


def read(cache: Path) -> Dataset:
    """The data set kept in ``cache`` (raises one of :data:`CACHE_ERRORS` if it is damaged)."""
    from safetensors import safe_open

    with safe_open(str(cache), "pt") as handle:
        info = json.loads(handle.metadata()["info"])
    tensors = load_file(str(cache))
    return Dataset(
        info["name"],
        ImageSet(tensors["train_images"], tensors["train_labels"]),
        ImageSet(tensors["test_images"], tensors["test_labels"]),
        tuple(info["classes"]),
        tuple(info["mean"]),
        tuple(info["std"]),
        cache.stem,
    )
