"""Fixtures of the search tests: latency on a fake clock, and a fresh study storage of each kind."""

import pytest

from reszoo.search import study as study_module
from tests.search.helpers import STUDY_STORAGES, FakeJudge


@pytest.fixture
def fake_latency(monkeypatch):
    """Every judge a search builds in this process is a FakeJudge: real timings drift on a
    shared CPU, and measuring is tests/latency/test_latency.py's business."""
    monkeypatch.setattr(study_module, "LatencyJudge", FakeJudge)


@pytest.fixture(params=STUDY_STORAGES)
def study_storage(request, tmp_path, make_postgres_url) -> str:
    """A fresh, empty study storage as ``--storage`` names it: ``memory``, a journal file in
    tmp_path, or a PostgreSQL database of its own, dropped after the test. Parametrised over
    STUDY_STORAGES; PERSISTENT_STORAGES (tests/search/helpers.py) narrows it to those that persist."""
    if request.param == "memory":
        return "memory"
    if request.param == "journal":
        return f"journal:{tmp_path / 'studies.log'}"
    return make_postgres_url("reszoo_study")
