"""reszoo search: the space, trials, studies (resume, workers, storages), results and publishing."""

import dataclasses
import json
import math
import random
import re
from datetime import UTC, datetime

import optuna
import pytest
from typer.testing import CliRunner

from reszoo import InputError, Registry
from reszoo.cli.app import app
from reszoo.errors import DatasetError, SpecFileError
from reszoo.latency.judge import DEFAULT_POLICY, Verdict
from reszoo.search import keys
from reszoo.search import objective as objective_module
from reszoo.search import study as study_module
from reszoo.search.objective import Objective
from reszoo.search.preference import Calibration, SizePreference
from reszoo.search.proxy import CAPACITY_WEIGHT, Proxy, epoch_score
from reszoo.search.results import (
    TrialResult,
    best,
    fitted_preset,
    hypervolume,
    pareto_front,
    score_references,
    trial_results,
)
from reszoo.search.runner import run
from reszoo.search.sampling import DistinctSampler, LatencyScreen, TrainingBudget
from reszoo.search.space import SearchSpace, load_space_file
from reszoo.search.storage import journal_path, open_storage
from reszoo.search.study import known_score, make_objective
from reszoo.train.data import local_dataset
from reszoo.zoo.counting import count
from reszoo.zoo.factory import resolve_spec
from reszoo.zoo.records import LatencyRecord
from tests.search.helpers import PERSISTENT_STORAGES, TINY_CLI, TINY_SPACE, FakeJudge, config, fake_ms, latency_row

runner = CliRunner()


def _verdict(judge, spec, **options):
    verdict = judge.judge(spec, **options)
    return verdict.ms, verdict.source


class _PredictingJudge:
    """What the samplers ask of a judge: predictions, the limit and the policy."""

    def __init__(self, predict, limit_ms):
        self.predicted_ms, self.limit_ms, self.policy = predict, limit_ms, DEFAULT_POLICY


def screened(inner, space, predict, limit_ms, *, seed=None, prefer=None, macs_ratio=None, **options):
    """reszoo's wrappers as sampler_for composes them, around ``inner``."""
    judge = _PredictingJudge(predict, limit_ms)
    distinct = DistinctSampler(inner, space, seed=seed)
    if macs_ratio is not None:
        distinct = TrainingBudget(distinct, macs_ratio)
    sampler = LatencyScreen(distinct, judge)
    return SizePreference(sampler, judge, prefer, **options) if prefer is not None else sampler


# ------------------------------------------------------------------- space


def test_suggest_draws_valid_specs_over_every_axis():
    space = SearchSpace(max_depth=4)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    specs = []
    for _ in range(60):
        trial = study.ask()
        specs.append(space.suggest(trial))
        study.tell(trial, 0.0)
    assert {s.family for s in specs} == {"residual", "plain", "highway"}
    assert {s.block for s in specs} == {"basic", "bottleneck"}
    assert all(s.shortcut == "none" for s in specs if s.family == "plain")
    assert {s.shortcut for s in specs if s.family == "residual"} == {"A", "B", "C"}
    assert all(1 <= d <= 4 for s in specs for d in s.stage_depths)
    # Each family's shortcut is its own parameter, so no parameter changes its choices.
    assert all(
        set(t.params)
        <= {"family", "block", "depth1", "depth2", "depth3", "base_width", "shortcut_residual", "shortcut_highway"}
        for t in study.trials
    )


def test_space_sample_stays_inside_the_bounds():
    space = SearchSpace(families=("highway",), shortcuts=("C",), min_depth=2, max_depth=3, base_widths=(8,))
    for spec in (space.sample(random.Random(i)) for i in range(20)):
        assert spec.family == "highway" and spec.shortcut == "C" and spec.stage_widths == (8, 16, 32)
        assert all(2 <= d <= 3 for d in spec.stage_depths)


def test_space_files_json_and_toml(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"families": ["residual"], "max_depth": 3, "base_widths": [16, 32]}))
    (tmp_path / "s.toml").write_text('families = ["plain"]\nmin_depth = 2\nmax_depth = 2\n')
    assert load_space_file(tmp_path / "s.json").base_widths == (16, 32)
    assert load_space_file(tmp_path / "s.toml").families == ("plain",)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"depths": 3}', "unknown key(s) ['depths']"),
        ('{"min_depth": 5, "max_depth": 2}', "min_depth 5 is above max_depth 2"),
        ('{"families": ["resnet"]}', "families must be a non-empty list drawn from"),
        ('{"families": ["highway"], "shortcuts": ["A"]}', "none of which is in shortcuts"),
        ('{"base_widths": [0]}', "base_widths must hold integers >= 1"),
    ],
)
def test_bad_space_files_name_the_field(tmp_path, content, message):
    (tmp_path / "s.json").write_text(content)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_space_file(tmp_path / "s.json")


def test_unreadable_space_file_is_a_clear_error(tmp_path):
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(SpecFileError, match="not valid json"):
        load_space_file(tmp_path / "s.json")


# ------------------------------------------------------------ trials, study


def test_an_infeasible_trial_is_never_trained_nor_best(tmp_path, fake_latency):
    # A limit between the smallest and largest nets of the space: some of each.
    cfg = config(tmp_path, max_ms=3.0)
    study = run(cfg, trials=8)
    results = trial_results(study)
    infeasible = [r for r in results if r.feasible is False]
    feasible = [r for r in results if r.feasible]
    assert infeasible and feasible, [r.latency_ms for r in results]
    for result, trial in zip(results, study.trials):
        assert (result.latency_ms <= 3.0) == result.feasible
        if not result.feasible:
            assert "accuracy" not in trial.user_attrs  # never trained
    top = best(results, 3)
    assert top and all(r.feasible for r in top)
    assert study.best_trial.user_attrs["feasible"]  # Optuna's own view honours the constraint too
    assert all(r.number not in {i.number for i in infeasible} for r in pareto_front(results))


