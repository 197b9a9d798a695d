"""Latency: measured per device, batch size, dtype and runtime, stored by
architecture (measure.py), and the per-part predictor that screens nets
before they are measured (predictor.py). The rows themselves live in the
registry (reszoo.zoo.latency_store); device names are reszoo.devices'.

The package is callable: ``reszoo.latency("resnet56", device="cuda")`` runs
:func:`reszoo.latency.measure.latency`.
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from reszoo.latency.measure import latency

        return latency(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
