"""reszoo: a model zoo and architecture search for residual, plain and highway nets.

>>> import reszoo
>>> reszoo.list_models("resnet2*")
['resnet20']
>>> model = reszoo.create_model("resnet56")
>>> trained = reszoo.load("resnet56")  # from the registry, pulled on first use
>>> hub = reszoo.from_pretrained("user/repo")  # a folder or Hub repository reszoo export --format hf wrote
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
from reszoo.lazy import lazy_attributes

# Imported on first use: `import reszoo` and `reszoo --help` pay for torch only when a name needs it.
_WHERE = {
    "LatencySetup": "reszoo.latency.measure",
    "latency": "reszoo.latency:",  # the subpackage, callable: reszoo.latency(...) measures or reads a row
    "search": "reszoo.search:",  # the subpackage, callable: reszoo.search(...) runs reszoo.search.api.search
    "ArchSpec": "reszoo.zoo.spec",
    "ArchitectureRecord": "reszoo.zoo.records",
    "EntryRecord": "reszoo.zoo.records",
    "LatencyRecord": "reszoo.zoo.records",
    "ModelCounts": "reszoo.zoo.counting",
    "Registry": "reszoo.zoo.registry",
    "ReszooNet": "reszoo.zoo.network",
    "count": "reszoo.zoo.counting",
    "create_model": "reszoo.zoo.factory",
    "data_transform": "reszoo.zoo.hub",
    "from_pretrained": "reszoo.export.hf",
    "get_spec": "reszoo.zoo.presets",
    "list_models": "reszoo.zoo.hub",
    "load": "reszoo.zoo.hub",
    "resolve_spec": "reszoo.zoo.factory",
}

__getattr__, __dir__ = lazy_attributes(__name__, _WHERE)

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
    "LatencySetup",
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
    "from_pretrained",
    "get_spec",
    "latency",
    "list_models",
    "load",
    "resolve_spec",
    "search",
]
