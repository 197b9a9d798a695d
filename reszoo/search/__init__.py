"""The search: space, proxy, objective, samplers, Optuna study, results and plots.

The call itself is :func:`reszoo.search` (defined in reszoo/__init__.py, running
:func:`reszoo.search.api.search`); latency is reszoo.latency's.

Modules, by job: ``api`` (one call, its policy), ``config`` (settings and what a
resumed study must share), ``storage`` (memory, journal, database), ``study``
(opening a study), ``runner`` (budget, workers), ``processes`` (worker bounds,
dying with the parent, Ctrl-C), ``objective`` (one trial), ``proxy`` (the short
training and its scores), ``sampling`` and ``preference`` (the wrapper
samplers), ``keys`` (trial attribute names), ``space``, ``results``, ``plots``.
"""
