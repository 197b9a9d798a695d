"""The user's registries and ``reszoo.load``: the local registry (created on first
write), the default remote, and pulling on first use. Where they are is
``locations.py``'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from reszoo.errors import EntryNotFoundError, RegistryError
from reszoo.files import ensure_folder
from reszoo.zoo.locations import SHIPPED_REGISTRY, home, local_url, remote_url
from reszoo.zoo.presets import list_presets, natural_key
from reszoo.zoo.records import EntryRecord
from reszoo.zoo.registry import Registry

if TYPE_CHECKING:
    from reszoo.zoo.network import ReszooNet

__all__ = [
    "SHIPPED_REGISTRY",
    "add_presets",
    "data_transform",
    "fetch",
    "home",
    "list_models",
    "load",
    "local_registry",
    "local_url",
    "remote_url",
    "with_new_head",
]


def local_registry(url: str | None = None) -> Registry:
    """The user's registry (created on first write; one in a read-only folder reads)."""
    if url is None:
        url = local_url()
        if "://" not in url and not Path(url).exists():
            ensure_folder(Path(url).parent, "the local registry's folder ($RESZOO_HOME or $RESZOO_REGISTRY)")
    return Registry(url)


def load(
    ref: str | os.PathLike[str],
    *,
    registry: Registry | str | None = None,
    remote: Registry | str | None = None,
    num_classes: int | None = None,
) -> ReszooNet:
    """A trained model from the local registry, pulled from the remote on first use;
    or from a model folder that ``reszoo export --format hf`` wrote.

    Works offline once pulled, like ``timm.create_model(name, pretrained=True)``.

    Args:
        ref: ``resnet56``, ``resnet56@2`` or ``resnet56:best``; a folder (a ``Path``,
            or a string with a ``/``); or ``hf-hub:user/repo``, a Hub repository
            (:func:`reszoo.export.hf.from_pretrained`).
        registry: The local registry (default :func:`local_registry`).
        remote: Where to pull from when it is not local (default :func:`remote_url`).
        num_classes: For fine-tuning: a fresh classifier of this many classes on
            the trained trunk (every other weight as trained).
    """
    if isinstance(ref, os.PathLike) or "/" in ref or os.sep in ref:
        from reszoo.export.hf import HUB_PREFIX, from_pretrained, load_folder

        if str(ref).startswith(HUB_PREFIX):
            model = from_pretrained(ref)
        elif Path(ref).is_dir():
            model = load_folder(ref)
        else:
            raise EntryNotFoundError(f"no model folder {str(ref)!r}; for a Hub repository write '{HUB_PREFIX}{ref}'")
        return model if num_classes is None else with_new_head(model, num_classes)
    model = fetch(ref, registry=registry, remote=remote)[1]
    return model if num_classes is None else with_new_head(model, num_classes)


def with_new_head(model: ReszooNet, num_classes: int) -> ReszooNet:
    """``model`` with a freshly initialised classifier for ``num_classes`` classes,
    as timm's ``create_model(..., pretrained=True, num_classes=K)`` gives."""
    from reszoo.zoo.network import build

    spec = model.spec.with_overrides(num_classes=num_classes)
    if spec == model.spec:
        return model
    fresh = build(spec)
    trunk = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    fresh.load_state_dict(trunk, strict=False)
    cfg: dict[str, Any] = {**getattr(model, "pretrained_cfg", {}), "num_classes": num_classes}
    cfg.pop("label_names", None)  # the new head's classes are the fine-tuner's
    fresh.pretrained_cfg = cfg
    return fresh.eval()


def fetch(
    ref: str, *, registry: Registry | str | None = None, remote: Registry | str | None = None
) -> tuple[EntryRecord, ReszooNet]:
    """The entry ``ref`` names and its model, from the local registry, pulled from the
    remote first when it is not there: what :func:`load` and ``reszoo eval`` do."""
    local: Registry | None
    where: str | None = None  # the local registry's URL, where it is not given as a Registry
    if isinstance(registry, Registry):
        local = registry
    else:
        where = registry
        url = where or local_url()
        if "://" in url or Path(url).is_file():
            local = local_registry(where)
        else:
            local = None  # not created until there is something to put in it
    if local is not None:
        try:
            record = local.get(ref)
            return record, local.load(record.ref)
        except EntryNotFoundError:
            pass
    # Reach the remote before the local registry is created or written.
    source = remote if isinstance(remote, Registry) else Registry(remote_url(remote), readonly=True)
    source.get(ref)
    local = local or local_registry(where)
    return local.pull_and_load(ref, source)


def data_transform(model: nn.Module) -> Callable[[Any], torch.Tensor]:
    """The torchvision transform a loaded model's inputs need (a PIL image or a
    uint8 tensor in, a normalised float tensor out): timm's ``create_transform``
    with the config :func:`timm.data.resolve_data_config` reads off the model's
    ``pretrained_cfg``.

    Example:
        >>> model = reszoo.load("resnet20")
        >>> x = reszoo.data_transform(model)(pil_image).unsqueeze(0)
    """
    from timm.data import create_transform, resolve_data_config

    if not getattr(model, "pretrained_cfg", None):
        raise RegistryError(
            "this model carries no pretrained_cfg: data_transform needs a model from reszoo.load() or Registry.load()"
        )
    return create_transform(**resolve_data_config(model=model))


def list_models(
    pattern: str | list[str] = "*",
    family: str | None = None,
    *,
    pretrained: bool = False,
    registry: Registry | str | None = None,
) -> list[str]:
    """Preset names and entry names of the local registry matching ``pattern``.

    Args:
        pattern: Shell-style pattern (``"resnet*"``) or a list of them.
        family: ``residual``, ``plain`` or ``highway``.
        pretrained: Only names with trained weights in the registry.
        registry: The registry to read (default: the local one, if it exists;
            listing never creates it).
    """
    names = set() if pretrained else set(list_presets(pattern, family=family))
    if registry is None:
        url = local_url()
        if "://" not in url and not Path(url).is_file():
            return sorted(names, key=natural_key)
        registry = url
    reg = registry if isinstance(registry, Registry) else Registry(registry, readonly=True)
    for p in [pattern] if isinstance(pattern, str) else pattern:
        names.update(r.name for r in reg.list(p, family=family))
    return sorted(names, key=natural_key)


def add_presets(registry: Registry) -> int:
    """Record every preset's architecture (spec, params, MACs) under its name; idempotent."""
    from reszoo.zoo.presets import PRESETS

    for name, spec in PRESETS.items():
        registry.add_architecture(spec, name)
    return len(PRESETS)