def test_an_impossible_limit_is_refused_before_anything_trains(tmp_path, fake_latency, monkeypatch):
    monkeypatch.setattr(Objective, "train_proxy", lambda *a, **k: pytest.fail("trained"))
    out = tmp_path / "res.json"
    result = runner.invoke(
        app,
        [
            "--registry",
            str(tmp_path / "r.db"),
            "search",
            *TINY_CLI,
            "--trials",
            "3",
            "--max-latency-ms",
            "0.000001",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert "no net of this space can meet the limit" in message and "over the limit of 1e-06 ms" in message
    assert not out.exists()  # nothing ran, nothing to write


def test_trials_count_trained_nets_and_draws_over_the_limit_are_free(tmp_path, fake_latency):
    cfg = config(tmp_path, max_ms=3.0)
    study = run(cfg, trials=4)
    results = trial_results(study)
    trained = [r for r in results if r.feasible]
    assert len(trained) == 4 and len(results) >= 4
    assert all(r.latency_ms > 3.0 for r in results if r.feasible is False)


def test_a_net_far_over_the_limit_is_not_timed_carefully(tmp_path, monkeypatch):

    # Rough timings put one net at twice the limit, the other just over it: only the
    # second is worth a careful measurement (which holds the other workers meanwhile).
    small = TINY_SPACE.make_spec("plain", "basic", (1, 1, 1), 4, "none")
    big = TINY_SPACE.make_spec("plain", "basic", (2, 2, 2), 16, "none")
    limit = 1.0
    rough = {small.digest: 1.1 * limit, big.digest: 2.0 * limit}
    careful = []

    def carefully(spec, *, remeasure=False):
        careful.append(spec.digest)
        return 0.9 * limit

    def judge_of(cfg):
        judge = make_objective(cfg).judge
        monkeypatch.setattr(judge, "rough_ms", lambda spec: rough[spec.digest])
        monkeypatch.setattr(judge, "measured_ms", carefully)
        return judge

    judge = judge_of(config(tmp_path, max_ms=limit))
    assert _verdict(judge, big) == (2.0 * limit, "rough") and 2.0 > judge.policy.rough_margin
    assert _verdict(judge, small) == (0.9 * limit, "measured")
    assert careful == [small.digest]
    careful.clear()
    # Asked for a careful figure (the impossible-limit check does), it is measured whatever the rough timing.
    assert _verdict(judge, big, careful=True) == (0.9 * limit, "measured")
    # A rough reading the predictor contradicts (a slow spell of the host) is checked carefully.
    cfg = config(tmp_path, max_ms=limit)
    predicting = judge_of(dataclasses.replace(cfg, target=dataclasses.replace(cfg.target, predict=True)))
    predicted = {big.digest: 0.8 * limit}
    monkeypatch.setattr(predicting, "predicted_ms", lambda spec: predicted[spec.digest])
    assert _verdict(predicting, big) == (0.9 * limit, "measured") and careful == [big.digest, big.digest]
    predicted[big.digest] = 1.2 * limit  # both say over: the rough reading stands
    assert _verdict(predicting, big) == (2.0 * limit, "rough") and len(careful) == 2


def test_a_rough_reading_in_a_slow_spell_is_held_to_the_reference_read_as_roughly(tmp_path, monkeypatch):
    # A slow spell of the host (2x) puts a net under the limit at 1.6x by a rough timing, and the
    # predictor (which sums parts timed alone) puts it over too: the reference, timed as roughly
    # beside it, reads 2x as well, so the net is timed carefully instead of dropped.
    reference = TINY_SPACE.make_spec("plain", "basic", (1, 1, 1), 4, "none")
    net = TINY_SPACE.make_spec("plain", "basic", (2, 2, 2), 16, "none")
    limit = 1.0
    rough = {net.digest: 1.6, reference.digest: 2.0}
    careful = []
    cfg = config(tmp_path, max_ms=limit)
    judge = make_objective(
        dataclasses.replace(cfg, target=dataclasses.replace(cfg.target, limit_from=reference, predict=True))
    ).judge
    monkeypatch.setattr(judge, "predicted_ms", lambda spec: 1.2 * limit)
    monkeypatch.setattr(judge, "rough_ms", lambda spec: rough[spec.digest])
    monkeypatch.setattr(judge, "measured_ms", lambda spec, remeasure=False: careful.append(spec.digest) or 0.9)
    assert _verdict(judge, net) == (0.9, "measured") and careful == [net.digest]
    rough[reference.digest] = 0.9 * limit  # the host is not slow: the rough reading stands, nothing timed carefully
    assert _verdict(judge, net) == (1.6, "rough") and careful == [net.digest]
    rough.update({net.digest: 3.0, reference.digest: 1.5})  # over even at the reference's pace
    assert _verdict(judge, net) == (pytest.approx(2.0), "rough") and careful == [net.digest]


def test_a_net_over_the_limit_is_judged_against_the_reference_timed_again(tmp_path, monkeypatch):
    SLOWER_HOST = DEFAULT_POLICY.slower_host
    # The limit is the reference's latency when it was taken. If the host has slowed since (a shared
    # VM's slow spell), a net that reads over the limit is compared with the reference read now.
    reference = TINY_SPACE.make_spec("plain", "basic", (1, 1, 1), 4, "none")
    net = TINY_SPACE.make_spec("plain", "basic", (2, 2, 2), 16, "none")
    limit, now = 1.0, {}

    def clocked(judge):
        for name in ("rough_ms", "fresh_ms"):
            monkeypatch.setattr(judge, name, lambda spec: now[spec.digest])
        monkeypatch.setattr(judge, "measured_ms", lambda spec, remeasure=False: now[spec.digest])
        return judge

    cfg = config(tmp_path, max_ms=limit)
    judge = clocked(
        make_objective(
            dataclasses.replace(cfg, target=dataclasses.replace(cfg.target, limit_from=reference, predict=True))
        ).judge
    )
    monkeypatch.setattr(judge, "predicted_ms", lambda spec: 0.9 * limit)  # timed quiet: under the limit
    now.update({net.digest: 1.2, reference.digest: 2.0})  # everything reads twice as slow as when the limit was taken
    assert _verdict(judge, net) == (pytest.approx(0.6), "relative")
    assert _verdict(judge, reference) == (limit, "measured")  # the limit's own net is never timed again
    now[net.digest] = 2.4  # slower than the reference now too (its rough reading checked: the predictor disagrees)
    assert _verdict(judge, net) == (pytest.approx(1.2), "relative")
    now.update(
        {net.digest: 1.2, reference.digest: 0.98 * SLOWER_HOST * limit}
    )  # the reference's noise: not a slower host
    assert _verdict(judge, net) == (1.2, "measured")
    now.update({net.digest: 0.9})  # under the limit: the reference is not timed
    del now[reference.digest]
    assert _verdict(judge, net) == (0.9, "measured")
    # Without a reference (a limit given in ms) there is nothing to compare with.
    assert _verdict(clocked(make_objective(config(tmp_path, max_ms=0.8)).judge), net) == (0.9, "measured")
    # A stored row over the limit (read in a slow spell, by an earlier search) is read again beside the reference.
    setup = judge.target.setup
    judge.registry.add_architecture(net)
    judge.registry.add_latency(
        LatencyRecord(
            net.digest,
            setup.label(),
            setup.batch_size,
            setup.dtype,
            setup.runtime,
            2.4,
            2.4,
            15,
            {},
            datetime.now(UTC),
        )
    )
    assert judge.registry.latency_row(net.digest, setup.label(), 1, "float32", "eager").median_ms == 2.4
    now.update({net.digest: 1.2, reference.digest: 2.0})
    assert _verdict(judge, net) == (pytest.approx(0.6), "relative")


def test_a_net_about_to_be_published_is_held_to_the_reference_timed_beside_it(tmp_path, monkeypatch):
    # The search judged this net 0.6 ms by scaling a reading taken beside a training process; timed
    # again with nothing training, it is slower than the reference timed in the same run.
    reference = TINY_SPACE.make_spec("plain", "basic", (1, 1, 1), 4, "none")
    net = TINY_SPACE.make_spec("plain", "basic", (2, 2, 2), 16, "none")
    readings = {reference.digest: [2.6, 2.4, 2.5], net.digest: [3.0, 2.8, 2.9]}
    timed = []

    def fresh_ms(spec):
        timed.append(spec.digest)
        return readings[spec.digest][sum(d == spec.digest for d in timed) - 1]

    cfg = config(tmp_path, max_ms=2.5)
    judge = make_objective(dataclasses.replace(cfg, target=dataclasses.replace(cfg.target, limit_from=reference))).judge
    monkeypatch.setattr(judge, "fresh_ms", fresh_ms)
    verdict = judge.confirm(net)
    assert (verdict.ms, verdict.limit_ms, verdict.source, verdict.feasible) == (2.8, 2.4, "confirmed", False)
    assert timed == [reference.digest, net.digest] * DEFAULT_POLICY.confirm_rounds  # interleaved: one spell hits both
    readings[net.digest] = [2.3, 2.2, 2.6]
    timed.clear()
    assert judge.confirm(net).feasible  # under the reference's quickest reading (2.4), not the stored limit
    assert judge.confirm(reference) == Verdict(2.5, "confirmed", 2.5)  # its own limit, never timed again
    # A limit given in ms: the net is held to the number, and no reference is timed.
    plain = make_objective(config(tmp_path, max_ms=2.0)).judge
    monkeypatch.setattr(plain, "fresh_ms", lambda spec: 2.1)
    assert plain.confirm(net) == Verdict(2.1, "confirmed", 2.0)


def test_a_reference_over_the_limit_is_reported_and_never_trained(tmp_path, fake_latency, monkeypatch):
    cfg = config(tmp_path, max_ms=3.0)
    objective = make_objective(cfg)
    study = run(cfg, trials=1, objective=objective, start_from=[fitted_preset("resnet56", cfg.space)])
    assert all(t.user_attrs.get("digest") != fitted_preset("resnet56", cfg.space).digest for t in study.trials)
    monkeypatch.setattr(Objective, "train_proxy", lambda *a, **k: pytest.fail("trained"))
    refs = score_references(study, objective, ["resnet56"])
    assert refs["resnet56"]["accuracy"] is None and refs["resnet56"]["over_limit"]


def test_a_diverging_trial_fails_with_its_reason(tmp_path, fake_latency, study_storage):
    study = run(config(tmp_path, lr=1e8, storage=study_storage), trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["fail_reason"].startswith("loss became nan")
    assert TrialResult.from_trial(trial).reason == trial.user_attrs["fail_reason"]


def test_same_seed_same_trials(tmp_path, fake_latency, study_storage):
    # Three studies side by side in one storage (memory: each in its own): none sees another's trials.
    first = run(config(tmp_path, study="a", storage=study_storage), trials=5)
    second = run(config(tmp_path, study="b", storage=study_storage), trials=5)
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    assert [t.values for t in first.trials] == [t.values for t in second.trials]
    other = run(config(tmp_path, study="c", seed=1, storage=study_storage), trials=5)
    assert [t.params for t in other.trials] != [t.params for t in first.trials]


@PERSISTENT_STORAGES
def test_resume_continues_numbering_and_keeps_trials(tmp_path, fake_latency, study_storage):
    args = [
        "--registry",
        str(tmp_path / "r.db"),
        "search",
        *TINY_CLI,
        "--max-latency-ms",
        "1000000",
        "--study",
        "resumable",
        "--storage",
        study_storage,
    ]
    assert runner.invoke(app, [*args, "--trials", "2"]).exit_code == 0
    storage = open_storage(study_storage)
    before = optuna.load_study(study_name="resumable", storage=storage).trials
    result = runner.invoke(app, [*args, "--trials", "2", "--out", str(tmp_path / "res.json")])
    assert result.exit_code == 0, result.output
    after = optuna.load_study(study_name="resumable", storage=open_storage(study_storage)).trials
    assert [t.number for t in after] == [0, 1, 2, 3]
    assert [(t.params, t.values) for t in after[:2]] == [(t.params, t.values) for t in before]
    # Resuming with other settings would mix incomparable trials: refused.
    changed = runner.invoke(app, [*args, "--trials", "1", "--proxy-epochs", "2"])
    assert changed.exit_code == 1 and "started with other proxy settings" in changed.output
    assert "proxy.recipe.epochs: 1 then, 2 now" in " ".join(changed.output.split())  # which option to give
    # Without --max-latency-ms a resumed study keeps the limit it started with.
    kept = runner.invoke(app, [a for a in args if a not in ("--max-latency-ms", "1000000")] + ["--trials", "1"])
    assert kept.exit_code == 0, kept.output


@PERSISTENT_STORAGES
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_killed_workers_running_trial_is_failed_on_resume(tmp_path, fake_latency, study_storage):
    cfg = config(tmp_path, storage=study_storage)
    run(cfg, trials=1)
    study = optuna.load_study(study_name="s", storage=open_storage(cfg.storage))
    orphan = study.ask()  # what a worker killed mid-trial leaves behind
    orphan.set_user_attr("worker", {"host": __import__("socket").gethostname(), "pid": 2**22 + 12345})
    study = run(cfg, trials=1)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]
    assert study.trials[1].user_attrs["fail_reason"] == "its worker process died"


@pytest.mark.slow
@PERSISTENT_STORAGES
def test_three_workers_share_one_study(tmp_path, study_storage):
    study = run(config(tmp_path, storage=study_storage), trials=6, workers=3)
    assert sorted(t.number for t in study.trials) == list(range(6))  # unique, none lost
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 6  # no lock error failed a trial
    assert len({t.user_attrs["worker"]["pid"] for t in study.trials}) == 3


def test_memory_storage_refuses_several_workers_and_registry_database(tmp_path):
    with pytest.raises(InputError, match="not 'memory'"):
        run(config(tmp_path), trials=2, workers=2)
    cfg = config(tmp_path, storage=f"sqlite:///{tmp_path / 'r.db'}")
    with pytest.raises(InputError, match="is the registry's database"):
        run(cfg, trials=1)


# ----------------------------------------------------------------- results


def _result(number, accuracy, ms, feasible=True, state="COMPLETE"):
    return TrialResult(number, state, None, None, accuracy, ms, "measured", feasible, None)


def test_front_and_hypervolume():
    results = [
        _result(0, 0.5, 1.0),
        _result(1, 0.7, 2.0),
        _result(2, 0.6, 3.0),
        _result(3, 0.9, 0.5, feasible=False),
        _result(4, 0.8, 4.0),
        _result(5, None, 0.1, state="PRUNED"),
    ]
    assert [r.number for r in pareto_front(results)] == [0, 1, 4]
    assert [r.number for r in best(results, 2)] == [4, 1]
    # (5-1)*0.5 + (5-2)*0.2 + (5-4)*0.1
    assert hypervolume([(1.0, 0.5), (2.0, 0.7), (4.0, 0.8), (3.0, 0.6)], 5.0) == pytest.approx(2.7)
    assert hypervolume([(6.0, 0.9)], 5.0) == 0.0


def test_trials_rank_by_their_score_not_their_top1():
    # Scored by training loss (negated: higher is better), the net with the lower loss is best
    # even where its top-1 on 1,000 held-out images is lower; older trials without a score rank by top-1.
    low_loss = dataclasses.replace(_result(0, 0.70, 1.0), score=-0.9, train_loss=0.9)
    high_top1 = dataclasses.replace(_result(1, 0.72, 1.0), score=-1.1, train_loss=1.1)
    assert [r.number for r in best([high_top1, low_loss], 2)] == [0, 1]
    assert [r.number for r in pareto_front([high_top1, low_loss])] == [0]
    assert [r.number for r in pareto_front([high_top1, low_loss], by="accuracy")] == [1]
    with pytest.raises(ValueError, match="by must be 'score' or 'accuracy', got 'top1'"):
        pareto_front([low_loss], by="top1")
    assert [r.number for r in best([_result(2, 0.6, 1.0), _result(3, 0.8, 1.0)])] == [3]


def test_the_proxy_is_scored_by_its_last_epochs_training_loss_and_its_size(tmp_path, fake_latency):
    study = run(config(tmp_path), trials=3)
    for trial in study.trials:
        attrs = trial.user_attrs
        score = -attrs["train_loss"] + CAPACITY_WEIGHT * math.log(attrs["params"])
        # What TPE ranks, and what the pruner compares after the last epoch, as after the others.
        assert trial.value == attrs["score"] == pytest.approx(score, abs=1e-12)
        assert trial.intermediate_values[max(trial.intermediate_values)] == pytest.approx(score, abs=1e-12)
        assert 0.0 <= attrs["accuracy"] <= 1.0  # top-1 is still measured and reported
    by_loss = run(
        dataclasses.replace(
            config(tmp_path, study="l"), proxy=dataclasses.replace(config(tmp_path).proxy, score="train-loss")
        ),
        trials=3,
    )
    assert all(t.value == -t.user_attrs["train_loss"] for t in by_loss.trials)
    top = best(trial_results(by_loss))[0]
    assert top.train_loss == min(t.user_attrs["train_loss"] for t in by_loss.trials)
    by_top1 = run(
        dataclasses.replace(
            config(tmp_path, study="t"), proxy=dataclasses.replace(config(tmp_path).proxy, score="top1")
        ),
        trials=2,
    )
    assert all(t.value == t.user_attrs["accuracy"] for t in by_top1.trials)
    with pytest.raises(
        InputError, match=re.escape("proxy score must be one of train-loss+params, train-loss, top1, got 'top-1'")
    ):
        Proxy(score="top-1")


@pytest.mark.parametrize(
    "score, reason",
    [
        ("train-loss+params", r"score -?\d\.\d{4} \(training loss \d\.\d{4}, \d+ parameters\) after epoch 1"),
        ("train-loss", r"training loss \d\.\d{4} after epoch 1"),
        ("top1", r"validation top-1 \d\.\d{4} after epoch 1"),
    ],
)
def test_a_pruned_proxy_run_says_what_it_was_pruned_on(tmp_path, monkeypatch, score, reason):
    # Under every score (the loss-ranked runs have no per-epoch test error to quote).
    base = config(tmp_path)
    cfg = dataclasses.replace(
        base, proxy=dataclasses.replace(base.proxy, score=score, recipe=base.proxy.recipe.with_overrides(epochs=2))
    )
    objective = make_objective(cfg)
    monkeypatch.setattr(objective_module, "_trained_to", lambda study, epoch: objective_module.PRUNE_AFTER)

    class PruningTrial:  # what Objective.train_proxy asks of an Optuna trial, its pruner saying stop
        study = None

        def report(self, value: float, step: int) -> None:
            self.reported = (value, step)

        def should_prune(self) -> bool:
            return True

        def set_user_attr(self, key: str, value: object) -> None:
            pass

    trial = PruningTrial()
    with pytest.raises(optuna.TrialPruned, match=reason):
        objective.train_proxy(TINY_SPACE.sample(random.Random(0)), trial)
    assert trial.reported[1] == 1


def test_of_two_nets_with_one_training_loss_the_larger_scores_higher():
    # A doubling of the parameters is worth CAPACITY_WEIGHT * ln 2 of training loss; the other scores ignore size.
    record = {"train_loss": 1.0, "test_err": 0.2}
    small, large = (epoch_score(record, "train-loss+params", params) for params in (100_000, 200_000))
    assert large - small == pytest.approx(CAPACITY_WEIGHT * math.log(2))
    assert epoch_score(record, "train-loss", 100_000) == epoch_score(record, "train-loss", 200_000) == -1.0
    assert epoch_score(record, "top1", 100_000) == pytest.approx(0.8)


@PERSISTENT_STORAGES
def test_a_study_scored_by_top1_resumes_only_with_that_score(tmp_path, fake_latency, study_storage):
    # Studies started before the score existed were scored by top-1: their stored settings have no
    # score, as --proxy-score top1's have none, so they resume with it and are refused without it.
    args = [
        "--registry",
        str(tmp_path / "r.db"),
        "search",
        *TINY_CLI,
        "--max-latency-ms",
        "1000000",
        "--study",
        "old",
        "--storage",
        study_storage,
        "--trials",
        "1",
    ]
    assert runner.invoke(app, [*args, "--proxy-score", "top1"]).exit_code == 0
    stored = optuna.load_study(study_name="old", storage=open_storage(study_storage))
    assert "score" not in stored.user_attrs["reszoo"]["proxy"]
    assert runner.invoke(app, [*args, "--proxy-score", "top1"]).exit_code == 0
    refused = runner.invoke(app, args)
    said = " ".join(refused.output.split())
    assert refused.exit_code == 1 and "proxy.score: None then, 'train-loss+params' now" in said


def test_pareto_mode_reports_the_feasible_front(tmp_path, fake_latency, study_storage):
    study = run(config(tmp_path, mode="pareto", max_ms=3.0, storage=study_storage), trials=6)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    front = pareto_front(trial_results(study))
    assert front and all(r.feasible and r.latency_ms <= 3.0 for r in front)
    assert [r.latency_ms for r in front] == sorted(r.latency_ms for r in front)


def test_cli_results_json_plot_and_publish_best_with_lineage(tmp_path, fake_latency):
    registry = tmp_path / "r.db"
    journal = tmp_path / "studies.log"
    result = runner.invoke(
        app,
        [
            "--registry",
            str(registry),
            "search",
            *TINY_CLI[:-2],
            "--reference",
            "resnet20",
            "--max-latency-ms",
            "1000000",
            "--trials",
            "3",
            "--study",
            "found",
            "--storage",
            f"journal:{journal}",
            "--out",
            str(tmp_path / "res.json"),
            "--publish-best",
            "1",
            "--final-epochs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "res.json").read_text())
    assert summary["trials"] == 3 and len(summary["all_trials"]) == 3
    assert set(summary["references"]) == {"resnet20"}
    winner = summary["best"][0]
    entry = Registry(registry).get(f"found-t{winner['trial']}")
    assert entry.study == f"journal:{journal}#found" and entry.trial == winner["trial"]
    assert entry.spec.to_dict() == winner["spec"] and entry.top1 is not None
    assert f"latency limit {summary['max_latency_ms']:.4g} ms on cpu" in entry.notes  # as read, not 16 digits
    assert "found-t" in result.output and "resnet20" in result.output
    plotted = runner.invoke(
        app, ["plot", "pareto", "found", "--storage", f"journal:{journal}", "--out", str(tmp_path / "front.png")]
    )
    assert plotted.exit_code == 0, plotted.output
    assert (tmp_path / "front.png").read_bytes()[:4] == b"\x89PNG"
    missing = runner.invoke(app, ["plot", "pareto", "nope", "--storage", f"journal:{journal}", "--out", "x.png"])
    assert missing.exit_code == 1 and "no study 'nope'" in missing.output
    nowhere = runner.invoke(
        app, ["plot", "pareto", "found", "--storage", f"journal:{tmp_path / 'typo.log'}", "--out", "x.png"]
    )
    assert nowhere.exit_code == 1 and "no study storage" in nowhere.output
    assert not (tmp_path / "typo.log").exists()  # a typo creates nothing


def test_search_finds_a_local_data_set_or_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr("reszoo.train.data.names.DEFAULT_ROOTS", ())
    monkeypatch.setenv("RESZOO_DATA", str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="apt install dataset-fashion-mnist"):
        local_dataset()
    fashion = tmp_path / "datasets" / "fashion-mnist"
    fashion.mkdir(parents=True)
    (fashion / "train-images-idx3-ubyte.gz").write_bytes(b"")
    monkeypatch.setenv("RESZOO_DATA", str(tmp_path / "datasets"))
    assert local_dataset() == str(fashion)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "best"], "mode must be one of constrained, pareto, got 'best'"),
        (["--depth", "x"], "is not MIN-MAX"),
        (["--widths", "8,a"], "comma-separated list of ints"),
        (["--study", "bad name"], "entry name 'bad name' is not valid"),
        (["--storage", "nowhere"], "is not 'memory', 'journal:PATH'"),
        (["--reference", "none"], "constrained mode needs a latency limit (--max-latency-ms)"),
        (["--proxy-score", "top5"], "proxy score must be one of train-loss+params, train-loss, top1, got 'top5'"),
        (["--threads", "0"], "Invalid value for '--threads': Input should be greater than or equal to 1"),
        (["--pruner", "hyperband", "--proxy-epochs", "1"], "give --proxy-epochs of at least 3, got 1"),
        (["--macs-budget", "0.5"], "--macs-budget 0.5 is out of range; give a number from 1 to 1,000"),
        (["--macs-budget", "nan"], "--macs-budget nan is not a finite number"),
        (["--final-precision", "half"], "precision must be one of 'float32', 'bfloat16', 'bfloat16-norm32'"),
        (["--publish-as", "bad name"], "entry name 'bad name' is not valid"),
    ],
)
def test_bad_search_options_are_named(tmp_path, args, message):
    result = runner.invoke(app, ["--registry", str(tmp_path / "r.db"), "search", "--dataset", "synthetic:200", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_params_for_inverts_suggest():
    space = SearchSpace(max_depth=4)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        spec = space.suggest(trial)
        assert space.params_for(spec) == trial.params
        study.tell(trial, 0.0)
    assert space.params_for(SearchSpace(max_depth=9).make_spec("residual", "basic", (9, 9, 9), 16, "A")) is None


def test_a_screened_draw_fills_every_parameter_suggest_asks_for():
    space = SearchSpace(max_depth=4)
    for spec in (space.sample(random.Random(seed)) for seed in range(20)):
        assert space.from_params(space.params_for(spec)) == spec
    # Draws go through Optuna's own checks: every parameter is in the relative space, with its distribution.
    sampler = screened(optuna.samplers.RandomSampler(seed=0), space, lambda spec: 1.0, limit_ms=2.0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda trial: float(space.suggest(trial).depth), n_trials=10)
    assert all(space.params_for(space.from_params(t.params)) == t.params for t in study.trials)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_the_screen_falls_back_to_uniform_draws_and_screens_tpe_too():
    # Stages x2, x4, x8: the first stage is twice the base width (params_for must see through it).
    space = SearchSpace(
        families=("residual", "plain"), blocks=("basic",), max_depth=4, base_widths=(8, 16), width_multipliers=(2, 4, 8)
    )
    spec = space.sample(random.Random(0))
    assert space.from_params(space.params_for(spec)) == spec
    # Only the shallowest nets are predicted under the limit: 1 in 64 draws. TPE, once past its start-up,
    # keeps proposing what scored well; the uniform fallback still finds the narrow feasible corner.
    inner = optuna.samplers.TPESampler(n_startup_trials=3, multivariate=True, group=True, seed=0)
    predict = lambda s: 1.0 if s.stage_depths == (1, 1, 1) else 10.0  # noqa: E731
    study = optuna.create_study(direction="maximize", sampler=screened(inner, space, predict, limit_ms=2.0, seed=0))
    study.optimize(lambda trial: float(space.suggest(trial).stage_widths[0]), n_trials=6)
    assert all(space.from_params(t.params).stage_depths == (1, 1, 1) for t in study.trials)
    assert sum(t.system_attrs[keys.SCREENED] for t in study.trials) > 20


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_net_already_in_the_study_is_not_drawn_again():
    # TPE, once settled on the shallowest nets, proposes them again and again; each
    # repeat would train the same seeded proxy to the same score.
    space = SearchSpace(families=("residual", "plain"), blocks=("basic",), max_depth=3, base_widths=(8, 16))
    inner = optuna.samplers.TPESampler(n_startup_trials=3, multivariate=True, group=True, seed=0)
    study = optuna.create_study(
        direction="maximize", sampler=screened(inner, space, lambda s: 1.0, limit_ms=2.0, seed=0)
    )
    study.enqueue_trial(space.params_for(space.make_spec("residual", "basic", (1, 1, 1), 8, "A")))
    study.optimize(lambda trial: -float(sum(space.suggest(trial).stage_depths)), n_trials=25)
    digests = [space.from_params(t.params).digest for t in study.trials]
    assert len(set(digests)) == len(digests)
    assert sum(t.system_attrs.get(keys.REPEATED, 0) for t in study.trials) > 0  # repeats were proposed, and dropped


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_under_hyperband_no_bracket_trains_a_net_another_bracket_holds():
    # Optuna shows a sampler only the trials of the trial's Hyperband bracket; the nets the
    # study holds and the net it started from are the whole study's (the second CIFAR-10
    # search trained one net twice, once in each bracket, before this was so).
    space = SearchSpace(families=("residual",), blocks=("basic",), max_depth=2, base_widths=(8,), shortcuts=("A",))
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3)
    inner = optuna.samplers.TPESampler(n_startup_trials=2, multivariate=True, group=True, seed=0)
    sampler = screened(inner, space, lambda s: 1.0, limit_ms=2.0, seed=0, macs_ratio=4.0)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    start = space.make_spec("residual", "basic", (1, 1, 1), 8, "A")
    study.enqueue_trial(space.params_for(start))

    def objective(trial):
        value = -float(sum(space.suggest(trial).stage_depths))
        trial.report(value, 1)
        trial.should_prune()  # (Hyperband sets up its brackets on its first call)
        return value

    study.optimize(objective, n_trials=8)
    assert len({pruner._get_bracket_id(study, t) for t in study.trials}) > 1  # the trials span brackets
    digests = [space.from_params(t.params).digest for t in study.trials]
    assert len(set(digests)) == 8  # the space's 8 nets, each once
    budgets = {t.system_attrs.get(keys.MACS_BUDGET) for t in study.trials[1:]}
    assert budgets == {4.0 * count(start).macs}  # every bracket knows the start


def test_the_screen_hands_on_the_passing_draw_the_known_score_ranks_highest():
    from reszoo.search.preference import PREFER_AMONG

    # The default score's size term is known before training: of the draws predicted
    # under the limit, the screen hands on the largest, never one over the limit.
    space = SearchSpace(families=("residual",), blocks=("basic",), max_depth=4)
    seen = []

    def prefer(spec):
        seen.append(spec)
        return spec.stage_widths[0]

    over = lambda spec: 10.0 if spec.stage_widths[0] >= 48 else 1.0  # noqa: E731
    study = optuna.create_study(
        sampler=screened(optuna.samplers.RandomSampler(seed=0), space, over, limit_ms=2.0, seed=0, prefer=prefer)
    )
    for _ in range(10):
        seen.clear()
        trial = study.ask()
        spec = space.suggest(trial)
        assert len({s.digest for s in seen}) == PREFER_AMONG  # distinct passing draws, all ranked
        assert spec.stage_widths[0] == max(s.stage_widths[0] for s in seen) < 48
        study.tell(trial, 0.0)
    chosen = [space.from_params(t.params).stage_widths[0] for t in study.trials]
    plain = optuna.create_study(
        sampler=screened(optuna.samplers.RandomSampler(seed=0), space, over, limit_ms=2.0, seed=0)
    )
    plain.optimize(lambda trial: float(space.suggest(trial).depth), n_trials=10)
    assert sum(chosen) > sum(space.from_params(t.params).stage_widths[0] for t in plain.trials)


def test_the_preference_trusts_the_prediction_only_as_far_as_the_study_measured_it():
    from reszoo.search.preference import CALIBRATE_AFTER

    # The predictor errs by block type. When the study's own measurements say it reads half the
    # truth, a draw predicted at 0.8x the limit is likely over it, and a smaller one is preferred.
    space = SearchSpace(families=("residual",), blocks=("basic",), max_depth=3, base_widths=(8, 16, 32))
    predict = lambda spec: {8: 0.4, 16: 0.9, 32: 1.6}[spec.stage_widths[0]]  # noqa: E731 (limit 2.0: all pass)
    seen = []

    def prefer(spec):
        seen.append(spec.stage_widths[0])
        return spec.stage_widths[0]

    def chosen(study):
        seen.clear()
        trial = study.ask()
        width = space.suggest(trial).stage_widths[0]
        study.tell(trial, 0.0)
        return width

    def sampler():
        return screened(optuna.samplers.RandomSampler(seed=1), space, predict, limit_ms=2.0, seed=1, prefer=prefer)

    trusting = optuna.create_study(sampler=sampler())
    assert chosen(trusting) == 32  # nothing measured yet: the prediction is taken as it is
    measured = optuna.create_study(sampler=sampler())
    distributions = space.distributions()
    for depths in [(1, 1, 1), (1, 1, 2), (1, 2, 1)][:CALIBRATE_AFTER]:
        spec = space.make_spec("residual", "basic", depths, 8, "A")
        params = space.params_for(spec)
        measured.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={name: distributions[name] for name in params},
                value=0.0,
                user_attrs={"spec": spec.to_dict(), "latency_ms": 2 * predict(spec), "latency_source": "measured"},
            )
        )
    assert chosen(measured) == 16 and seen and max(seen) == 16  # 32 (1.6 ms predicted, 3.2 likely) is not ranked


