import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# Two cores: more threads than that only adds contention.
torch.set_num_threads(min(2, os.cpu_count() or 1))

settings.register_profile(
    "reszoo", deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("reszoo")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Nothing a test does touches the user's own reszoo home or cache."""
    monkeypatch.setenv("RESZOO_HOME", str(tmp_path / "reszoo-home"))
    monkeypatch.chdir(tmp_path)
