"""Image classification data sets, decoded once into uint8 tensors.

Sources: an image-folder tree (``train/<class>/*.jpg``, ``test/<class>/*.jpg``)
or a ``.tar``/``.tar.gz`` of one (as the JPEG CIFAR-10 copy), torchvision's
CIFAR-10/100 folders (``cifar-10-batches-py``, ``cifar-100-python``),
Fashion-MNIST/MNIST idx files, and a synthetic learnable set for tests.

Decoding happens once, on the CPU: the tensors are cached on disk as
safetensors, keyed by a fingerprint of the source, so a second load reads
one file. Per-channel mean and std and the class names travel with the data
set into the registry.

(About 500 lines: one reader per source format, each short, behind one
``load``; splitting them apart would scatter the formats a user can give.)
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import struct
import tarfile
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from reszoo.errors import DatasetError
from reszoo.files import atomic_file
from reszoo.zoo.spec import ArchSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Where data sets are looked for by name, after --data-root and $RESZOO_DATA.
DEFAULT_ROOTS = ("/usr/share/datasets",)


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
            ("num_classes", dataset.num_classes), ("in_chans", dataset.in_chans), ("input_size", dataset.input_size)
        )
        if getattr(spec, key) != value
    }
    return spec.with_overrides(**changes) if changes else spec


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.float().div_(255)
    return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).tolist())


def _dataset(name: str, train: ImageSet, test: ImageSet, classes: Iterable[str], fingerprint: str) -> Dataset:
    mean, std = channel_stats(train.images)
    return Dataset(name, train, test, tuple(classes), mean, std, fingerprint)


# ----------------------------------------------------------------- synthetic


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

    return _dataset(
        "synthetic", split(train), split(test), [f"class{i}" for i in range(num_classes)],
        f"synthetic-{train}-{test}-{num_classes}-{size}-{channels}-{seed}",
    )


# ------------------------------------------------------------- image folders


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
        raise DatasetError(
            f"{source}: test classes {sorted(splits['test'])} differ from train classes {classes}"
        )

    def image_set(split: str) -> ImageSet:
        names, blobs, labels = [], [], []
        for index, label in enumerate(classes):
            for path, data in sorted(splits[split][label]):
                names.append(path)
                blobs.append(data)
                labels.append(index)
        return ImageSet(_decode(blobs, names), torch.tensor(labels, dtype=torch.int64))

    return _dataset(Path(source).name.split(".")[0], image_set("train"), image_set("test"), classes, "")


def _read_folder(root: Path) -> Dataset:
    members = (
        (str(path.relative_to(root)), path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )
    return _split_members(members, str(root))


def _read_archive(path: Path) -> Dataset:
    def members():
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


def _open_maybe_gz(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _read_idx(path: Path, expected_dims: int) -> torch.Tensor:
    try:
        with _open_maybe_gz(path) as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if (
        len(data) < 4 + 4 * expected_dims
        or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] != expected_dims
    ):
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


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _read_idx_folder(root: Path) -> Dataset:
    def image_set(prefix: str) -> ImageSet:
        images = _read_idx(_find(root, f"{prefix}-images-idx3-ubyte"), 3)
        labels = _read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"), 1).long()
        if len(images) != len(labels):
            raise DatasetError(f"{root}: {len(images)} {prefix} images but {len(labels)} labels")
        return ImageSet(images.unsqueeze(1).contiguous(), labels)

    name = "fashion-mnist" if "fashion" in str(root).lower() else root.name
    classes = FASHION_CLASSES if name == "fashion-mnist" else tuple(str(i) for i in range(10))
    return _dataset(name, image_set("train"), image_set("t10k"), classes, "")


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

    def image_set(ds) -> ImageSet:
        return ImageSet(torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets))

    return _dataset("cifar100" if hundred else "cifar10", image_set(train), image_set(test), train.classes, "")


# --------------------------------------------------------------- resolution


def _fingerprint(path: Path) -> str:
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


def _reader(path: Path):
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


#: Names a user may give instead of a path, and the folder or file names they are found under.
KNOWN = {
    "cifar10": ("cifar10-jpeg.tar.gz", "cifar10", "cifar-10-batches-py", "CIFAR-10-images"),
    "cifar100": ("cifar100", "cifar-100-python"),
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
}


def data_roots(extra: str | os.PathLike | None = None) -> list[Path]:
    roots = [Path(extra)] if extra else []
    if os.environ.get("RESZOO_DATA"):
        roots += [Path(p) for p in os.environ["RESZOO_DATA"].split(os.pathsep) if p]
    return roots + [Path(p) for p in DEFAULT_ROOTS]


def find(name: str, root: str | os.PathLike | None = None) -> Path:
    """The path of a data set given by path or by a known name."""
    path = Path(name).expanduser()
    if path.exists():
        return path
    if name not in KNOWN:
        raise DatasetError(
            f"data set {name!r} is neither a path nor a known name ({', '.join(sorted(KNOWN))}, synthetic)"
        )
    searched = []
    for base in data_roots(root):
        for candidate in KNOWN[name]:
            searched.append(base / candidate)
            if (base / candidate).exists():
                return base / candidate
    raise DatasetError(
        f"data set {name!r} not found; looked in {', '.join(map(str, searched[:6]))}. Point --data-root or "
        f"RESZOO_DATA at the folder that holds it, or give its path"
        + ("; Debian's dataset-fashion-mnist package installs it" if name == "fashion-mnist" else "")
    )


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
        path = _download_cifar(name, Path(root) if root else _default_cache() / "torchvision")
    reader = _reader(path)
    fingerprint = _fingerprint(path)
    cache = Path(cache_dir if cache_dir is not None else _default_cache()) / f"{fingerprint}.safetensors"
    if cache.is_file():
        try:
            return _named(_from_cache(cache), _known_name(name, path))
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError):
            pass  # a damaged cache entry is rebuilt below
    dataset = reader(path)
    dataset = Dataset(dataset.name, dataset.train, dataset.test, dataset.classes, dataset.mean, dataset.std,
                      fingerprint)
    _to_cache(dataset, cache)
    return _named(dataset, _known_name(name, path))


def _known_name(name: str, path: Path) -> str | None:
    """``cifar10`` for ``--dataset cifar10`` and for a path to a file KNOWN lists under it
    (``cifar10-jpeg.tar.gz``): one data set gets one name in the registry however it was given."""
    if name in KNOWN:
        return name
    return next((known for known, files in KNOWN.items() if path.name in files), None)


def _named(dataset: Dataset, name: str | None) -> Dataset:
    # The cache keeps the name of whatever load decoded first; the caller's name wins.
    return dataclasses.replace(dataset, name=name) if name else dataset


def _default_cache() -> Path:
    from reszoo.zoo.hub import home

    return home() / "data"


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


def _to_cache(dataset: Dataset, cache: Path) -> None:
    """Keep the decoded set for next time. A cache that cannot be written (a full
    disk, an unwritable home) costs a decoding next time, never this run."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(cache) as tmp:
            save_file(
                {"train_images": dataset.train.images, "train_labels": dataset.train.labels,
                 "test_images": dataset.test.images, "test_labels": dataset.test.labels},
                str(tmp),
                metadata={"info": json.dumps({"name": dataset.name, "classes": list(dataset.classes),
                                              "mean": list(dataset.mean), "std": list(dataset.std)})},
            )
    except (OSError, SafetensorError) as exc:
        warnings.warn(f"could not cache the decoded data set in {cache.parent} ({exc}); it will be decoded again "
                      "next time", RuntimeWarning, stacklevel=3)


def _from_cache(cache: Path) -> Dataset:
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


__all__ = ["Dataset", "DatasetError", "ImageSet", "find", "load", "synthetic"]
