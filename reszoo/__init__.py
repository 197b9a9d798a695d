"""reszoo: a model zoo and architecture search for residual, plain and highway nets.

>>> import reszoo
>>> reszoo.list_models("resnet2*")
['resnet20']
>>> model = reszoo.create_model("resnet56")
>>> trained = reszoo.load("resnet56")  # from the registry, pulled on first use
"""

from importlib.metadata import PackageNotFoundError, version

from reszoo.errors import (
    ConflictError,
    DatasetError,
    DeviceError,
    EntryNotFoundError,
    InputError,
    IntegrityError,
    MeasurementError,
    RegistryError,
    RemoteUnavailableError,
    ReszooError,
    SpecError,
    SpecFileError,
    TrainingError,
    UnknownModelError,
    WeightsError,
)
from reszoo.search.latency import latency
from reszoo.zoo import (
    ArchSpec,
    ArchitectureRecord,
    EntryRecord,
    LatencyRecord,
    ModelCounts,
    Registry,
    ReszooNet,
    count,
    create_model,
    data_transform,
    get_spec,
    list_models,
    load,
    resolve_spec,
)

try:
    __version__ = version("reszoo")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ArchSpec",
    "ArchitectureRecord",
    "ConflictError",
    "DatasetError",
    "DeviceError",
    "EntryNotFoundError",
    "EntryRecord",
    "InputError",
    "IntegrityError",
    "LatencyRecord",
    "MeasurementError",
    "ModelCounts",
    "Registry",
    "RegistryError",
    "RemoteUnavailableError",
    "ReszooError",
    "ReszooNet",
    "SpecError",
    "SpecFileError",
    "TrainingError",
    "UnknownModelError",
    "WeightsError",
    "__version__",
    "count",
    "create_model",
    "data_transform",
    "get_spec",
    "latency",
    "list_models",
    "load",
    "resolve_spec",
]
