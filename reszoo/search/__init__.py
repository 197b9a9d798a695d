"""Latency measurement and prediction, the search space and the Optuna study (issues: latency, search)."""