def test_the_correction_comes_from_careful_measurements_pooled_until_a_block_type_has_its_own():
    from reszoo.search.preference import CALIBRATE_AFTER

    assert CALIBRATE_AFTER == 3  # the counts below
    space = SearchSpace(families=("residual",), max_depth=3, base_widths=(8, 16))
    predict = lambda spec: 1.0  # noqa: E731
    distributions = space.distributions()
    study = optuna.create_study()
    calibration = Calibration(predict)

    def add(block, depths, ms, source):
        spec = space.make_spec("residual", block, depths, 8, "A")
        params = space.params_for(spec)
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={name: distributions[name] for name in params},
                value=0.0,
                user_attrs={"spec": spec.to_dict(), "latency_ms": ms, "latency_source": source},
            )
        )

    add("basic", (1, 1, 1), 2.0, "measured")
    add("bottleneck", (1, 1, 1), 0.5, "measured")
    assert calibration.factors(study) == {"": 1.0}  # two measurements: the prediction as it is
    add("basic", (1, 1, 2), 2.0, "measured")
    add("basic", (1, 2, 1), 9.0, "rough")  # far over the limit by a rough timing: not a careful ratio
    add("basic", (2, 1, 1), 9.0, "predicted")
    assert calibration.factors(study) == {"": 2.0}  # pooled: median of 2, 0.5, 2
    add("basic", (2, 2, 2), 2.0, "measured")
    assert calibration.factors(study) == {"": 2.0, "basic": 2.0}  # bottleneck nets still take the pooled 2.0


