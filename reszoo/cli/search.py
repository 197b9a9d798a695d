"""``reszoo search`` and ``reszoo plot pareto``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, overload

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reszoo.cli.app import app, console, err_console, open_registry, state
from reszoo.cli.plot import plot_app
from reszoo.cli.search_report import (
    confirm_line,
    eta_text,
    progress_fields,
    report,
    report_interrupted,
    results_table,  # noqa: F401  (its home before search_report.py)
)
from reszoo.errors import SearchError
from reszoo.files import FIGURE_SUFFIXES, atomic_write_text, check_output_file
from reszoo.limits import DEFAULT_MACS_BUDGET, MACS_BUDGET, MAX_BATCH
from reszoo.train.precision import check_precision
from reszoo.train.recipes import RECIPES, get_recipe
from reszoo.zoo.records import check_name

if TYPE_CHECKING:
    import optuna

    from reszoo.search.space import SearchSpace


@overload
def _csv(value: str, option: str, cast: type[str] | type[int] = ...) -> tuple[Any, ...]: ...
@overload
def _csv(value: str | None, option: str, cast: type[str] | type[int] = ...) -> tuple[Any, ...] | None: ...
def _csv(value: str | None, option: str, cast: type[str] | type[int] = str) -> tuple[Any, ...] | None:
    if value is None:
        return None
    try:
        items = tuple(cast(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a comma-separated list of {cast.__name__}s", param_hint=option
        ) from None
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
        raise typer.BadParameter(
            f"{value!r} is not MIN-MAX blocks per stage (e.g. 1-6)", param_hint="--depth"
        ) from None


def build_space(space_file: Path | None, **bounds: Any) -> SearchSpace:
    """The space of --space FILE (else the default), narrowed by the CLI bounds (search() fits it to the data)."""
    from reszoo.search.space import SearchSpace, load_space_file

    space = load_space_file(space_file) if space_file else SearchSpace()
    changes = {k: v for k, v in bounds.items() if v is not None}
    return space.with_overrides(**changes) if changes else space


@app.command("search")
def search_command(
    context: typer.Context,
    dataset_name: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="cifar10, fashion-mnist, synthetic, or a path. Default: the first "
            "found locally (fashion-mnist, then cifar10).",
            show_default=False,
        ),
    ] = None,
    data_root: Annotated[str | None, typer.Option(help="Folder holding named data sets (also $RESZOO_DATA).")] = None,
    device: Annotated[
        str, typer.Option(help="Where nets are timed and trained: auto (cuda if present), cpu, cuda[:N].")
    ] = "auto",
    max_latency_ms: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Latency limit (median, ms). Default: the first --reference preset's latency here, "
            "measured afresh (the quickest of three measurements and the stored row).",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Batch size the latency is measured at.")] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="CPU threads the latency is measured with (1 is the steadiest). Default: torch's, or "
            "what a resumed study started with.",
            show_default=False,
        ),
    ] = None,
    runtime: Annotated[
        str,
        typer.Option(
            help="Runtime the latency is measured in: auto (graph on a GPU, eager on a CPU), eager, graph, compile."
        ),
    ] = "auto",
    trials: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Trained trials to run now (more on a resumed study); draws over the latency limit "
            "are recorded but not counted (at most 50 per trained trial). Default: 16, or no "
            "limit with --timeout.",
        ),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=1.0, help="Stop starting trials after this many seconds.")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="constrained: the best-scored net under the limit; pareto: score and latency.")
    ] = "constrained",
    study_name: Annotated[
        str | None, typer.Option("--study", help="Study name; an existing study resumes (same settings required).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="memory, journal:PATH (processes on one machine) or a database URL (many machines). "
            "Default: memory for one worker and no --study, else the journal $RESZOO_HOME/search/studies.log."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes on this machine sharing the study, at most one per usable core and one per "
            "trial. Default: one per core (1 thread each) when the proxy trains on a CPU, one on a GPU; "
            "latency is timed with the others paused between two training steps.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampler (worker i: seed + i) and of every proxy run.")] = 0,
    space_file: Annotated[Path | None, typer.Option("--space", help="A JSON/TOML file of search-space bounds.")] = None,
    families: Annotated[str | None, typer.Option(help="Families to search, e.g. residual,plain,highway.")] = None,
    blocks: Annotated[str | None, typer.Option(help="Block types: basic, bottleneck.")] = None,
    depth: Annotated[str | None, typer.Option(help="Blocks per stage, MIN-MAX (default 1-4).")] = None,
    widths: Annotated[
        str | None, typer.Option(help="First-stage widths to try, e.g. 8,16,32 (stages x1, x2, x4).")
    ] = None,
    shortcuts: Annotated[str | None, typer.Option(help="Shortcut styles allowed: A, B, C.")] = None,
    proxy_epochs: Annotated[int, typer.Option(min=1, help="Epochs of each trial's proxy training.")] = 3,
    proxy_images: Annotated[
        int, typer.Option(min=10, help="Training images of each proxy run (more cost time).")
    ] = 3000,
    val_images: Annotated[
        int, typer.Option(min=10, help="Training images held out to measure each proxy's top-1 on.")
    ] = 1000,
    proxy_batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Batch size of the proxy training.")] = 32,
    proxy_precision: Annotated[
        str,
        typer.Option(
            help="Precision of the proxy training: auto (bfloat16 autocast where it runs natively: a GPU, or a CPU "
            "with AVX512-BF16 or AMX; else float32), float32, bfloat16."
        ),
    ] = "auto",
    proxy_score: Annotated[
        str,
        typer.Option(
            help="What ranks the nets: train-loss+params (the proxy's last epoch's training loss, less 0.05 x "
            "ln(parameters), since short proxies underrate larger nets; the latency screen then hands on the "
            "largest of up to five passing draws likely under the limit), train-loss (the loss alone) or top1 "
            "(top-1 on the held-out images). Top-1 is shown either way."
        ),
    ] = "train-loss+params",
    reference: Annotated[
        str,
        typer.Option(
            help="Presets trained on the same proxy and shown beside the result; the first sets the "
            "default limit, and those under it set the MACs budget (--macs-budget). "
            "'none' for none."
        ),
    ] = "resnet20",
    pruner: Annotated[
        str,
        typer.Option(
            help="How proxy runs stop early: median (below the median of earlier trials at an epoch), "
            "hyperband (Optuna's Hyperband over proxy epochs: for a proxy of many epochs, where most "
            "trials should stop after one or a few; needs --proxy-epochs 3 or more) or none."
        ),
    ] = "median",
    min_proxy_epochs: Annotated[
        int,
        typer.Option(
            min=1,
            help="The proxy epoch from which the pruner may stop a run (hyperband's first rung, the "
            "median pruner's warm-up); raise it when scores after one epoch do not yet rank the nets.",
        ),
    ] = 1,
    macs_budget: Annotated[
        str,
        typer.Option(
            help="Trials train only nets within this many times the MACs of the largest --reference "
            "under the limit, which bounds the proxy's training cost; 'none' lifts the bound "
            "(wide, shallow nets are quick at batch 1 but dear to train).",
        ),
    ] = str(DEFAULT_MACS_BUDGET),
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write every trial and the result as JSON here.")
    ] = None,
    publish_best_k: Annotated[
        int, typer.Option("--publish-best", min=0, help="Train the K best with --final-recipe and publish them.")
    ] = 0,
    final_recipe: Annotated[str, typer.Option(help=f"Recipe for --publish-best: {', '.join(RECIPES)}.")] = "onecycle",
    final_epochs: Annotated[int | None, typer.Option(min=1, help="Epochs of the --publish-best training.")] = None,
    final_precision: Annotated[
        str,
        typer.Option(
            help="Precision of the --publish-best training: auto (the device's: float32 on a CPU), "
            "float32, bfloat16, bfloat16-norm32."
        ),
    ] = "auto",
    publish_as: Annotated[
        str | None,
        typer.Option(
            help="Name of the --publish-best entries: NAME for one, NAME-1 ... NAME-K by rank for K. "
            "Default: STUDY-tN (N the trial).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of a table.")] = False,
) -> None:
    """Search residual, plain and highway nets for the best one under a latency limit.

    Each trial draws a net (Optuna's TPE), predicts then measures its latency
    on DEVICE (cached in the registry), and, if it is under the limit, trains
    it briefly on a proxy, scored by its last epoch's training loss and its
    size (see --proxy-score), with its top-1 on held-out training images
    beside it. Nets over the limit are never trained and never reported best. With no options
    it runs a small search on a data set it finds here, under resnet20's
    latency. Exits 1 when no trial was feasible; on Ctrl-C, shows what was found,
    how to resume, and exits 130.
    """
    from reszoo.search.api import DEFAULT_TRIALS, search
    from reszoo.search.processes import SearchInterrupted
    from reszoo.search.results import publish_best
    from reszoo.search.storage import redact
    from reszoo.search.study import make_judge

    if out is not None:  # before the search: its results must not be lost for want of a folder
        check_output_file(out, "--out")
    references = [] if reference.strip().lower() == "none" else list(_csv(reference, "--reference"))
    macs_ratio = None if macs_budget.strip().lower() == "none" else MACS_BUDGET.parse(macs_budget, "--macs-budget")
    precision = None if final_precision == "auto" else check_precision(final_precision)
    if publish_as is not None:
        check_name(publish_as)
    space = build_space(
        space_file,
        families=_csv(families, "--families"),
        blocks=_csv(blocks, "--blocks"),
        base_widths=_csv(widths, "--widths", int),
        shortcuts=_csv(shortcuts, "--shortcuts"),
        **_depth_range(depth),
    )
    with Progress(
        TextColumn("trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
        TextColumn("{task.fields[feasible]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("search", total=None, best="best -", feasible="", eta="")
        start_count, started = None, 0.0
        budget = trials if trials is not None or timeout is not None else DEFAULT_TRIALS

        def on_progress(study: optuna.Study) -> None:
            nonlocal start_count, started
            fields = progress_fields(study, mode, by_loss=proxy_score != "top1")
            if start_count is None:  # the first call comes before any new trial
                start_count, started = fields["trained"], time.monotonic()
                err_console.print(
                    f"study {study.study_name}: {mode}, {len(study.trials)} trials so far", highlight=False
                )
            eta = eta_text(time.monotonic() - started, fields["trained"] - start_count, budget, timeout)
            progress.update(
                task,
                total=(start_count + budget) if budget else None,
                completed=fields["trained"],
                best=fields["best"],
                feasible=fields["feasible"],
                eta=eta,
            )

        try:
            result = search(
                dataset_name,
                data_root=data_root,
                device=device,
                max_latency_ms=max_latency_ms,
                batch_size=batch_size,
                runtime=runtime,
                trials=trials,
                timeout=timeout,
                mode=mode,
                study=study_name,
                storage=storage,
                workers=workers,
                seed=seed,
                space=space,
                proxy_epochs=proxy_epochs,
                proxy_images=proxy_images,
                val_images=val_images,
                proxy_batch_size=proxy_batch_size,
                proxy_precision=proxy_precision,
                proxy_score=proxy_score,
                pruner=pruner,
                min_proxy_epochs=min_proxy_epochs,
                macs_budget=macs_ratio,
                threads=threads,
                references=references,
                registry=state.registry_url,
                on_progress=on_progress,
                log=lambda message: progress.console.print(message, highlight=False),
            )
        except SearchInterrupted as stopped:
            progress.stop()
            report_interrupted(stopped, as_json, context)
            raise typer.Exit(130) from None
    summary = result.summary()
    if out is not None:
        atomic_write_text(out, json.dumps(summary, indent=2) + "\n")
    report(summary, result.trials, result.references, as_json, result.config)
    if not result.best:
        limit = result.config.target.max_ms
        raise SearchError(
            f"no feasible trial in study {result.config.study!r}: all {len(result.trials)} trials were "
            + (f"over {limit:.4g} ms, " if limit is not None else "")
            + "failed or were pruned. Raise --max-latency-ms, narrow the space to smaller nets (--depth, --widths), "
            "or run more --trials"
        )
    if publish_best_k:
        recipe = get_recipe(final_recipe)
        if final_epochs is not None:
            recipe = recipe.with_overrides(epochs=final_epochs)
        for entry in publish_best(
            result.study,
            result.config,
            publish_best_k,
            recipe,
            open_registry(),
            dataset=result.dataset,
            name=publish_as,
            precision=precision,
            judge=make_judge(result.config),
            on_confirm=lambda r, v: err_console.print(confirm_line(r, v, result.config), highlight=False),
            on_start=lambda r, n: err_console.print(
                f"training trial {r.number} as {n} ({recipe.name})", highlight=False
            ),
        ):
            console.print(
                f"published {entry.ref}: "
                + (f"test top-1 {100 * entry.top1:.2f}% " if entry.top1 is not None else "no test top-1 ")
                + f"(study {entry.study}, trial {entry.trial}; storage {redact(result.config.storage)})",
                highlight=False,
            )


@plot_app.command("pareto")
def plot_pareto_command(
    study_name: Annotated[str, typer.Argument(help="The study to draw.", show_default=False)],
    out: Annotated[
        str, typer.Option("--out", "-o", help="Image file to write (.png, .svg, .pdf).", show_default=False)
    ],
    storage: Annotated[
        str | None, typer.Option(help="Where the study is (default: the journal $RESZOO_HOME/search/studies.log).")
    ] = None,
) -> None:
    """Accuracy against latency for every trial of a study: the front, the limit and the presets."""
    import optuna

    from reszoo.search import keys
    from reszoo.search.plots import plot_pareto
    from reszoo.search.results import trial_results
    from reszoo.search.storage import default_storage, journal_path, open_storage, redact

    check_output_file(out, "--out", suffixes=FIGURE_SUFFIXES)
    storage_url = storage or default_storage()
    journal = journal_path(storage_url)
    if journal is not None and not journal.is_file():
        raise SearchError(f"no study storage {journal}: give the --storage the search used")
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url))
    except KeyError:
        raise SearchError(
            f"no study {study_name!r} in {redact(storage_url)}; `optuna studies --storage ...` lists them"
        ) from None
    settings = study.user_attrs.get(keys.SETTINGS, {})
    limit = settings.get("target", {}).get("max_ms")
    target = settings.get("target", {})
    title = (
        f"{study_name}: {settings.get('dataset', '')}, batch-{target.get('batch_size', 1)} "
        f"{target.get('runtime', '')} latency on {target.get('device', '?')}"
        + (f", limit {limit:.3g} ms" if limit is not None else "")
    )
    path = plot_pareto(
        trial_results(study), out, references=study.user_attrs.get(keys.REFERENCES), max_ms=limit, title=title
    )
    console.print(f"wrote {path}", highlight=False)
