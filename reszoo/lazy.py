"""Package attributes imported on first use (PEP 562).

``import reszoo`` and ``reszoo --help`` should not pay for torch, timm,
SQLAlchemy, Optuna or matplotlib before anything needs them: a package
``__init__`` lists where each public name lives, and the module holding it is
imported the first time the name is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps each public
    name to the module (absolute) that defines it, to ``module:attribute`` where
    the package names it differently, or to ``module:`` for the module itself."""

    def __getattr__(name: str) -> Any:
        where = names.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, colon, attribute = where.partition(":")
        imported = importlib.import_module(module)
        value = imported if colon and not attribute else getattr(imported, attribute or name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # the next read is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(names))

    return __getattr__, __dir__
