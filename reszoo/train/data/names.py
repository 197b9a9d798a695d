"""Data sets by name: where a known name (``cifar10``, ``fashion-mnist``) is looked
for, and which data set a search takes when none is named."""

from __future__ import annotations

import os
from pathlib import Path

from reszoo.errors import DatasetError, suggest

#: Where data sets are looked for by name, after --data-root and $RESZOO_DATA.
DEFAULT_ROOTS = ("/usr/share/datasets",)

#: Names a user may give instead of a path, and the folder or file names they are found under.
KNOWN = {
    "cifar10": ("cifar10-jpeg.tar.gz", "cifar10", "cifar-10-batches-py", "CIFAR-10-images"),
    "cifar100": ("cifar100", "cifar-100-python"),
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
}

#: Data sets a search looks for when none is named, in this order.
LOCAL_DATASETS = ("fashion-mnist", "cifar10")


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
        close = suggest(name, [*KNOWN, "synthetic"])
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DatasetError(
            f"data set {name!r} is neither a path nor a known name{hint} (known: {', '.join(sorted(KNOWN))}, synthetic)"
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


def known_name(name: str, path: Path) -> str | None:
    """``cifar10`` for ``--dataset cifar10`` and for a path to a file KNOWN lists under it
    (``cifar10-jpeg.tar.gz``): one data set gets one name in the registry however it was given."""
    if name in KNOWN:
        return name
    return next((known for known, files in KNOWN.items() if path.name in files), None)


def local_dataset(root: str | None = None) -> str:
    """The path of the first of :data:`LOCAL_DATASETS` found on this machine, or an error saying how to get one.

    Looks where ``--dataset NAME`` looks (``root``, ``$RESZOO_DATA``,
    /usr/share/datasets), then where ``reszoo train --download`` and
    torchvision's examples put CIFAR-10 (``$RESZOO_HOME/data/torchvision``, ./data).
    """
    from reszoo.zoo.hub import home

    roots: list[str | None] = [root, str(home() / "data" / "torchvision"), "data"]
    for name in LOCAL_DATASETS:
        for base in roots:
            try:
                return str(find(name, base))
            except DatasetError:
                continue
    looked = ", ".join(str(r) for r in [*data_roots(root), *roots[1:]])
    raise DatasetError(
        f"no data set found in {looked}. Get one: `sudo apt install dataset-fashion-mnist` (Debian/Ubuntu, installs "
        "/usr/share/datasets/fashion-mnist), or `reszoo train resnet20 --dataset cifar10 --download --epochs 1` "
        "(fetches CIFAR-10 with torchvision), or pass --dataset PATH (an image-folder tree or .tar.gz of one, "
        "idx files, torchvision's CIFAR folders), or point --data-root / RESZOO_DATA at a folder holding one"
    )