def test_trials_stop_at_a_training_cost_set_by_the_nets_the_study_started_from():
    # Under a loose limit the largest passing draws are the widest nets: cheap at batch 1, dear to
    # train. Only draws within the budget x the start's MACs are tried, whatever the preference.
    space = SearchSpace(families=("residual",), blocks=("basic",), max_depth=3, base_widths=(8, 16, 32))
    start = space.make_spec("residual", "basic", (2, 2, 2), 16, "A")
    budget = 1.5 * count(start).macs

    def study_from(start_nets, space=space, **options):
        options.setdefault("prefer", lambda spec: count(spec).params)
        study = optuna.create_study(
            sampler=screened(
                optuna.samplers.RandomSampler(seed=0), space, lambda spec: 1.0, limit_ms=2.0, seed=0, **options
            )
        )
        for net in start_nets:
            study.enqueue_trial(space.params_for(net))
        study.optimize(lambda trial: float(space.suggest(trial).depth), n_trials=8)
        return [space.from_params(t.params) for t in study.trials[len(start_nets) :]]

    unbounded = study_from([], macs_ratio=1.5)  # nothing to set a budget: the largest passing draws, 32 wide
    assert max(count(spec).macs for spec in unbounded) > budget
    bounded = study_from([start], macs_ratio=1.5)
    assert all(count(spec).macs <= budget for spec in bounded)
    assert max(count(spec).params for spec in bounded) > count(start).params  # still the larger of those within it
    # Without the preference too: no trial of a random search goes past the budget.
    plain = study_from([start], macs_ratio=1.5, prefer=None)
    assert all(count(spec).macs <= budget for spec in plain) and len(set(plain)) == len(plain)
    # Each trial says what budget its sampler held, so a trial over it can be explained from the study.
    noted = optuna.create_study(
        sampler=screened(optuna.samplers.RandomSampler(seed=0), space, lambda spec: 1.0, 2.0, seed=0, macs_ratio=1.5)
    )
    noted.enqueue_trial(space.params_for(start))
    noted.optimize(lambda trial: float(space.suggest(trial).depth), n_trials=6)
    assert {t.system_attrs.get(keys.MACS_BUDGET) for t in noted.trials[1:]} == {budget}
    assert sum(t.system_attrs[keys.OVER_BUDGET] for t in noted.trials[1:]) > 0  # 32-wide draws were dropped
    # No draw within the budget: the one with the fewest MACs goes on (of a space of 9 nets, which
    # 220 draws cover: its smallest).
    small = SearchSpace(families=("residual",), blocks=("basic",), max_depth=1, base_widths=(8, 16, 32))
    smallest = min(
        count(small.make_spec("residual", "basic", (1, 1, 1), w, s)).macs for w in (8, 16, 32) for s in "ABC"
    )
    big = small.make_spec("residual", "basic", (1, 1, 1), 32, "C")
    assert count(study_from([big], space=small, macs_ratio=1e-6)[0]).macs == smallest


