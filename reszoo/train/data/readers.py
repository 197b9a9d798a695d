"""Readers, one per source format, each turning a path into a :class:`Dataset`.

An image-folder tree (``train/<class>/*.jpg``, ``test/<class>/*.jpg``) or a
``.tar``/``.tar.gz`` of one (as the JPEG CIFAR-10 copy), torchvision's
CIFAR-10/100 folders (``cifar-10-batches-py``, ``cifar-100-python``) and
Fashion-MNIST/MNIST idx files. :func:`reader_for` picks one by what a path holds.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from reszoo.errors import DatasetError
from reszoo.train.data.sets import Dataset, ImageSet, make_dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _decode_on_cpu(data: list[bytes], names: list[str]) -> list[torch.Tensor]:
    """RGB uint8 (3, H, W) tensors, decoded by Pillow.

    torchvision 0.29 deprecated its image decoders (for TorchCodec). Pillow,
    which torchvision already depends on, gave the same pixels for 3,000 of the
    CIFAR JPEGs (both are libjpeg-turbo with its defaults), so caches and
    trained nets are unaffected; it takes about 10 s more to decode the
    60,000 once.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    images = []
    for blob, name in zip(data, names):
        try:
            with Image.open(io.BytesIO(blob)) as image:
                array = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DatasetError(f"cannot decode image {name}: {exc}") from None
        images.append(torch.from_numpy(array.copy()).permute(2, 0, 1))
    return images


def _decode(data: list[bytes], names: list[str]) -> torch.Tensor:
    """The images as one uint8 (N, 3, H, W) tensor, decoded by libjpeg/libpng on the CPU.

    Never on the GPU: on an H200, nvjpeg decoded 2,000 CIFAR JPEGs in 0.099 s
    against the CPU's 0.068 s, and its pixels differed from libjpeg's in 43% of
    values (by up to 87, its chroma upsampling is not libjpeg's), so a net
    trained on one decoding would be evaluated on another
    (benchmarks/jpeg_decode_check.py, benchmarks/README.md).
    """
    images = _decode_on_cpu(data, names)
    shapes = {tuple(img.shape) for img in images}
    if len(shapes) > 1:
        raise DatasetError(f"images differ in size ({sorted(shapes)[:3]}...); reszoo expects one size per data set")
    return torch.stack(images) if images else torch.empty(0, 3, 0, 0, dtype=torch.uint8)


def _split_members(members: Iterable[tuple[str, bytes]], source: str) -> Dataset:
    """Build a data set from (path, bytes) pairs laid out as split/class/file."""
    splits: dict[str, dict[str, list[tuple[str, bytes]]]] = {"train": {}, "test": {}}
    for path, data in members:
        parts = Path(path).parts
        if len(parts) < 3 or not path.lower().endswith(IMAGE_SUFFIXES):
            continue
        split, label = parts[-3], parts[-2]
        if split in splits:
            splits[split].setdefault(label, []).append((path, data))
    for split in ("train", "test"):
        if not splits[split]:
            raise DatasetError(
                f"{source} has no {split}/<class>/<image> files; expected an image-folder tree "
                "train/<class>/*.jpg and test/<class>/*.jpg"
            )
    classes = sorted(splits["train"])
    if sorted(splits["test"]) != classes:
        raise DatasetError(f"{source}: test classes {sorted(splits['test'])} differ from train classes {classes}")

    def image_set(split: str) -> ImageSet:
        names, blobs, labels = [], [], []
        for index, label in enumerate(classes):
            for path, data in sorted(splits[split][label]):
                names.append(path)
                blobs.append(data)
                labels.append(index)
        return ImageSet(_decode(blobs, names), torch.tensor(labels, dtype=torch.int64))

    return make_dataset(Path(source).name.split(".")[0], image_set("train"), image_set("test"), classes, "")


