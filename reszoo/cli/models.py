"""``reszoo list``, ``reszoo show`` and ``reszoo build``: architectures, presets and model cards.

(About 400 lines, most of them the Rich layout of the listing and the card.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from reszoo.cli.app import app, console, err_console, open_registry
from reszoo.cli.options import number_option
from reszoo.cli.render import NOISY_NOTE, latency_row, print_json
from reszoo.errors import EntryNotFoundError, InputError, SpecError
from reszoo.limits import BATCH, FRACTION, LATENCY_MS
from reszoo.zoo.facts import entry_facts, history_cell, human_count, shown_history
from reszoo.zoo.presets import get_spec, list_presets, natural_key
from reszoo.zoo.records import EntryRecord, LatencyRecord
from reszoo.zoo.spec import STEM_STRIDE, ArchSpec, write_spec_file

if TYPE_CHECKING:
    from reszoo.zoo.registry import Registry

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
ModelRef = Annotated[
    str, typer.Argument(help="A preset name (see `reszoo list`) or a spec .json file.", show_default=False)
]


def looks_like_spec_file(ref: str) -> bool:
    from reszoo.zoo.factory import looks_like_spec_file as check

    return check(ref)


def _ref_name(ref: str) -> str | None:
    """The preset name a reference stands for; a spec file has none."""
    return None if looks_like_spec_file(ref) else ref


def _latency_text(median: float | None) -> str:
    return "" if median is None else f"{median:.3g} ms"


@app.command("list")
def list_command(
    pattern: Annotated[str, typer.Argument(help="Shell-style name pattern, e.g. 'resnet*'.")] = "*",
    family: Annotated[
        str | None, typer.Option("--family", "-f", help="Only this family: residual, plain or highway.")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Only entries trained on this data set.")] = None,
    min_top1: Annotated[
        float | None,
        number_option(FRACTION, "--min-top1", help="Only entries with at least this top-1 (a fraction: 0.9 for 90%)."),
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        number_option(
            LATENCY_MS, "--max-latency-ms", help="Only entries measured at or under this latency on --device."
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="Device whose stored latency to show and filter on: cpu, cuda, or part of a stored name (h100)."
        ),
    ] = None,
    batch_size: Annotated[int, number_option(BATCH, "--batch-size", help="Batch size of the latency to use.")] = 1,
    runtime: Annotated[
        str | None, typer.Option(help="Runtime of the latency (eager, graph, compile, onnxruntime); default any.")
    ] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions", help="Every version, not only the latest.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List preset architectures and the registry's trained entries.

    Entry filters (--dataset, --min-top1, --max-latency-ms) leave the presets out.
    """
    from reszoo.zoo.describe import spec_row

    entry_filters = any(v is not None for v in (dataset, min_top1, max_latency_ms))
    names = [] if entry_filters else list_presets(pattern, family=family)
    rows = [{"kind": "preset", **spec_row(get_spec(name), name)} for name in names]
    registry = open_registry(must_exist=True)
    if device and registry is not None:
        try:  # "cpu" -> this machine's stored name; "h200" -> the one stored GPU name holding it
            device = registry.latency_device(device)
        except EntryNotFoundError as exc:
            if max_latency_ms is not None:
                raise  # a latency filter on a device with none stored would list nothing
            err_console.print(f"note: {exc}; listed without latency", highlight=False)
            device = None
    records = (
        registry.list(
            pattern,
            family=family,
            dataset=dataset,
            min_top1=min_top1,
            max_latency_ms=max_latency_ms,
            device=device,
            batch_size=batch_size,
            runtime=runtime,
            all_versions=all_versions,
        )
        if registry is not None
        else []
    )
    latency = registry.best_latency(device, batch_size=batch_size, runtime=runtime) if registry and device else {}
    records.sort(key=lambda r: (natural_key(r.name), r.version))
    entry_rows = [entry_row(r, latency.get(r.arch_digest)) for r in records]
    if as_json:
        print_json(rows + entry_rows)
        return
    if not rows and not entry_rows:
        err_console.print(f"no models match {pattern!r}" + (f" in family {family!r}" if family else ""))
        return
    if rows:
        table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
        for column in ("name", "family", "block", "stem", "shortcut", "depth", "params", "MACs"):
            table.add_column(column, justify="right" if column in ("depth", "params", "MACs") else "left", no_wrap=True)
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
    if entry_rows and registry is not None:  # entries come from a registry
        # The device goes in the title, not a header: a CPU's name is longer than the rest of a row,
        # and a header that wide cut the entry names ("resnet20…") at 80 columns.
        # A long registry path folds rather than ending in "...".
        console.print(
            f"trained entries in {registry.display_url}"
            + (f"; latency: batch {batch_size} on {device}" if device else ""),
            overflow="fold",
            highlight=False,
        )
        table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
        columns = ["entry", "family", "depth", "params", "dataset", "top-1"] + (["latency"] if device else [])
        for column in columns:
            # Names and versions fold rather than lose their "@1"; the other columns are short.
            table.add_column(
                column,
                justify="left" if column in ("entry", "family", "dataset") else "right",
                no_wrap=column != "entry",
                overflow="fold",
            )
        for row in entry_rows:
            cells = [
                row["ref"] + "".join(f" :{a}" for a in row["aliases"]),
                row["family"],
                str(row["depth"]),
                human_count(row["params"]),
                row["dataset"] or "",
                "" if row["top1"] is None else f"{100 * row['top1']:.2f}%",
            ]
            if device:
                cells.append(_latency_text(row["latency_ms"]))
            table.add_row(*cells)
        console.print(table)