def test_only_a_single_score_with_a_size_term_prefers_large_draws(tmp_path):
    spec = resolve_spec("resnet20")
    default = config(tmp_path)
    assert default.proxy.score == "train-loss+params"
    assert known_score(default)(spec) == pytest.approx(CAPACITY_WEIGHT * math.log(count(spec).params))
    for other in ("train-loss", "top1"):
        assert known_score(dataclasses.replace(default, proxy=dataclasses.replace(default.proxy, score=other))) is None
    assert (
        known_score(dataclasses.replace(default, size_preference=False)) is None
    )  # search_quality.py's tpe-unpreferred
    assert known_score(config(tmp_path, mode="pareto")) is None  # a front wants the fast nets as well


def _draws(tmp_path, screen):
    # Random draws (no model to learn from) with the score stubbed: the share of
    # feasible draws is then the screen's doing alone.
    folder = tmp_path / f"screen-{screen}"
    folder.mkdir()
    cfg = config(folder, max_ms=1.5, seed=3)
    cfg = dataclasses.replace(
        cfg,
        target=dataclasses.replace(cfg.target, predict=True),
        sampler="random",
        screen=screen,
        size_preference=False,
    )
    objective = make_objective(cfg)
    objective.train_proxy = lambda spec, trial=None: {
        "score": 0.5,
        "accuracy": 0.5,
        "train_err": 0.5,
        "train_seconds": 0.0,
    }
    return run(cfg, trials=8, objective=objective)


