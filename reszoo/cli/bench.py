"""``reszoo bench``: measure latency, store it, build the predictor's lookup table."""

from __future__ import annotations

import random
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from reszoo.cli.app import app, console, err_console, open_registry
from reszoo.cli.options import number_option
from reszoo.cli.render import NOISY_NOTE, latency_row, print_json
from reszoo.limits import BATCH, RANDOM_SPECS, SEED, THREADS


@app.command("bench")
def bench_command(
    refs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Preset names or spec .json files to measure, or entries (NAME@VERSION, or a name that is no preset).",
            show_default=False,
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int, number_option(BATCH, "--batch-size", help="Images per forward pass.")] = 1,
    dtype: Annotated[str, typer.Option(help="float32, float16 or bfloat16.")] = "float32",
    runtime: Annotated[
        str,
        typer.Option(
            help="eager, graph (one CUDA graph; CUDA only), compile (torch.compile) or onnxruntime "
            "(ONNX Runtime on the CPU, float32; pip install 'reszoo\\[onnx]')."
        ),
    ] = "eager",
    threads: Annotated[
        int | None,
        number_option(THREADS, "--threads", help="CPU threads to measure with (default: torch's; 1 is steadiest)."),
    ] = None,
    remeasure: Annotated[
        bool,
        typer.Option(
            "--remeasure", help="Measure again even if a row is stored (with --build-table: every part of REFs too)."
        ),
    ] = False,
    build_table: Annotated[
        bool,
        typer.Option(
            "--build-table",
            help="Time the stem, blocks and head of REFs (and of --random specs) into the predictor's "
            "lookup table, then report the predictor's error against measurement.",
        ),
    ] = False,
    random_specs: Annotated[
        int,
        number_option(
            RANDOM_SPECS, "--random", help="With --build-table: also this many random specs of the default space."
        ),
    ] = 10,
    seed: Annotated[int, number_option(SEED, "--seed", help="Seed of the random specs.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")] = False,
) -> None:
    """Measure latency (median and p90) and store it in the registry by architecture.

    A stored row for the same architecture, device, batch size, dtype and runtime
    is reused unless --remeasure.
    """
    from reszoo.latency.measure import LatencySetup, latency
    from reszoo.latency.predictor import LatencyPredictor, PredictionCheck, summarize
    from reszoo.search.space import SearchSpace
    from reszoo.zoo.factory import resolve_arch

    setup = LatencySetup(device=device, batch_size=batch_size, dtype=dtype, runtime=runtime, threads=threads)
    registry = open_registry()
    if not refs and not build_table:
        raise typer.BadParameter("give at least one model to measure, or --build-table")
    specs = [resolve_arch(ref, registry) for ref in refs or []]
    if build_table:
        rng = random.Random(seed)
        specs += [SearchSpace().sample(rng) for _ in range(random_specs)]
        if not specs:
            raise typer.BadParameter("--build-table needs models to time: give REFs or --random N with N > 0")
        predictor = LatencyPredictor(registry, setup)
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("timing parts", total=None)
            added = predictor.fill(
                specs,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                remeasure=remeasure,
            )
        err_console.print(f"lookup table for {predictor.label}: {added} parts timed, {len(predictor.table)} in all")
    rows, checks = [], []
    for spec in specs:
        record = latency(spec, setup, registry=registry, remeasure=remeasure)
        row = {"summary": spec.summary(), "digest": spec.digest, **latency_row(record)}
        if build_table:
            check = PredictionCheck(spec, predictor.predict(spec), record.median_ms)
            checks.append(check)
            row["predicted_ms"] = check.predicted_ms
        rows.append(row)
    if as_json:
        print_json({"rows": rows, "predictor": summarize(checks) if checks else None})
        return
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    # Units in the headers, not in every cell, and a net name that folds: 7 columns fit 80.
    for column in ("net", "depth", "median ms", "p90 ms", "samples") + (
        ("predicted ms", "error") if build_table else ()
    ):
        table.add_column(
            column, justify="left" if column == "net" else "right", no_wrap=column != "net", overflow="fold"
        )
    shown: list[PredictionCheck | None] = list(checks) if checks else [None] * len(rows)
    for spec, row, shown_check in zip(specs, rows, shown):
        cells = [
            f"{spec.family}{spec.depth} {spec.block} {spec.short_digest[:8]}",
            str(spec.depth),
            f"{row['median_ms']:.3f}",
            f"{row['p90_ms']:.3f}" + ("*" if row["noisy"] else ""),
            str(row["samples"]),
        ]
        if shown_check is not None:
            cells += [f"{shown_check.predicted_ms:.3f}", f"{100 * shown_check.error:+.0f}%"]
        table.add_row(*cells)
    console.print(f"{rows[0]['device']}, {runtime}, batch {batch_size}, {dtype}", highlight=False)
    console.print(table)
    if any(row["noisy"] for row in rows):
        console.print("* " + NOISY_NOTE, highlight=False)
    if checks:
        s = summarize(checks)
        console.print(
            f"predictor: {100 * s['within_10pct']:.0f}% within 10%, {100 * s['within_20pct']:.0f}% within 20%, "
            f"median |error| {100 * s['median_abs_error']:.1f}%, worst {100 * s['max_abs_error']:.0f}%",
            highlight=False,
        )
