"""``reszoo list``, ``reszoo show`` and ``reszoo build``: architectures and presets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from reszoo.cli.app import app, console, err_console
from reszoo.errors import SpecError
from reszoo.zoo.describe import spec_card, spec_row, stage_rows
from reszoo.zoo.factory import looks_like_spec_file, resolve_spec
from reszoo.zoo.presets import get_spec, list_models
from reszoo.zoo.spec import STEM_STRIDE, write_spec_file

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
ModelRef = Annotated[str, typer.Argument(help="A preset name (see `reszoo list`) or a spec .json file.", show_default=False)]


def human_count(n: int) -> str:
    """0.27M, 19.4M, 1.81G: millions from 10K up, as the paper's Table 6 writes them."""
    if n < 10_000:
        return f"{n:,}"
    value, unit = (n / 1e9, "G") if n >= 1e9 else (n / 1e6, "M")
    return f"{value:.2f}{unit}" if value < 10 else f"{value:.1f}{unit}"


def print_json(data: Any) -> None:
    # Plain stdout, not Rich: no wrapping or colour inside machine-readable output.
    typer.echo(json.dumps(data, indent=2))


def _ref_name(ref: str) -> str | None:
    """The preset name a reference stands for; a spec file has none."""
    return None if looks_like_spec_file(ref) else ref


@app.command("list")
def list_command(
    pattern: Annotated[str, typer.Argument(help="Shell-style name pattern, e.g. 'resnet*'.")] = "*",
    family: Annotated[
        Optional[str], typer.Option("--family", "-f", help="Only this family: residual, plain or highway.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the preset architectures with their depth, parameters and MACs."""
    names = list_models(pattern, family=family)
    rows = [spec_row(get_spec(name), name) for name in names]
    if as_json:
        print_json(rows)
        return
    if not rows:
        err_console.print(f"no models match {pattern!r}" + (f" in family {family!r}" if family else ""))
        return
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for column, justify in (
        ("name", "left"),
        ("family", "left"),
        ("block", "left"),
        ("stem", "left"),
        ("shortcut", "center"),
        ("depth", "right"),
        ("params", "right"),
        ("MACs", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(
            row["name"],
            row["family"],
            row["block"],
            row["stem"],
            row["shortcut"],
            str(row["depth"]),
            human_count(row["params"]),
            human_count(row["macs"]),
        )
    console.print(table)


@app.command("show")
def show_command(ref: ModelRef, as_json: JsonFlag = False) -> None:
    """Show one architecture: its spec, stages, parameters, MACs and digest."""
    spec = resolve_spec(ref)
    card = spec_card(spec, _ref_name(ref))
    if as_json:
        print_json(card)
        return
    console.print(f"[bold]{card['name'] or ref}[/]  {card['summary']}", highlight=False)
    stages = Table(title_justify="left", box=None, padding=(0, 2))
    for column in ("stage", "blocks", "width", "out channels", "stride", "output size"):
        stages.add_column(column, justify="right")
    stem_size = spec.stem_output_size()
    stages.add_row("stem", "", str(spec.stem_width), str(spec.stem_width), str(STEM_STRIDE[spec.stem]), f"{stem_size}x{stem_size}")
    for row in stage_rows(spec):
        size = row["output_size"]
        stages.add_row(
            str(row["stage"]), str(row["blocks"]), str(row["width"]), str(row["out_channels"]), str(row["stride"]), f"{size}x{size}"
        )
    console.print(stages)
    console.print(
        f"params {card['params']:,} ({human_count(card['params'])})   "
        f"MACs {card['macs']:,} ({human_count(card['macs'])}) at batch 1",
        highlight=False,
    )
    console.print(f"digest {card['digest']}", highlight=False)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` to a field and a value: JSON where it parses (``16``, ``[3,3]``),
    a comma list of integers (``3,4,6,3``), else the bare string (``cifar``)."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise SpecError(f"--set expects key=value (e.g. --set num_classes=100), got {text!r}", value=text)
    try:
        return key, json.loads(raw)
    except ValueError:
        pass
    if "," in raw:
        parts = [part.strip() for part in raw.split(",")]
        try:
            return key, [int(part) for part in parts]
        except ValueError:
            return key, parts
    return key, raw


@app.command("build")
def build_command(
    ref: ModelRef,
    assignments: Annotated[
        Optional[list[str]],
        typer.Option(
            "--set",
            "-s",
            help="Change a spec field, e.g. --set stage_depths=5,5,5 --set num_classes=100. Repeatable.",
        ),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Write the spec to this .json file (default: print it).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Write a spec you can edit and feed back to `show`, `build` or the Python API."""
    overrides = dict(parse_assignment(a) for a in assignments or [])
    spec = resolve_spec(ref, **overrides)
    if out is None:
        typer.echo(spec.to_json(indent=2), nl=False)
        return
    write_spec_file(spec, out, overwrite=force)
    console.print(f"wrote {out}  {spec.summary()}  digest {spec.short_digest}", highlight=False)