def test_the_screen_puts_draws_where_the_feasible_nets_are(tmp_path, fake_latency):
    SCREEN_MARGIN = DEFAULT_POLICY.screen_margin
    plain, screened = _draws(tmp_path, screen=False), _draws(tmp_path, screen=True)
    share = {
        name: sum(bool(t.user_attrs["feasible"]) for t in study.trials) / len(study.trials)
        for name, study in (("plain", plain), ("screened", screened))
    }
    assert share["plain"] < 0.8 and share["screened"] > share["plain"], share
    # Every trial the screen let through was predicted near the limit; what it dropped never became a trial.
    assert all(t.user_attrs["latency_ms"] <= SCREEN_MARGIN * 1.5 for t in screened.trials)
    assert sum(r.screened for r in trial_results(screened)) > 0
    assert sum(r.screened for r in trial_results(plain)) == 0


def test_a_search_starts_from_its_reference_preset(tmp_path, fake_latency):
    from reszoo.search.results import fitted_preset

    cfg = config(
        tmp_path, space=SearchSpace(families=("residual", "plain"), blocks=("basic",), max_depth=3, base_widths=(8, 16))
    )
    reference = fitted_preset("resnet20", cfg.space)
    study = run(cfg, trials=2, start_from=[reference])
    assert study.trials[0].user_attrs["digest"] == reference.digest
    # Its reference row reuses that trial instead of training resnet20 again.
    objective = make_objective(cfg)
    objective.train_proxy = lambda *_: pytest.fail("the reference was trained again")
    row = score_references(study, objective, ["resnet20"])["resnet20"]
    assert row["accuracy"] == study.trials[0].user_attrs["accuracy"]


