"""Architectures: specs, blocks, the network builder, presets and counting."""

from reszoo.zoo.counting import ModelCounts, count
from reszoo.zoo.hub import data_transform, list_models, load, local_registry
from reszoo.zoo.factory import create_model, resolve_spec
from reszoo.zoo.network import ReszooNet, build
from reszoo.zoo.presets import PRESETS, get_spec, list_presets
from reszoo.zoo.records import ArchitectureRecord, EntryRecord, LatencyRecord
from reszoo.zoo.registry import Registry
from reszoo.zoo.spec import ArchSpec, read_spec_file, write_spec_file

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
