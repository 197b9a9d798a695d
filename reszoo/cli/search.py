"""``reszoo search`` and ``reszoo plot pareto``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reszoo.cli.app import app, console, err_console, open_registry, state
from reszoo.cli.train import plot_app
from reszoo.errors import SearchError
from reszoo.files import FIGURE_SUFFIXES, check_output_file
from reszoo.limits import MAX_BATCH
from reszoo.train.recipes import RECIPES, get_recipe
from reszoo.zoo.records import check_name

if TYPE_CHECKING:
    import optuna

    from reszoo.search.results import TrialResult
    from reszoo.search.space import SearchSpace
    from reszoo.search.study import SearchConfig


def _csv(value: str | None, option: str, cast=str) -> tuple | None:
    if value is None:
        return None
    try:
        items = tuple(cast(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a comma-separated list of {cast.__name__}s", param_hint=option)
    if not items:
        raise typer.BadParameter("give at least one value", param_hint=option)
    return items


def _depth_range(value: str | None) -> dict[str, int]:
    if value is None:
        return {}
    low, sep, high = value.partition("-")
    try:
        return {"min_depth": int(low), "max_depth": int(high if sep else low)}
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not MIN-MAX blocks per stage (e.g. 1-6)", param_hint="--depth")


def build_space(space_file: Path | None, dataset: Any, **bounds: Any) -> SearchSpace:
    """The space of --space FILE (else the default), narrowed by the CLI bounds, fitted to the data."""
    from reszoo.search.space import SearchSpace, load_space_file

    space = load_space_file(space_file) if space_file else SearchSpace()
    changes = {k: v for k, v in bounds.items() if v is not None}
    changes.update(num_classes=dataset.num_classes, in_chans=dataset.in_chans, input_size=dataset.input_size)
    return space.with_overrides(**changes)


def _progress_fields(study: optuna.Study, mode: str) -> dict[str, Any]:
    from reszoo.search.results import best, pareto_front, trial_results

    results = trial_results(study)
    done = [r for r in results if r.state in ("COMPLETE", "PRUNED", "FAIL")]  # not RUNNING or WAITING
    judged = [r for r in done if r.feasible is not None]
    feasible = sum(1 for r in judged if r.feasible)
    top = best(results)
    if mode == "pareto":
        best_text = f"front {len(pareto_front(results))}"
    else:
        best_text = f"best {100 * top[0].accuracy:.2f}% @ {top[0].latency_ms:.3f} ms" if top else "best -"
    return {"completed": len(done), "best": best_text, "feasible": f"{feasible}/{len(judged)} feasible"}


def _net(family: str, block: str, shortcut: str | None) -> str:
    return f"{family} {block}" + (f" {shortcut}" if shortcut and shortcut != "none" else "")


def results_table(rows: list[TrialResult], references: dict[str, dict[str, Any]], title: str) -> Table:
    """Trials and the reference presets (dimmed), narrow enough for an 80-column terminal."""
    table = Table(title=title, title_justify="left")
    table.add_column("trial", no_wrap=True)
    table.add_column("net")
    table.add_column("depths")
    table.add_column("widths")
    for column in ("params", "acc %", "ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in rows:
        s = r.spec
        table.add_row(str(r.number), _net(s.family, s.block, s.shortcut), "-".join(map(str, s.stage_depths)),
                      "-".join(map(str, s.stage_widths)), f"{r.params / 1e6:.2f}M", f"{100 * r.accuracy:.2f}",
                      f"{r.latency_ms:.3f}")
    for name, ref in references.items():
        s = ref["spec"]
        table.add_row(name, _net(s["family"], s["block"], s.get("shortcut")), "-".join(map(str, s["stage_depths"])),
                      "-".join(map(str, s["stage_widths"])), f"{ref['params'] / 1e6:.2f}M",
                      "over the limit" if ref.get("accuracy") is None else f"{100 * ref['accuracy']:.2f}",
                      f"{ref['latency_ms']:.3f}", style="dim")
    return table


@app.command("search")
def search_command(
    dataset_name: Annotated[
        Optional[str],
        typer.Option("--dataset", "-d", help="cifar10, fashion-mnist, synthetic, or a path. Default: the first "
                     "found locally (fashion-mnist, then cifar10).", show_default=False),
    ] = None,
    data_root: Annotated[Optional[str], typer.Option(help="Folder holding named data sets (also $RESZOO_DATA).")] = None,
    device: Annotated[str, typer.Option(help="Where nets are timed and trained: auto (cuda if present), cpu, cuda[:N].")] = "auto",
    max_latency_ms: Annotated[
        Optional[float],
        typer.Option(min=0.0, help="Latency limit (median, ms). Default: the first --reference preset's latency here."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Batch size the latency is measured at.")] = 1,
    runtime: Annotated[
        str, typer.Option(help="Runtime the latency is measured in: auto (graph on a GPU, eager on a CPU), eager, graph, compile.")
    ] = "auto",
    trials: Annotated[
        Optional[int],
        typer.Option(min=1, help="Trained trials to run now (more on a resumed study); draws over the latency limit "
                                 "are recorded but not counted (at most 50 per trained trial). Default: 20, or no "
                                 "limit with --timeout."),
    ] = None,
    timeout: Annotated[Optional[float], typer.Option(min=1.0, help="Stop starting trials after this many seconds.")] = None,
    mode: Annotated[str, typer.Option(help="constrained: most accurate under the limit; pareto: accuracy and latency.")] = "constrained",
    study_name: Annotated[
        Optional[str], typer.Option("--study", help="Study name; an existing study resumes (same settings required).")
    ] = None,
    storage: Annotated[
        Optional[str],
        typer.Option(help="memory, journal:PATH (processes on one machine) or a database URL (many machines). "
                     "Default: memory, or the journal $RESZOO_HOME/search/studies.log with --study or --workers."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on this machine sharing the study.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the sampler (worker i: seed + i) and of every proxy run.")] = 0,
    space_file: Annotated[Optional[Path], typer.Option("--space", help="A JSON/TOML file of search-space bounds.")] = None,
    families: Annotated[Optional[str], typer.Option(help="Families to search, e.g. residual,plain,highway.")] = None,
    blocks: Annotated[Optional[str], typer.Option(help="Block types: basic, bottleneck.")] = None,
    depth: Annotated[Optional[str], typer.Option(help="Blocks per stage, MIN-MAX (default 1-4).")] = None,
    widths: Annotated[Optional[str], typer.Option(help="First-stage widths to try, e.g. 8,16,32 (stages x1, x2, x4).")] = None,
    shortcuts: Annotated[Optional[str], typer.Option(help="Shortcut styles allowed: A, B, C.")] = None,
    proxy_epochs: Annotated[int, typer.Option(min=1, help="Epochs of each trial's proxy training.")] = 3,
    proxy_images: Annotated[int, typer.Option(min=10, help="Training images of each proxy run.")] = 3000,
    val_images: Annotated[int, typer.Option(min=10, help="Training images held out to score trials on.")] = 1000,
    proxy_batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Batch size of the proxy training.")] = 64,
    reference: Annotated[
        str, typer.Option(help="Presets trained on the same proxy and shown beside the result; 'none' for none.")
    ] = "resnet20",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write every trial and the result as JSON here.")] = None,
    publish_best_k: Annotated[
        int, typer.Option("--publish-best", min=0, help="Train the K best with --final-recipe and publish them.")
    ] = 0,
    final_recipe: Annotated[str, typer.Option(help=f"Recipe for --publish-best: {', '.join(RECIPES)}.")] = "onecycle",
    final_epochs: Annotated[Optional[int], typer.Option(min=1, help="Epochs of the --publish-best training.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of a table.")] = False,
) -> None:
    """Search residual, plain and highway nets for the most accurate one under a latency limit.

    Each trial draws a net (Optuna's TPE), predicts then measures its latency
    on DEVICE (cached in the registry), and, if it is under the limit, trains
    it briefly on a proxy and scores it on held-out training images. Nets
    over the limit are never trained and never reported best. With no options
    it runs a small search on a data set it finds here, under resnet20's
    latency. Exits 1 when no trial was feasible.
    """
    from reszoo.search.latency import RUNTIMES, device_label, latency, resolve_device
    from reszoo.search.objective import PROXY_RECIPE, LatencyTarget, Proxy
    from reszoo.search.results import fitted_preset, publish_best, score_references, trial_results
    from reszoo.search.study import (
        MODES, SearchConfig, default_storage, journal_path, local_dataset, make_objective, redact, run,
        stored_settings,
    )
    from reszoo.train.data import load as load_dataset
    from reszoo.zoo.hub import local_url

    if mode not in MODES:
        raise typer.BadParameter(f"{mode!r} is not one of {', '.join(MODES)}", param_hint="--mode")
    if out is not None:  # before the search: its results must not be lost for want of a folder
        check_output_file(out, "--out")
    if trials is None and timeout is None:
        trials = 20
    torch_device = resolve_device(device)
    cuda = torch_device.type == "cuda"
    if runtime == "auto":
        runtime = "graph" if cuda else "eager"
    if runtime not in RUNTIMES:
        raise typer.BadParameter(f"{runtime!r} is not auto or one of {', '.join(RUNTIMES)}", param_hint="--runtime")
    if study_name is not None:
        check_name(study_name)
    references = [] if reference.strip().lower() == "none" else list(_csv(reference, "--reference"))
    name = study_name or time.strftime("search-%Y%m%d-%H%M%S")
    storage_url = storage or (default_storage() if study_name or workers > 1 else "memory")
    journal_path(storage_url)  # a bad URL fails now, not after the data set is loaded
    dataset_path = dataset_name or local_dataset(data_root)
    dataset = load_dataset(dataset_path, root=data_root)
    space = build_space(
        space_file, dataset, families=_csv(families, "--families"), blocks=_csv(blocks, "--blocks"),
        base_widths=_csv(widths, "--widths", int), shortcuts=_csv(shortcuts, "--shortcuts"), **_depth_range(depth),
    )
    available = len(dataset.train) - val_images
    if proxy_images > available > 0:
        err_console.print(f"--proxy-images {proxy_images}: {dataset.name} has {available} training images left after "
                          f"--val-images {val_images}; using {available}", highlight=False)
        proxy_images = available
    registry = open_registry()
    registry_url = state.registry_url or local_url()
    proxy = Proxy(
        recipe=PROXY_RECIPE.with_overrides(epochs=proxy_epochs, batch_size=proxy_batch_size),
        train_images=proxy_images, val_images=val_images, seed=seed, device=str(torch_device),
        runtime="graph" if cuda else "eager",
    )
    if max_latency_ms is None and study_name is not None:
        # A resumed study keeps the limit it started with (measured then, perhaps under other load).
        max_latency_ms = ((stored_settings(storage_url, name) or {}).get("target") or {}).get("max_ms")
    if max_latency_ms is None and mode == "constrained":
        if not references:
            raise typer.BadParameter("constrained mode needs --max-latency-ms, or a --reference preset whose latency "
                                     "sets the limit", param_hint="--max-latency-ms")
        from reszoo.search.latency import latency

        row = latency(fitted_preset(references[0], space), device=str(torch_device), batch_size=batch_size,
                      runtime=runtime, registry=registry)
        max_latency_ms = row.median_ms
        err_console.print(f"latency limit: {references[0]}'s {max_latency_ms:.3f} ms on {row.device} "
                          f"(batch {batch_size}, {runtime})", highlight=False)
    config = SearchConfig(
        dataset=dataset_path, data_root=data_root, space=space, proxy=proxy,
        target=LatencyTarget(device=str(torch_device), max_ms=max_latency_ms, batch_size=batch_size, runtime=runtime),
        registry=registry_url, study=name, storage=storage_url, mode=mode, seed=seed,
        startup_trials=min(10, max(3, (trials or 30) // 3)),
    )
    objective = make_objective(config, dataset)  # the data set is loaded once, here
    err_console.print(
        f"study {name} in {redact(storage_url)}: {mode}, {dataset.name} ({proxy_images} proxy images, "
        f"{proxy_epochs} epochs), {device_label(torch_device)}", highlight=False,
    )
    with Progress(
        TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[best]}"),
        TextColumn("{task.fields[feasible]}"), TimeElapsedColumn(), console=err_console, transient=True,
    ) as progress:
        task = progress.add_task("search", total=None, best="best -", feasible="")
        start_count = None

        def on_progress(study: optuna.Study) -> None:
            nonlocal start_count
            fields = _progress_fields(study, mode)
            if start_count is None:  # the first call comes before any new trial
                start_count = fields["completed"]
            progress.update(task, total=(start_count + trials) if trials else None, **fields)

        study = run(config, trials=trials, workers=workers, timeout=timeout, on_progress=on_progress,
                    start_from=[fitted_preset(r, space) for r in references], objective=objective)
        scored_refs: dict[str, dict[str, Any]] = {}
        if references:
            progress.update(task, best="training the reference presets on the proxy")
            scored_refs = score_references(study, objective, references)
    results = trial_results(study)
    summary = _summary(study, config, results, scored_refs)
    if out is not None:
        out.write_text(json.dumps(summary, indent=2) + "\n")
    if not summary["best"]:
        _report(summary, results, scored_refs, as_json, config)
        raise SearchError(
            f"no feasible trial in study {name!r}: all {len(results)} trials were "
            + (f"over {max_latency_ms:.4g} ms, " if max_latency_ms is not None else "")
            + "failed or were pruned. Raise --max-latency-ms, narrow the space to smaller nets (--depth, --widths), "
            "or run more --trials"
        )
    _report(summary, results, scored_refs, as_json, config)
    if publish_best_k:
        recipe = get_recipe(final_recipe)
        if final_epochs is not None:
            recipe = recipe.with_overrides(epochs=final_epochs)
        for entry in publish_best(
            study, config, publish_best_k, recipe, registry, dataset=dataset,
            on_start=lambda r, n: err_console.print(f"training trial {r.number} as {n} ({recipe.name})", highlight=False),
        ):
            console.print(f"published {entry.ref}: test top-1 {100 * entry.top1:.2f}% "
                          f"(study {entry.study}, trial {entry.trial})", highlight=False)


def _summary(study: optuna.Study, config: SearchConfig, results: list[TrialResult],
             references: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from reszoo.search.latency import device_label
    from reszoo.search.results import best, hypervolume, pareto_front
    from reszoo.search.study import redact

    front = pareto_front(results)
    top = best(results, 5)
    limit = config.target.max_ms
    hv_limit = limit if limit is not None else max((r.latency_ms for r in front), default=0.0)
    return {
        "study": config.study, "storage": redact(config.storage), "mode": config.mode, "dataset": config.dataset,
        "device": device_label(config.target.device), "max_latency_ms": limit, "batch_size": config.target.batch_size,
        "runtime": config.target.runtime,
        "trials": len(results), "feasible": sum(1 for r in results if r.feasible), "complete": sum(1 for r in results if r.state == "COMPLETE"),
        "best": [r.to_dict() for r in top] if config.mode == "constrained" else [r.to_dict() for r in front],
        "front": [r.to_dict() for r in front],
        "hypervolume": hypervolume([(r.latency_ms, r.accuracy) for r in front], hv_limit),
        "references": references,
        "all_trials": [r.to_dict() for r in results],
    }


def _report(summary: dict[str, Any], results: list[TrialResult], references: dict[str, dict[str, Any]],
            as_json: bool, config: SearchConfig) -> None:
    from reszoo.search.results import best, pareto_front

    if as_json:
        console.print_json(json.dumps({k: v for k, v in summary.items() if k != "all_trials"}))
        return
    rows = best(results, 5) if config.mode == "constrained" else pareto_front(results)
    limit = f" under {config.target.max_ms:.4g} ms" if config.target.max_ms is not None else ""
    title = ("best feasible nets" if config.mode == "constrained" else "Pareto front") + (
        f"{limit} on {summary['device']} (proxy validation accuracy; presets dimmed)"
    )
    console.print(results_table(rows, references, title))
    counts = {state: sum(1 for r in results if r.state == state) for state in ("PRUNED", "FAIL")}
    if config.target.max_ms is None:  # Pareto mode without a limit: nothing is "over" anything
        fate = f"{summary['feasible']} trained ({len(pareto_front(results))} on the front, {counts['PRUNED']} pruned)"
    else:
        fate = (f"{summary['feasible']} under the limit ({len(pareto_front(results))} on the front, "
                f"{counts['PRUNED']} pruned), {sum(1 for r in results if r.feasible is False)} over it")
    console.print(f"{summary['trials']} trials: {fate}, {counts['FAIL']} failed. Study {config.study} in "
                  f"{summary['storage']}", highlight=False)


@plot_app.command("pareto")
def plot_pareto_command(
    study_name: Annotated[str, typer.Argument(help="The study to draw.", show_default=False)],
    out: Annotated[str, typer.Option("--out", "-o", help="Image file to write (.png, .svg, .pdf).", show_default=False)],
    storage: Annotated[
        Optional[str], typer.Option(help="Where the study is (default: the journal $RESZOO_HOME/search/studies.log).")
    ] = None,
) -> None:
    """Accuracy against latency for every trial of a study: the front, the limit and the presets."""
    import optuna

    from reszoo.search.results import trial_results
    from reszoo.search.study import default_storage, journal_path, open_storage, redact

    from reszoo.search.plots import plot_pareto

    check_output_file(out, "--out", suffixes=FIGURE_SUFFIXES)
    storage_url = storage or default_storage()
    journal = journal_path(storage_url)
    if journal is not None and not journal.is_file():
        raise SearchError(f"no study storage {journal}: give the --storage the search used")
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url))
    except KeyError:
        raise SearchError(f"no study {study_name!r} in {redact(storage_url)}; `optuna studies --storage ...` "
                          "lists them") from None
    settings = study.user_attrs.get("reszoo", {})
    limit = settings.get("target", {}).get("max_ms")
    target = settings.get("target", {})
    title = (f"{study_name}: {settings.get('dataset', '')}, batch-{target.get('batch_size', 1)} "
             f"{target.get('runtime', '')} latency on {target.get('device', '?')}"
             + (f", limit {limit:g} ms" if limit is not None else ""))
    path = plot_pareto(trial_results(study), out, references=study.user_attrs.get("references"), max_ms=limit,
                       title=title)
    console.print(f"wrote {path}", highlight=False)