@pytest.mark.parametrize("damage", [b'{"op_code": 4, "worker_id": "x", "study', b"\xff\xfe\x00garbage"])
def test_a_journal_cut_short_by_a_crash_reopens_with_its_whole_entries(tmp_path, damage):
    import optuna

    path = tmp_path / "studies.log"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    whole = path.read_bytes()
    path.write_bytes(whole + damage)  # a process killed mid-append
    with pytest.warns(RuntimeWarning, match="cut short"):
        reopened = optuna.load_study(study_name="s", storage=open_storage(f"journal:{path}"))
    assert len(reopened.trials) == 3 and path.read_bytes() == whole
    assert [p.read_bytes() for p in tmp_path.glob("studies.log.damaged-*")] == [damage]


def test_a_journal_damaged_in_the_middle_is_refused_with_the_repair(tmp_path):
    import optuna

    from reszoo.errors import SearchError

    path = tmp_path / "studies.log"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + [b"garbage\n"] + lines[2:]))
    with pytest.raises(SearchError, match=r"damaged at line 3 .*sed -i '3d'"):
        open_storage(f"journal:{path}")


def test_a_journal_under_a_file_or_on_a_folder_is_refused_before_any_work(tmp_path):

    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="which is a file, not a folder"):
        journal_path(f"journal:{tmp_path / 'file' / 'studies.log'}")
    with pytest.raises(InputError, match="is a folder"):
        journal_path(f"journal:{tmp_path}")


