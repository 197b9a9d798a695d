"""Fixtures of the search tests."""

import pytest

from reszoo.search import study as study_module
from tests.search.helpers import FakeJudge


@pytest.fixture
def fake_latency(monkeypatch):
    """Every judge a search builds in this process is a FakeJudge: real timings drift on a
    shared CPU, and measuring is tests/latency/test_latency.py's business."""
    monkeypatch.setattr(study_module, "LatencyJudge", FakeJudge)
