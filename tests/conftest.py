import os
import signal

import pytest
import torch
from hypothesis import HealthCheck, settings

from reszoo.limits import usable_cores

# Two cores: more threads than that only adds contention; fewer where this process may use fewer
# (taskset, a 1-CPU container), or the search refuses its default threads as out of range.
torch.set_num_threads(min(2, usable_cores()))

# A suite started in the background (`pytest &` in a script) inherits SIGINT ignored, and the
# processes the Ctrl-C tests start would inherit that too and never see their SIGINT: handle it
# here as a foreground Python does, so that those children start with the default disposition.
signal.signal(signal.SIGINT, signal.default_int_handler)

settings.register_profile("reszoo", deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("reszoo")


def pytest_collection_modifyitems(config, items):
    """Skip the tests that run two workers or jobs at once where fewer than two cores are usable:
    reszoo refuses more workers than cores (`--jobs 2 is out of range`), rightly."""
    cores = usable_cores()
    if cores >= 2:
        return
    skip = pytest.mark.skip(reason=f"runs two processes at once; this machine gives reszoo {cores} usable core")
    for item in items:
        if "two_cores" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Nothing a test does touches the user's own reszoo home or cache."""
    monkeypatch.setenv("RESZOO_HOME", str(tmp_path / "reszoo-home"))
    monkeypatch.chdir(tmp_path)


# ------------------------------------------------------------------ registries

import uuid  # noqa: E402

import sqlalchemy as sa  # noqa: E402

POSTGRES_URL = os.environ.get("RESZOO_TEST_POSTGRES_URL")


def _postgres_or_skip():
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL contract tests: .ci/run starts a server (RESZOO_TEST_POSTGRES_URL)")
        pytest.skip('no PostgreSQL server: eval "$(.ci/start-postgres)" to run these')
    return POSTGRES_URL


@pytest.fixture
def make_postgres_url():
    """Factory of fresh, empty PostgreSQL databases on the test server, as SQLAlchemy URLs; each is
    dropped after the test. Skipped without a server, a failure under CI (``_postgres_or_skip``)."""
    created: list[str] = []
    admin = None

    def make(prefix: str = "reszoo_test") -> str:
        nonlocal admin
        base = _postgres_or_skip()
        admin = admin or sa.create_engine(base, isolation_level="AUTOCOMMIT")
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        created.append(name)
        return str(sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False))

    yield make
    if admin is not None:
        with admin.connect() as conn:
            for name in created:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def make_registry_url(tmp_path, request, make_postgres_url):
    """Factory of fresh, empty registry URLs on the backend the test is parametrised with."""
    backend = getattr(request, "param", "sqlite")

    def make() -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'reg-{uuid.uuid4().hex[:8]}.db'}"
        return make_postgres_url()

    return make


BACKENDS = pytest.mark.parametrize("make_registry_url", ["sqlite", "postgresql"], indirect=True)
