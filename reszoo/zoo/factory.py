"""From a name, a spec file or a spec to a network: what ``create_model`` does."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from reszoo.errors import SpecError
from reszoo.zoo.network import ReszooNet, build
from reszoo.zoo.presets import get_spec
from reszoo.zoo.spec import ArchSpec, read_spec_file

#: What the API accepts wherever it needs an architecture.
SpecLike = str | os.PathLike | ArchSpec | Mapping[str, Any]


def looks_like_spec_file(ref: str | os.PathLike) -> bool:
    """A ``.json`` path or an existing file: read it instead of looking up a preset."""
    return isinstance(ref, os.PathLike) or str(ref).endswith(".json") or os.path.isfile(ref)


def resolve_spec(ref: SpecLike, **overrides: Any) -> ArchSpec:
    """Turn a preset name, spec file path, ``ArchSpec`` or dict into an ``ArchSpec``.

    Args:
        ref: ``"resnet56"``, ``"my_net.json"``, an ``ArchSpec`` or a mapping of spec fields.
        **overrides: Spec fields to replace, e.g. ``num_classes=100, stem="cifar"``.
    """
    if isinstance(ref, ArchSpec):
        spec = ref
    elif isinstance(ref, Mapping):
        spec = ArchSpec.from_dict(ref)
    elif isinstance(ref, os.PathLike) or (isinstance(ref, str) and looks_like_spec_file(ref)):
        spec = read_spec_file(ref)
    elif isinstance(ref, str):
        spec = get_spec(ref)
    else:
        raise SpecError(
            f"expected a model name, a spec file path, an ArchSpec or a dict of spec fields, got {type(ref).__name__}",
            value=ref,
        )
    return spec.with_overrides(**overrides) if overrides else spec


def resolve_arch(ref: SpecLike, registry: Any = None) -> ArchSpec:
    """The one rule for what an architecture argument names (``train``, ``bench``,
    ``import --arch``, ``latency()``): a spec, a spec file or a preset name first;
    else a registry entry's architecture (``my-net``, ``resnet34@1``). Commands
    about trained models (``show``, ``eval``, ``pull``, ``load``) take entries.

    Args:
        registry: Where to look for an entry (a ``Registry``); ``None``: presets only.
    """
    from reszoo.errors import EntryNotFoundError, InputError, UnknownModelError

    try:
        return resolve_spec(ref)
    except UnknownModelError as unknown:
        if registry is None or not isinstance(ref, str):
            raise
        try:
            return registry.get(ref).spec
        except (EntryNotFoundError, InputError):
            raise unknown from None


def create_model(
    name_or_spec: SpecLike, *, device: torch.device | str | None = None, pretrained: bool = False, **overrides: Any
) -> ReszooNet:
    """Build a freshly initialised network, or with ``pretrained`` the zoo's trained one.

    Args:
        name_or_spec: A preset name (``"resnet56"``), spec file, ``ArchSpec`` or dict.
        device: Where to allocate it; ``"meta"`` gives a shape-only net.
        pretrained: The trained entry of that name (``reszoo.load``); the only
            override it takes is ``num_classes`` (a fresh head for fine-tuning).
        **overrides: Spec fields to replace: ``create_model("resnet34", num_classes=10,
            stem="cifar")`` is the 32x32 CIFAR-stem resnet34.

    Example:
        >>> model = create_model("resnet20")
        >>> model(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    if pretrained:
        from reszoo.devices import model_device
        from reszoo.zoo.hub import load

        other = sorted(set(overrides) - {"num_classes"})
        if other or not isinstance(name_or_spec, str):
            raise SpecError(
                f"pretrained=True loads the zoo's entry {name_or_spec!r:.40} as trained; only num_classes "
                f"can change (a fresh head), not {', '.join(other) or 'a spec'}",
                field="pretrained",
            )
        if device is not None:
            device = model_device(device)  # checked before anything is pulled
        model = load(name_or_spec, num_classes=overrides.get("num_classes"))
        return model.to(device) if device is not None else model
    return build(resolve_spec(name_or_spec, **overrides), device=device)
