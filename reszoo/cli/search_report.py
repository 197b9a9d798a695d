"""What ``reszoo search`` shows: the progress line, the results table, the closing
counts, and after Ctrl-C what was found and the command that resumes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.table import Table

from reszoo.cli.app import console, err_console, state

if TYPE_CHECKING:
    import optuna

    from reszoo.latency.judge import Verdict
    from reszoo.search.config import SearchConfig
    from reszoo.search.results import TrialResult


def progress_fields(study: optuna.Study, mode: str, by_loss: bool) -> dict[str, Any]:
    from reszoo.search.results import best, pareto_front, trial_results

    results = trial_results(study)
    done = [r for r in results if r.state in ("COMPLETE", "PRUNED", "FAIL")]  # not RUNNING or WAITING
    judged = [r for r in done if r.feasible is not None]
    feasible = sum(1 for r in judged if r.feasible)
    top = best(results)
    if mode == "pareto":
        best_text = f"front {len(pareto_front(results))}"
    else:
        figures = (
            (f"loss {top[0].train_loss:.3f}, " if by_loss else "") + f"{100 * top[0].known_accuracy:.2f}%"
            if top
            else ""
        )
        best_text = f"best {figures} @ {_latency_text(top[0])} ms" if top else "best -"
    return {
        "completed": len(done),
        "trained": feasible,
        "best": best_text,
        "feasible": f"{feasible}/{len(judged)} feasible",
    }


def eta_text(elapsed_s: float, trained: int, budget: int | None, timeout_s: float | None) -> str:
    """When the search should end: the trained trials left at the pace of those so far, or the
    timeout if sooner (``budget``: trained trials to run now, None with a timeout alone)."""
    left = []
    if budget is not None and trained > 0:
        left.append(max(0, budget - trained) * elapsed_s / trained)
    if timeout_s is not None:
        left.append(max(0.0, timeout_s - elapsed_s))
    if not left:
        return "eta -"
    seconds = round(min(left))
    return (
        f"eta {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"eta {seconds // 60}:{seconds % 60:02d}"
    )


def _latency_text(r: TrialResult) -> str:
    """A trial's latency, marked * when it was scaled for a slow host (results_table's caption says so)."""
    return f"{r.latency_ms:.3f}" + ("*" if r.latency_source == "relative" else "")


def _net(family: str, block: str, shortcut: str | None) -> str:
    return f"{family} {block}" + (f" {shortcut}" if shortcut and shortcut != "none" else "")


def results_table(
    rows: list[TrialResult], references: dict[str, dict[str, Any]], title: str, with_loss: bool = False
) -> Table:
    """Trials and the reference presets (dimmed), narrow enough for an 80-column terminal;
    ``with_loss``: a column of the proxy's last-epoch training loss (when the score uses it)."""
    table = Table(title=title, title_justify="left")
    table.add_column("trial", no_wrap=True)
    table.add_column("net")
    table.add_column("depths")
    table.add_column("widths")
    for column in ("params", *(("loss",) if with_loss else ()), "acc %", "ms"):
        table.add_column(column, justify="right", no_wrap=True)

    def loss(value: float | None) -> tuple[str, ...]:
        return (("-" if value is None else f"{value:.3f}"),) if with_loss else ()

    for r in rows:
        s = r.known_spec
        table.add_row(
            str(r.number),
            _net(s.family, s.block, s.shortcut),
            "-".join(map(str, s.stage_depths)),
            "-".join(map(str, s.stage_widths)),
            f"{r.known_params / 1e6:.2f}M",
            *loss(r.train_loss),
            f"{100 * r.known_accuracy:.2f}",
            _latency_text(r),
        )
    for name, ref in references.items():
        s = ref["spec"]
        trained = ref.get("accuracy") is not None
        table.add_row(
            name,
            _net(s["family"], s["block"], s.get("shortcut")),
            "-".join(map(str, s["stage_depths"])),
            "-".join(map(str, s["stage_widths"])),
            f"{ref['params'] / 1e6:.2f}M",
            *loss(ref.get("train_loss") if trained else None),
            f"{100 * ref['accuracy']:.2f}" if trained else "over the limit",
            f"{ref['latency_ms']:.3f}",
            style="dim",
        )
    if any(r.latency_source == "relative" for r in rows):  # a scaled reading is not what the clock said
        table.caption = (
            "* timed while the host ran slow, then scaled by the limit / the reference's latency timed "
            "beside it (the registry keeps the raw reading)"
        )
        table.caption_justify = "left"
    return table


