"""Latency: measured per device, batch size, dtype and runtime, stored by
architecture (measure.py, timed by timing.py in the runtimes of runtimes.py);
the per-part predictor that screens nets before they are measured
(predictor.py); the judge that tells a search whether a net
meets its limit and how it knows (judge.py); and the lock that keeps timings
quiet beside training (quiet.py). The rows themselves live in the registry
(reszoo.zoo.latency_store); device names are reszoo.devices'.

The call itself is :func:`reszoo.latency` (defined in reszoo/__init__.py,
running :func:`reszoo.latency.measure.latency`).
"""
