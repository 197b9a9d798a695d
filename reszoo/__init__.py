"""reszoo: a model zoo and architecture search for residual, plain and highway nets.

>>> import reszoo
>>> reszoo.list_models("resnet2*")
['resnet20']
>>> model = reszoo.create_model("resnet56")
"""

from importlib.metadata import PackageNotFoundError, version

from reszoo.errors import ReszooError, SpecError, SpecFileError, UnknownModelError
from reszoo.zoo import (
    ArchSpec,
    ModelCounts,
    ReszooNet,
    count,
    create_model,
    get_spec,
    list_models,
    resolve_spec,
)

try:
    __version__ = version("reszoo")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ArchSpec",
    "ModelCounts",
    "ReszooError",
    "ReszooNet",
    "SpecError",
    "SpecFileError",
    "UnknownModelError",
    "__version__",
    "count",
    "create_model",
    "get_spec",
    "list_models",
    "resolve_spec",
]