def report(
    summary: dict[str, Any],
    results: list[TrialResult],
    references: dict[str, dict[str, Any]],
    as_json: bool,
    config: SearchConfig,
) -> None:
    from reszoo.search.proxy import CAPACITY_WEIGHT
    from reszoo.search.results import best, pareto_front

    if as_json:
        console.print_json(json.dumps({k: v for k, v in summary.items() if k != "all_trials"}))
        return
    rows = best(results, 5) if config.mode == "constrained" else pareto_front(results)
    limit = f" under {config.target.max_ms:.4g} ms" if config.target.max_ms is not None else ""
    ranked = {
        "train-loss+params": f"the proxy's last-epoch training loss less {CAPACITY_WEIGHT} ln(params); top-1 "
        "on held-out images",
        "train-loss": "the proxy's last-epoch training loss; top-1 on held-out images",
        "top1": "the proxy's top-1 on held-out images",
    }[config.proxy.score]
    title = ("best feasible nets" if config.mode == "constrained" else "Pareto front") + (
        f"{limit} on {summary['device']} (ranked by {ranked}; presets dimmed)"
    )
    console.print(results_table(rows, references, title, with_loss=config.proxy.score != "top1"))
    counts = {state: sum(1 for r in results if r.state == state) for state in ("PRUNED", "FAIL")}
    if config.target.max_ms is None:  # Pareto mode without a limit: nothing is "over" anything
        fate = f"{summary['feasible']} trained ({len(pareto_front(results))} on the front, {counts['PRUNED']} pruned)"
    else:
        fate = (
            f"{summary['feasible']} under the limit ({len(pareto_front(results))} on the front, "
            f"{counts['PRUNED']} pruned), {sum(1 for r in results if r.feasible is False)} over it"
        )
    screened = (
        f"; {summary['screened_draws']} more draws, predicted over 1.2x the limit, were dropped before "
        "they became trials"
        if summary["screened_draws"]
        else ""
    )
    if summary["repeated_draws"]:
        repeated = summary["repeated_draws"]
        screened += (
            f"; {repeated} draw{'s' if repeated > 1 else ''} of {'nets' if repeated > 1 else 'a net'} "
            f"already tried {'were' if repeated > 1 else 'was'} dropped (not trained twice)"
        )
    console.print(
        f"{summary['trials']} trials: {fate}, {counts['FAIL']} failed{screened}. Study {config.study} in "
        f"{summary['storage']}",
        highlight=False,
    )


def report_interrupted(stopped: Any, as_json: bool, context: Any) -> None:
    """After Ctrl-C: what was found so far, what the interrupt did, and the command that resumes
    (``context``: the command's Typer context, whose options it repeats)."""
    from reszoo.search.runner import INTERRUPTED
    from reszoo.search.storage import redact

    result = stopped.result
    if result is None:
        err_console.print("interrupted before the study opened; nothing was kept", highlight=False)
        return
    if any(r.usable for r in result.trials):
        report(result.summary(), result.trials, result.references, as_json, result.config)
    else:
        console.print(f"no trial of study {result.config.study} was trained to the end yet", highlight=False)
    stopped_trials = sum(1 for r in result.trials if r.reason == INTERRUPTED)
    where = redact(result.config.storage)
    err_console.print(
        f"interrupted: {len(result.trials)} trials kept in {where}"
        + (f", the {stopped_trials} it stopped marked failed" if stopped_trials else ""),
        highlight=False,
    )
    if result.config.storage == "memory":
        err_console.print(
            "the study was in memory, so it cannot be resumed; give --study NAME to keep a search "
            "in a journal and resume it",
            highlight=False,
        )
    else:
        err_console.print(f"resume with: {_resume_command(result.config, context)}", highlight=False, soft_wrap=True)


def _resume_command(config: SearchConfig, context: Any) -> str:
    """This command line again, naming the study and its storage (a password is left out)."""
    import shlex

    from reszoo.search.storage import redact

    words = ["reszoo", *(["--registry", state.registry_url] if state.registry_url else []), "search"]
    for param in context.command.params:
        if param.name in ("study_name", "storage") or param.name is None:
            continue
        if getattr(context.get_parameter_source(param.name), "name", None) != "COMMANDLINE":
            continue
        value, option = context.params[param.name], max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            words += [option] if value else []
        else:
            words += [option, str(value)]
    return shlex.join([*words, "--study", config.study, "--storage", redact(config.storage)])


def confirm_line(result: TrialResult, verdict: Verdict, config: SearchConfig) -> str:
    """One line per --publish-best candidate timed again before training: kept or passed over."""
    from reszoo.search.results import confirmed_against

    outcome = "kept" if verdict.feasible else "passed over: not published"
    return (
        f"trial {result.number} timed again: {verdict.ms:.4g} ms (the search said {result.known_latency_ms:.4g} ms, "
        f"{result.latency_source}) against {confirmed_against(verdict, config)}: {outcome}"
    )
