"""Architectures: specs, blocks, the network builder, presets and counting, and the registry.

Names are imported on first use (reszoo.lazy): reading a spec or a preset
needs no torch.
"""

from reszoo.lazy import lazy_attributes

_WHERE = {
    "ModelCounts": "reszoo.zoo.counting",
    "count": "reszoo.zoo.counting",
    "data_transform": "reszoo.zoo.hub",
    "list_models": "reszoo.zoo.hub",
    "load": "reszoo.zoo.hub",
    "local_registry": "reszoo.zoo.hub",
    "create_model": "reszoo.zoo.factory",
    "resolve_spec": "reszoo.zoo.factory",
    "ReszooNet": "reszoo.zoo.network",
    "build": "reszoo.zoo.network",
    "PRESETS": "reszoo.zoo.presets",
    "get_spec": "reszoo.zoo.presets",
    "list_presets": "reszoo.zoo.presets",
    "ArchitectureRecord": "reszoo.zoo.records",
    "EntryRecord": "reszoo.zoo.records",
    "LatencyRecord": "reszoo.zoo.records",
    "Registry": "reszoo.zoo.registry",
    "ArchSpec": "reszoo.zoo.spec",
    "read_spec_file": "reszoo.zoo.spec",
    "write_spec_file": "reszoo.zoo.spec",
}

__getattr__, __dir__ = lazy_attributes(__name__, _WHERE)

__all__ = [
    "PRESETS",
    "ArchSpec",
    "ArchitectureRecord",
    "EntryRecord",
    "LatencyRecord",
    "ModelCounts",
    "Registry",
    "ReszooNet",
    "build",
    "count",
    "create_model",
    "data_transform",
    "get_spec",
    "list_models",
    "list_presets",
    "load",
    "local_registry",
    "read_spec_file",
    "resolve_spec",
    "write_spec_file",
]
