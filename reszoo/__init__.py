"""reszoo: a model zoo and architecture search for residual, plain and highway nets.

>>> import reszoo
>>> reszoo.list_models("resnet2*")
['resnet20']
>>> model = reszoo.create_model("resnet56")
>>> trained = reszoo.load("resnet56")  # from the registry, pulled on first use
>>> hub = reszoo.from_pretrained("user/repo")  # a folder or Hub repository reszoo export --format hf wrote
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

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

# The subpackages reszoo.latency and reszoo.search are imported here, before the functions of
# the same names: importing a subpackage binds its name in this package, and the functions
# must keep it. So write `from reszoo.search import space`, not `import reszoo.search.space as
# space` (which would look for `space` on the function). Neither import pulls in torch.
from reszoo import latency as _latency_package  # noqa: E402,F401
from reszoo.search.api import search  # noqa: E402  (torch is imported when a search runs)

if TYPE_CHECKING:
    from reszoo.latency.measure import LatencySetup, Timing
    from reszoo.zoo.factory import SpecLike
    from reszoo.zoo.records import LatencyRecord
    from reszoo.zoo.registry import Registry


def latency(
    ref: SpecLike,
    setup: LatencySetup | None = None,
    *,
    registry: Registry | None = None,
    remeasure: bool = False,
    timing: Timing | None = None,
    **fields: Any,
) -> LatencyRecord:
    """Latency of an entry or architecture: its stored row, else measured now and stored
    (``reszoo.latency("resnet56", device="cuda", runtime="graph")``); see
    :func:`reszoo.latency.measure.latency` for the arguments."""
    from reszoo.latency import measure

    return measure.latency(
        ref,
        setup,
        registry=registry,
        remeasure=remeasure,
        timing=timing if timing is not None else measure.DEFAULT_TIMING,
        **fields,
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
