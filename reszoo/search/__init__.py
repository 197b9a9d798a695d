"""The search: space, objective, Optuna study, results and plots (latency is reszoo.latency's).

The package is callable: ``reszoo.search(dataset=..., max_latency_ms=...)`` runs
:func:`reszoo.search.api.search` and returns its :class:`SearchResult`.
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from reszoo.search.api import search

        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