def test_the_python_api_runs_a_search_and_returns_its_result(tmp_path, fake_latency):
    import reszoo

    lines: list[str] = []
    result = reszoo.search(
        "synthetic:200",
        device="cpu",
        trials=3,
        workers=1,
        space=TINY_SPACE,
        proxy_epochs=1,
        proxy_images=100,
        val_images=50,
        proxy_batch_size=50,
        references=["resnet20"],
        registry=str(tmp_path / "r.db"),
        log=lines.append,
    )
    assert any("latency limit: resnet20's" in line for line in lines)  # the limit is the reference's latency
    assert sum(1 for r in result.trials if r.feasible) == 3  # three trained trials
    assert result.best and all(r.feasible for r in result.best)
    assert result.config.target.max_ms == result.references["resnet20"]["latency_ms"]
    pinned = reszoo.search(
        "synthetic:200",
        device="cpu",
        trials=1,
        workers=1,
        space=TINY_SPACE,
        proxy_epochs=1,
        proxy_images=100,
        val_images=50,
        proxy_batch_size=50,
        max_latency_ms=1e6,
        references=[],
        threads=1,
        registry=str(tmp_path / "r.db"),
    )
    assert pinned.config.target.threads == 1  # --threads: latency timed with that many, whatever torch's
    assert pinned.summary()["device"].endswith("(1 thread)")  # and labelled so
    assert result.study.study_name == result.config.study and result.summary()["trials"] == len(result.trials)
    with pytest.raises(reszoo.InputError, match="mode must be one of"):
        reszoo.search("synthetic:200", mode="best", registry=str(tmp_path / "r.db"))


def test_the_reference_that_sets_the_limit_stays_under_it_on_a_busy_machine(tmp_path, fake_latency, monkeypatch):
    # A busy machine: every measurement of resnet20 reads slower than the one before. The limit
    # is resnet20's latency, so resnet20 must still be trained and reported at the limit.
    import reszoo

    calls = {"n": 0}

    def busier(spec):
        ms = fake_ms(spec)
        if tuple(spec.stage_depths) == (3, 3, 3):  # resnet20: the tiny space's depths stop at 2
            calls["n"] += 1
            return ms * (1 + calls["n"])
        return ms

    class BusyJudge(FakeJudge):
        def measured_ms(self, spec, *, remeasure=False):
            return busier(spec)

        def fresh_ms(self, spec):
            return busier(spec)

        @classmethod
        def reference_limit(cls, reference, setup, registry):
            return latency_row(reference, busier(reference))

    monkeypatch.setattr(study_module, "LatencyJudge", BusyJudge)
    result = reszoo.search(
        "synthetic:200",
        device="cpu",
        trials=2,
        workers=1,
        space=TINY_SPACE,
        proxy_epochs=1,
        proxy_images=100,
        val_images=50,
        proxy_batch_size=50,
        references=["resnet20"],
        registry=str(tmp_path / "r.db"),
    )
    reference = result.references["resnet20"]
    assert calls["n"] == 1  # timed once, for the limit
    assert reference["accuracy"] is not None and not reference["over_limit"]
    assert reference["latency_ms"] == result.config.target.max_ms


def _steps_beside(lock_path, stepping, stop, out):
    import time as clock

    from reszoo.latency.quiet import QuietLock

    lock, spans = QuietLock(lock_path), []
    while not stop.is_set():
        with lock.step():
            start = clock.monotonic()
            clock.sleep(0.02)  # a training step
            spans.append((start, clock.monotonic()))
        stepping.set()
    out.put(spans)


def test_a_measurement_waits_for_the_step_in_flight_and_holds_the_next(tmp_path):
    import multiprocessing
    import time as clock

    from reszoo.latency.quiet import QuietLock

    context = multiprocessing.get_context("spawn")
    stepping, stop, out = context.Event(), context.Event(), context.Queue()
    worker = context.Process(target=_steps_beside, args=(tmp_path / "quiet", stepping, stop, out))
    worker.start()
    assert stepping.wait(timeout=60)
    clock.sleep(0.2)
    with QuietLock(tmp_path / "quiet").measuring():
        start = clock.monotonic()
        clock.sleep(0.4)  # a measurement
        measured = (start, clock.monotonic())
    clock.sleep(0.3)
    stop.set()
    spans = out.get(timeout=30)
    worker.join(timeout=30)
    assert not [s for s in spans if s[0] < measured[1] and s[1] > measured[0]], "a step ran during the measurement"
    # Steps ran before and after it: the measurement neither starved nor stopped them.
    assert any(s[1] <= measured[0] for s in spans) and any(s[0] >= measured[1] for s in spans)


def test_a_measurement_inside_a_step_is_refused_not_deadlocked(tmp_path):
    from reszoo.latency.quiet import QuietLock

    lock = QuietLock(tmp_path / "quiet")
    with lock.step():
        with pytest.raises(RuntimeError, match="measuring inside step"):
            with lock.measuring():
                pass
    with lock.measuring():  # released cleanly: the lock still works
        pass


def test_a_cpu_search_runs_one_worker_per_core_by_default(monkeypatch):
    import torch

    from reszoo.search.api import default_workers

    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1}, raising=False)  # taskset -c 0,1 of many
    assert default_workers(torch.device("cpu")) == 2
    assert default_workers(torch.device("cuda")) == 1  # streams, not processes, share a GPU


def test_the_proxy_trains_in_bfloat16_only_where_it_runs_natively(tmp_path, monkeypatch):
    from reszoo.search import api
    from reszoo.train import steps

    monkeypatch.setattr(steps, "native_bfloat16", lambda device: False)
    assert api.proxy_precision_for("auto", "cpu") is None  # the device's default: float32 on a CPU
    monkeypatch.setattr(steps, "native_bfloat16", lambda device: True)
    assert api.proxy_precision_for("auto", "cpu") == "bfloat16"
    assert api.proxy_precision_for("float32", "cpu") == "float32"
    with pytest.raises(InputError, match="'half'"):
        api.proxy_precision_for("half", "cpu")
    # A study started before the precision was a setting still resumes: the default adds no key.
    assert "precision" not in config(tmp_path).settings()["proxy"]
    bf16 = dataclasses.replace(
        config(tmp_path), proxy=dataclasses.replace(config(tmp_path).proxy, precision="bfloat16")
    )
    assert bf16.settings()["proxy"]["precision"] == "bfloat16"