def _read_folder(root: Path) -> Dataset:
    members = (
        (str(path.relative_to(root)), path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )
    return _split_members(members, str(root))


def _read_archive(path: Path) -> Dataset:
    def members() -> Iterator[tuple[str, bytes]]:
        try:
            with tarfile.open(path, "r:*") as archive:
                for member in archive:
                    if member.isfile() and member.name.lower().endswith(IMAGE_SUFFIXES):
                        handle = archive.extractfile(member)
                        if handle is not None:
                            yield member.name, handle.read()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise DatasetError(f"{path} is not a readable tar archive of images: {exc}") from None

    return _split_members(members(), str(path))


# ----------------------------------------------------------------- idx files


def _open_maybe_gz(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _read_idx(path: Path, expected_dims: int) -> torch.Tensor:
    try:
        with _open_maybe_gz(path) as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if len(data) < 4 + 4 * expected_dims or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] != expected_dims:
        raise DatasetError(
            f"{path} is not an idx file of unsigned bytes with {expected_dims} dimensions "
            f"(header {data[:4].hex() or 'empty'}, expected 000008{expected_dims:02x})"
        )
    dims = struct.unpack(f">{expected_dims}I", data[4 : 4 + 4 * expected_dims])
    body = data[4 + 4 * expected_dims :]
    count = 1
    for d in dims:
        count *= d
    if len(body) != count:
        raise DatasetError(f"{path} is truncated: header says {dims} ({count} bytes), file holds {len(body)}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{root} has no {stem} or {stem}.gz (the idx files of MNIST / Fashion-MNIST)")


FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _read_idx_folder(root: Path) -> Dataset:
    def image_set(prefix: str) -> ImageSet:
        images = _read_idx(_find(root, f"{prefix}-images-idx3-ubyte"), 3)
        labels = _read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"), 1).long()
        if len(images) != len(labels):
            raise DatasetError(f"{root}: {len(images)} {prefix} images but {len(labels)} labels")
        return ImageSet(images.unsqueeze(1).contiguous(), labels)

    name = "fashion-mnist" if "fashion" in str(root).lower() else root.name
    classes = FASHION_CLASSES if name == "fashion-mnist" else tuple(str(i) for i in range(10))
    return make_dataset(name, image_set("train"), image_set("t10k"), classes, "")


# ------------------------------------------------------- torchvision CIFAR


def _read_torchvision_cifar(root: Path, hundred: bool) -> Dataset:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR100 if hundred else CIFAR10
    try:
        # torchvision's own reader of its own download format (python pickles
        # of numpy arrays, as the CIFAR authors publish them).
        train, test = cls(str(root), train=True, download=False), cls(str(root), train=False, download=False)
    except (RuntimeError, OSError, ValueError) as exc:
        raise DatasetError(f"{root} is not a torchvision {cls.__name__} folder: {exc}") from None

    def image_set(ds: Any) -> ImageSet:  # a torchvision CIFAR data set (torchvision has no types)
        return ImageSet(torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets))

    return make_dataset("cifar100" if hundred else "cifar10", image_set(train), image_set(test), train.classes, "")


def reader_for(path: Path) -> Callable[[Path], Dataset]:
    if path.is_file():
        if path.name.endswith((".tar", ".tar.gz", ".tgz")):
            return _read_archive
        raise DatasetError(f"{path} is a file but not a .tar/.tar.gz archive of an image-folder tree")
    if (path / "cifar-10-batches-py").is_dir() or path.name == "cifar-10-batches-py":
        root = path.parent if path.name == "cifar-10-batches-py" else path
        return lambda _: _read_torchvision_cifar(root, hundred=False)
    if (path / "cifar-100-python").is_dir() or path.name == "cifar-100-python":
        root = path.parent if path.name == "cifar-100-python" else path
        return lambda _: _read_torchvision_cifar(root, hundred=True)
    if any(path.glob("train-images-idx3-ubyte*")):
        return _read_idx_folder
    if (path / "train").is_dir():
        return _read_folder
    raise DatasetError(
        f"{path} holds no data set reszoo knows: expected train/ and test/ class folders, idx files "
        "(train-images-idx3-ubyte.gz, ...), or torchvision's cifar-10-batches-py / cifar-100-python"
    )
