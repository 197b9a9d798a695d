"""Spending a larger search budget: Hyperband over proxy epochs, the size preference's
MACs budget, and --publish-best under a name a user chose, resuming its training."""

import dataclasses
import importlib
import json
import random

import optuna
import pytest
from typer.testing import CliRunner

from reszoo import Registry
from reszoo.cli.app import app
from reszoo.errors import InputError
from reszoo.limits import DEFAULT_MACS_BUDGET
from reszoo.search.preference import SizePreference
from reszoo.search.sampling import DrawSampler, TrainingBudget
from reszoo.search.study import make_objective, pruner_for, sampler_for
from tests.search.helpers import PERSISTENT_STORAGES, TINY_CLI, TINY_SPACE, FakeJudge, config, tiny_search

runner = CliRunner()


class PruningTrial:
    """What Objective.train_proxy asks of an Optuna trial, its pruner saying stop."""

    study = None

    def __init__(self) -> None:
        self.attrs: dict[str, object] = {}

    def report(self, value: float, step: int) -> None:
        self.reported = (value, step)

    def should_prune(self) -> bool:
        return True

    def set_user_attr(self, key: str, value: object) -> None:
        self.attrs[key] = value


def _with(base, **changes):
    proxy = dataclasses.replace(base.proxy, recipe=base.proxy.recipe.with_overrides(epochs=3))
    return dataclasses.replace(base, proxy=proxy, **changes)


def test_hyperband_cuts_runs_at_its_rungs_without_waiting_for_a_median(tmp_path):
    hyperband = _with(config(tmp_path), pruner="hyperband")
    pruner = pruner_for(hyperband)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert (pruner._min_resource, pruner._max_resource) == (1, 3)
    # Hyperband decides from its first trials; the median pruner waits for PRUNE_AFTER trained ones.
    trial = PruningTrial()
    with pytest.raises(optuna.TrialPruned):
        make_objective(hyperband).train_proxy(TINY_SPACE.sample(random.Random(0)), trial)
    assert trial.reported[1] == 1 and str(trial.attrs["fail_reason"]).startswith("pruned after epoch 1: score")

    class NoStudyYet(PruningTrial):  # the median pruner asks how many trials reached the epoch
        study = optuna.create_study(direction="maximize")

    median = make_objective(_with(config(tmp_path), pruner="median"))
    assert median.train_proxy(TINY_SPACE.sample(random.Random(0)), NoStudyYet())["score"] is not None
    assert isinstance(pruner_for(_with(config(tmp_path), pruner="none")), optuna.pruners.NopPruner)
    with pytest.raises(InputError, match="pruner must be one of median, hyperband, none, got 'asha'"):
        _with(config(tmp_path), pruner="asha")


def test_no_run_is_stopped_before_the_min_proxy_epoch(tmp_path):
    hyperband = pruner_for(_with(config(tmp_path), pruner="hyperband", min_proxy_epochs=2))
    assert (hyperband._min_resource, hyperband._max_resource) == (2, 3)  # its first rung
    study = optuna.create_study(
        direction="maximize", pruner=pruner_for(_with(config(tmp_path), pruner="median", min_proxy_epochs=2))
    )
    for _ in range(3):  # runs that scored well at epochs 1 and 2
        trial = study.ask()
        trial.report(0.9, 1)
        trial.report(0.9, 2)
        study.tell(trial, 0.9)
    worse = study.ask()
    worse.report(0.1, 1)
    assert not worse.should_prune()  # epoch 1 is before the first epoch it may be stopped at
    worse.report(0.1, 2)
    assert worse.should_prune()
    with pytest.raises(InputError, match="min proxy epochs must be from 1 to the proxy's 3 epochs, got 4"):
        _with(config(tmp_path), min_proxy_epochs=4)


def test_the_cli_refuses_a_min_proxy_epoch_past_the_proxy(tmp_path):
    result = runner.invoke(
        app,
        ["--registry", str(tmp_path / "r.db"), "search", *TINY_CLI, "--proxy-epochs", "3", "--min-proxy-epochs", "5"],
    )
    assert result.exit_code != 0
    assert "--min-proxy-epochs must be from 1 to --proxy-epochs (3), got 5" in result.output


@pytest.mark.parametrize("budget", [1.5, 3.0, None])
@pytest.mark.parametrize("score", ["train-loss+params", "top1"])
def test_the_macs_budget_bounds_every_trial_or_is_lifted(tmp_path, budget, score):
    base = config(tmp_path)
    cfg = dataclasses.replace(
        base,
        macs_budget=budget,
        target=dataclasses.replace(base.target, predict=True),
        proxy=dataclasses.replace(base.proxy, score=score),
    )
    sampler = sampler_for(cfg, judge=FakeJudge(cfg.target, Registry(cfg.registry)))
    assert isinstance(sampler, SizePreference) == (score == "train-loss+params")  # the preference needs a size term
    chain = []
    while isinstance(sampler, DrawSampler):
        chain.append(sampler)
        sampler = sampler.inner
    budgets = [s.ratio for s in chain if isinstance(s, TrainingBudget)]
    assert budgets == ([] if budget is None else [budget])  # with or without the preference


