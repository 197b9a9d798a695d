"""What the search tests share: a tiny space and its CLI options, a config over it, a judge
with a fake clock, and the study storages the storage-dependent tests run against."""

import pytest

from reszoo.latency.judge import LatencyJudge, LatencyTarget
from reszoo.search.config import SearchConfig
from reszoo.search.proxy import PROXY_RECIPE, Proxy
from reszoo.search.space import SearchSpace
from reszoo.zoo.counting import count
from reszoo.zoo.records import LatencyRecord

#: The study storages a test that takes the ``study_storage`` fixture runs against, as Optuna's
#: own tests run against each of its storages: in memory, a journal file, and a PostgreSQL
#: database (skipped without a server, a failure under CI=1, as the registry's; tests/conftest.py).
STUDY_STORAGES = ["memory", "journal", "postgresql"]

#: For a test that opens its study again (resume, several workers, publishing from a finished
#: study): the storages that outlive the run and the process that wrote them; memory does not.
PERSISTENT_STORAGES = pytest.mark.parametrize("study_storage", ["journal", "postgresql"], indirect=True)

#: Small enough that a trial trains in about a second on a 2-core CPU.
TINY_SPACE = SearchSpace(families=("residual", "plain"), blocks=("basic",), max_depth=2, base_widths=(4, 8, 16))
TINY_CLI = [
    "--dataset",
    "synthetic:200",
    "--proxy-images",
    "100",
    "--val-images",
    "50",
    "--proxy-epochs",
    "1",
    "--proxy-batch-size",
    "50",
    "--families",
    "residual,plain",
    "--blocks",
    "basic",
    "--depth",
    "1-2",
    "--widths",
    "4,8,16",
    "--reference",
    "none",
    "--workers",
    "1",
]


def tiny_search(tmp_path, **options):
    """``reszoo.search`` over TINY_SPACE on 200 synthetic images, one worker, into tmp_path's registry."""
    import reszoo

    settings = {
        "space": TINY_SPACE,
        "proxy_images": 100,
        "val_images": 50,
        "proxy_epochs": 1,
        "proxy_batch_size": 50,
        "workers": 1,
        "registry": str(tmp_path / "r.db"),
    }
    return reszoo.search("synthetic:200", **{**settings, **options})


def config(tmp_path, *, storage="memory", study="s", max_ms=1e6, mode="constrained", seed=0, lr=None, space=TINY_SPACE):
    recipe = PROXY_RECIPE.with_overrides(epochs=1, batch_size=50, **({"lr": lr} if lr else {}))
    return SearchConfig(
        dataset="synthetic:200",
        space=space,
        proxy=Proxy(recipe=recipe, train_images=100, val_images=50, seed=seed),
        target=LatencyTarget(max_ms=max_ms, predict=False),
        registry=f"sqlite:///{tmp_path / 'r.db'}",
        study=study,
        storage=storage,
        mode=mode,
        seed=seed,
        startup_trials=3,
    )


def fake_ms(spec) -> float:
    return count(spec).params / 10_000


def latency_row(spec, ms) -> LatencyRecord:
    return LatencyRecord(spec.digest, "cpu", 1, "float32", "eager", ms, ms, 1, {}, None)


class FakeJudge(LatencyJudge):
    """The real judge's decisions over a fake clock: latency as a pure function of the parameter count."""

    def predicted_ms(self, spec):
        return fake_ms(spec)

    def rough_ms(self, spec):
        return fake_ms(spec)

    def measured_ms(self, spec, *, remeasure=False):
        return fake_ms(spec)

    def fresh_ms(self, spec):
        return fake_ms(spec)

    @classmethod
    def reference_limit(cls, reference, setup, registry):
        return latency_row(reference, fake_ms(reference))