def entry_row(record: EntryRecord, latency_ms: float | None = None) -> dict[str, Any]:
    spec = record.spec
    return {
        "kind": "entry",
        "name": record.name,
        "version": record.version,
        "ref": record.ref,
        "aliases": list(record.aliases),
        "family": spec.family,
        "block": spec.block,
        "stem": spec.stem,
        "shortcut": spec.shortcut,
        "depth": spec.depth,
        "params": record.params,
        "macs": record.macs,
        "dataset": record.dataset,
        "top1": record.top1,
        "latency_ms": latency_ms,
        "digest": record.arch_digest,
        "blob_sha256": record.blob_sha256,
    }


@app.command("show")
def show_command(
    ref: ModelRef,
    arch: Annotated[
        bool,
        typer.Option(
            "--arch", help="Show the preset's (or spec file's) architecture card even where an entry has that name."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a registry entry's model card, or an architecture: spec, stages, params, MACs, digest."""
    from reszoo.zoo.describe import spec_card
    from reszoo.zoo.factory import resolve_spec

    registry = None if looks_like_spec_file(ref) else open_registry(must_exist=True)
    if registry is None and not arch and any(ch in ref for ch in "@:") and not looks_like_spec_file(ref):
        raise EntryNotFoundError(
            f"no entry {ref!r}: you have no registry yet; reszoo pull {ref} fetches it from the "
            "remote (the zoo by default)"
        )
    if registry is not None and not arch:
        try:
            record = registry.verify(ref)  # what is shown is what load, export and pull would accept
        except (EntryNotFoundError, InputError):
            if any(ch in ref for ch in "@:"):
                raise  # only entries have versions and aliases
        else:
            show_entry(registry, record, as_json)
            return
    spec = resolve_spec(ref)
    card = spec_card(spec, _ref_name(ref))
    latency = registry.latency(spec.digest) if registry is not None else []
    if as_json:
        print_json({**card, "latency": [latency_row(r) for r in latency]})
        return
    show_spec(spec, card, ref)
    if latency:
        console.print(latency_table(latency))


def latency_table(records: list[LatencyRecord]) -> Table:
    table = Table(title="latency", title_justify="left", box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for column in ("device", "runtime", "batch", "dtype", "median", "p90", "samples"):
        table.add_column(column, justify="left" if column in ("device", "runtime", "dtype") else "right")
    for r in records:
        table.add_row(
            r.device,
            r.runtime,
            str(r.batch_size),
            r.dtype,
            f"{r.median_ms:.3f} ms",
            f"{r.p90_ms:.3f} ms" + (" noisy" if r.noisy else ""),
            str(r.samples),
        )
    if any(r.noisy for r in records):
        table.caption = NOISY_NOTE
        table.caption_justify = "left"
    return table


def show_spec(spec: ArchSpec, card: dict[str, Any], ref: str) -> None:
    from reszoo.zoo.describe import stage_rows

    console.print(f"[bold]{card['name'] or ref}[/]  {card['summary']}", highlight=False)
    stages = Table(box=None, padding=(0, 2))
    for column in ("stage", "blocks", "width", "out channels", "stride", "output size"):
        stages.add_column(column, justify="right")
    stem_size = spec.stem_output_size()
    stages.add_row(
        "stem", "", str(spec.stem_width), str(spec.stem_width), str(STEM_STRIDE[spec.stem]), f"{stem_size}x{stem_size}"
    )
    for row in stage_rows(spec):
        size = row["output_size"]
        stages.add_row(
            str(row["stage"]),
            str(row["blocks"]),
            str(row["width"]),
            str(row["out_channels"]),
            str(row["stride"]),
            f"{size}x{size}",
        )
    console.print(stages)
    console.print(
        f"params {card['params']:,} ({human_count(card['params'])})   "
        f"MACs {card['macs']:,} ({human_count(card['macs'])}) at batch 1",
        highlight=False,
    )
    console.print(f"digest {card['digest']}", highlight=False, soft_wrap=True)


def show_entry(registry: Registry, record: EntryRecord, as_json: bool) -> None:
    """The card of an entry that ``Registry.verify`` returned."""
    latency = registry.latency(record.arch_digest)
    verified = {"weights": True, "architecture": True, "record": registry.record_digests}
    if as_json:
        print_json(
            {"kind": "entry", **record.to_dict(), "verified": verified, "latency": [latency_row(r) for r in latency]}
        )
        return
    aliases = "".join(f" :{a}" for a in record.aliases)
    console.print(f"[bold]{record.ref}[/]{aliases}  {record.spec.summary()}", highlight=False)
    facts = Table(box=None, show_header=False, padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in entry_facts(record):
        facts.add_row(label, value)
    console.print(facts)
    # Digests on lines of their own, never wrapped: people copy them.
    console.print(f"weights sha256 {record.blob_sha256}", highlight=False, soft_wrap=True)
    console.print(f"architecture   {record.arch_digest}", highlight=False, soft_wrap=True)
    console.print(
        "verified       "
        + (
            "weights, architecture and the entry's record digest"
            if verified["record"]
            else "weights and architecture only: this registry's schema predates record "
            "digests, so the entry's links and metrics were not checked (its first "
            "write adds them)"
        ),
        highlight=False,
    )
    if record.history:
        history = Table(
            title="history", title_justify="left", box=None, padding=(0, 1), pad_edge=False, header_style="bold"
        )
        keys = list(dict.fromkeys(k for epoch in record.history for k in epoch))
        for key in keys:
            history.add_column(key, justify="right")
        for epoch in shown_history(record.history):
            history.add_row(*(history_cell(epoch.get(k)) for k in keys))
        console.print(history)
    if latency:
        console.print(latency_table(latency))


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
        return key, [int(part) if part.lstrip("-").isdigit() else part for part in parts]
    return key, raw


@app.command("build")
def build_command(
    ref: ModelRef,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="Change a spec field, e.g. --set stage_depths=5,5,5 --set num_classes=100. Repeatable.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the spec to this .json file (default: print it).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Write a spec you can edit and feed back to `show`, `build` or the Python API."""
    from reszoo.zoo.factory import resolve_spec

    overrides = dict(parse_assignment(a) for a in assignments or [])
    spec = resolve_spec(ref, **overrides)
    if out is None:
        typer.echo(spec.to_json(indent=2), nl=False)
        return
    write_spec_file(spec, out, overwrite=force)
    console.print(f"wrote {out}  {spec.summary()}  digest {spec.short_digest}", highlight=False)