def test_a_hyperband_search_publishes_its_best_under_the_chosen_name(tmp_path, fake_latency, monkeypatch):
    registry, journal = tmp_path / "r.db", tmp_path / "studies.log"
    args = [
        "--registry",
        str(registry),
        "search",
        *TINY_CLI,
        "--proxy-epochs",
        "3",  # given again: the last wins
        "--pruner",
        "hyperband",
        "--macs-budget",
        "none",
        "--max-latency-ms",
        "1000000",
        "--trials",
        "4",
        "--study",
        "hb",
        "--storage",
        f"journal:{journal}",
        "--out",
        str(tmp_path / "res.json"),
        "--publish-best",
        "1",
        "--final-epochs",
        "2",
        "--publish-as",
        "tinynet",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "res.json").read_text())
    assert summary["trained"] + summary["pruned"] + summary["infeasible"] <= summary["trials"]
    entry = Registry(registry).get("tinynet")
    assert entry.study == f"journal:{journal}#hb" and entry.trial == summary["best"][0]["trial"]
    assert len(entry.history) == 2 and "published tinynet@1" in result.output


@PERSISTENT_STORAGES
def test_publishing_the_best_again_resumes_its_checkpoint_instead_of_training_anew(
    tmp_path, fake_latency, study_storage
):
    import reszoo
    from reszoo.search.results import publish_best
    from reszoo.train.recipes import ONECYCLE

    found = tiny_search(tmp_path, references=(), max_latency_ms=1e6, trials=2, study="again", storage=study_storage)
    registry, recipe = Registry(tmp_path / "r.db"), ONECYCLE.with_overrides(epochs=2, batch_size=50)
    first = publish_best(found.study, found.config, 1, recipe, registry, dataset=found.dataset, name="tinynet")[0]
    checkpoints = list((tmp_path / "reszoo-home" / "search" / "publish").glob("again-t*.safetensors"))
    assert len(checkpoints) == 1 and first.ref == "tinynet@1"
    assert first.study == f"{study_storage}#again"  # the lineage names the storage the study was read from
    again = publish_best(found.study, found.config, 1, recipe, registry, dataset=found.dataset, name="tinynet-b")[0]
    assert again.history == first.history  # epoch times included: the finished run was read back, not repeated
    with pytest.raises(reszoo.ConflictError, match="'resnet20' is a public name"):
        publish_best(found.study, found.config, 1, recipe, reszoo.zoo.hub.local_registry(), name="resnet20")


@pytest.mark.parametrize(
    "given, expected", [([], DEFAULT_MACS_BUDGET), (["--macs-budget", "3"], 3.0), (["--macs-budget", "none"], None)]
)
def test_the_cli_hands_the_search_the_macs_budget_given(tmp_path, monkeypatch, given, expected):
    # The CLI once handed the search its trial count (16) as the MACs budget: check what arrives.
    api = importlib.import_module("reszoo.search.api")  # (reszoo.search is the function)
    seen = {}

    def fake_search(*args, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "search", fake_search)
    runner.invoke(app, ["--registry", str(tmp_path / "r.db"), "search", *TINY_CLI, *given])
    assert seen["macs_budget"] == expected


def test_publish_best_passes_over_a_winner_that_is_over_the_limit_when_timed_again(tmp_path, fake_latency):
    from reszoo.errors import SearchError
    from reszoo.latency.judge import Verdict
    from reszoo.search.results import publish_best, winners
    from reszoo.train.recipes import ONECYCLE

    found = tiny_search(tmp_path, references=(), max_latency_ms=1e6, trials=3, study="confirm")
    ranked = winners(found.study, found.config.mode, 3)
    assert len(ranked) >= 2
    slow = ranked[0].number  # the search's best, judged under the limit by a figure that was wrong

    class TimedAgain:
        def confirm(self, spec):
            over = spec.digest == ranked[0].known_spec.digest
            return Verdict(2e6 if over else 1.0, "confirmed", 1e6)

    heard = []
    registry, recipe = Registry(tmp_path / "r.db"), ONECYCLE.with_overrides(epochs=1, batch_size=50)
    entry = publish_best(
        found.study,
        found.config,
        1,
        recipe,
        registry,
        dataset=found.dataset,
        name="tinynet",
        judge=TimedAgain(),
        on_confirm=lambda r, v: heard.append((r.number, v.feasible)),
    )[0]
    assert entry.trial == ranked[1].number and heard == [(slow, False), (ranked[1].number, True)]
    assert "timed again before training: 1 ms against the limit of 1e+06 ms" in entry.notes

    class AllOver:
        def confirm(self, spec):
            return Verdict(2e6, "confirmed", 1e6)

    with pytest.raises(SearchError, match="none of the .* feasible trials of study 'confirm' is under the latency"):
        publish_best(found.study, found.config, 1, recipe, registry, dataset=found.dataset, judge=AllOver())
    assert [e.name for e in registry.list()] == ["tinynet"]  # nothing trained, nothing published


@PERSISTENT_STORAGES
def test_a_resumed_study_still_knows_the_reference_its_limit_came_from(tmp_path, fake_latency, study_storage):
    # Without it, nets over the limit of a resumed study (and those --publish-best times again)
    # could not be timed beside the reference, and one slow spell would decide their verdict.
    from reszoo.search.results import fitted_preset

    def searched():
        return tiny_search(
            tmp_path, device="cpu", trials=1, references=["resnet20"], study="limited", storage=study_storage
        )

    first = searched()
    reference = fitted_preset("resnet20", TINY_SPACE)
    assert first.config.target.limit_from == reference
    resumed = searched()
    assert resumed.config.target.max_ms == first.config.target.max_ms
    assert resumed.config.target.limit_from == reference
