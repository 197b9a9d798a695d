"""``reszoo release``: build the public zoo from its manifest."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reszoo.cli.app import app, command_line, console, err_console, interrupted
from reszoo.cli.options import number_option
from reszoo.cli.render import print_json
from reszoo.errors import Interrupted
from reszoo.limits import JOBS

if TYPE_CHECKING:
    from reszoo.zoo.registry import Registry


@app.command("release")
def release_command(
    manifest_path: Annotated[
        Path,
        typer.Argument(
            metavar="MANIFEST", help="The zoo manifest (zoo.toml at the repository root).", show_default=False
        ),
    ],
    into: Annotated[
        str,
        typer.Option(
            "--into", help="Registry to publish into (a SQLite file or URL; created if missing).", show_default=False
        ),
    ],
    device: Annotated[
        str,
        typer.Option(help="auto (a GPU if there is one), cpu, cuda or cuda:N; its type picks the manifest's recipe."),
    ] = "auto",
    jobs: Annotated[
        int | None,
        number_option(
            JOBS,
            "--jobs",
            "-j",
            help="Nets at once: processes on a CPU (default one per core, "
            "threads split evenly), CUDA streams on a GPU (default 4).",
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            help="Wall time for the whole run (90s, 45m, 2h, 2h30m): nets that cannot fit are not started; "
            "runs near the end stop at their last checkpoint and resume next time."
        ),
    ] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Build this entry only (repeatable).")] = None,
    data_root: Annotated[
        str | None, typer.Option(help="Folder holding the manifest's data set (also $RESZOO_DATA).")
    ] = None,
    docs: Annotated[
        Path | None,
        typer.Option(help="Where figures, zoo.md and the run summary go (default: the manifest's docs folder)."),
    ] = None,
    ship_from: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Train nothing: copy this release's entries from another registry (a GPU "
            "machine's, say) into --into, versions and checksums kept; then redraw.",
        ),
    ] = None,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Skip the batch-1 latency measurement.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
) -> None:
    """Train every entry of MANIFEST that --into does not hold for this device's recipe, and publish it.

    Each net checkpoints under $RESZOO_HOME/release/ at every epoch end, so a
    killed run resumes where it stopped; finished nets are evaluated in
    float32 and float16 (float16 kept when top-1 moves by at most the
    manifest's tolerance), published with lineage (release, recipe, device,
    git commit), then timed at batch 1; figures and the zoo table follow.
    Running it again adds nothing.
    """
    from reszoo.release import build_release, parse_duration, read_manifest
    from reszoo.release import ship_from as copy_release
    from reszoo.release.report import write_report
    from reszoo.zoo.registry import Registry

    manifest = read_manifest(manifest_path)
    budget_s = parse_duration(budget) if budget is not None else None
    folder = docs if docs is not None else manifest.docs
    target = Registry(into)
    began = time.monotonic()

    def log(message: str) -> None:
        err_console.print(f"[dim]{time.monotonic() - began:7.0f} s[/] {message}", highlight=False)

    if ship_from is not None:
        with Registry(ship_from, readonly=True) as source:
            copied = copy_release(manifest, source, target, log=log)
        kinds = {(e.recipe.get("release") or {}).get("kind") for e in map(target.get, copied)}
        for kind in sorted(k for k in kinds if k):
            write_report(manifest, kind, target, folder, log=log)
        _settle(target, log)
        console.print(f"{len(copied)} entries of {manifest.name} in {target.display_url}", highlight=False)
        return
    try:
        report = build_release(
            manifest,
            target,
            device=device,
            jobs=jobs,
            budget_s=budget_s,
            data_root=data_root,
            only=only,
            measure_latency=not no_latency,
            log=log,
        )
    except Interrupted as exc:
        _settle(target, log)
        # Running the same command again is resuming: held nets are skipped, stopped ones resume.
        interrupted(str(exc), command_line())
    files = write_report(manifest, report.kind, target, folder, report, log=log)
    _settle(target, log)
    if as_json:
        print_json(report.to_dict())
        return
    for net in report.nets:
        console.print(f"{net.name:<12} {net.status:<10} {net.detail}", highlight=False)
    console.print(
        f"{len(report.trained_now)} trained and published in {report.elapsed_s / 60:.1f} min; "
        + (f"wrote {', '.join(files)}" if files else "no report folder"),
        highlight=False,
    )
    if any(n.status in ("failed", "conflict") for n in report.nets):
        raise typer.Exit(1)


def _settle(target: Registry, log: Callable[[str], None]) -> None:
    """A SQLite target is left as one file that reads without writing (what ships)."""
    if target.path is not None and not target.settle():
        log(
            f"{target.path} is open in another process: left in WAL mode; run python tools/make_registry.py "
            f"{target.path} once it is closed to settle it for shipping"
        )
