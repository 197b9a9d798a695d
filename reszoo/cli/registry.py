"""``reszoo pull/publish/tag/rm/import/export``: moving trained weights around."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from reszoo.cli.app import app, console, err_console, open_registry
from reszoo.errors import RemoteUnavailableError
from reszoo.zoo.records import EntryRecord

Ref = Annotated[str, typer.Argument(help="An entry: NAME (latest), NAME@VERSION or NAME:ALIAS.", show_default=False)]
RemoteOption = Annotated[
    str | None,
    typer.Option(
        "--remote", help="Remote registry URL or SQLite file (default: $RESZOO_REMOTE, else the shipped registry.db)."
    ),
]


@contextmanager
def blob_progress(description: str) -> Iterator:
    """A Rich progress bar for the weights being verified, on stderr."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def describe(record: EntryRecord) -> str:
    return f"{record.ref} ({record.blob_size / 1e6:.1f} MB, sha256 {record.blob_sha256[:12]})"


@app.command("pull")
def pull_command(ref: Ref, remote: RemoteOption = None) -> None:
    """Copy an entry from a remote registry into yours (checksummed; repeatable)."""
    from reszoo.zoo.hub import remote_url
    from reszoo.zoo.registry import Registry

    source = Registry(remote_url(remote), readonly=True)  # reached before the local registry is touched
    local = open_registry()
    with blob_progress(f"pull {ref}") as progress:
        record = local.pull(ref, source, progress=progress)
    console.print(f"pulled {describe(record)} from {source.display_url}", highlight=False)


@app.command("publish")
def publish_command(
    ref: Ref,
    remote: RemoteOption = None,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="Version number on the remote (default: the local one).")
    ] = None,
    create: Annotated[
        bool, typer.Option("--create", help="Create the remote SQLite file if it does not exist yet.")
    ] = False,
) -> None:
    """Copy an entry from your registry to a remote one; refuses to replace other content."""
    from reszoo.zoo.hub import remote_url
    from reszoo.zoo.registry import Registry

    local = open_registry()
    local.get(ref)  # a bad reference fails before the remote is opened
    url = remote_url(remote)
    try:
        target = Registry(url, create=create)
    except RemoteUnavailableError as exc:
        if "does not exist" not in str(exc):
            raise
        # The rule: a remote is never created by accident (a typo would publish into a new file);
        # your own registry is created on first use.
        raise RemoteUnavailableError(f"{exc}; add --create to start a new SQLite registry there") from None
    with blob_progress(f"publish {ref}") as progress:
        record = local.publish(ref, target, version=version, progress=progress)
    console.print(f"published {describe(record)} to {target.display_url}", highlight=False)


@app.command("tag")
def tag_command(
    ref: Ref, alias: Annotated[str, typer.Argument(help="Alias to point at REF, e.g. best.", show_default=False)]
) -> None:
    """Point NAME:ALIAS at an entry (moves the alias if it exists)."""
    record = open_registry().tag(ref, alias)
    console.print(f"{record.name}:{alias} -> {record.ref}", highlight=False)


@app.command("rm")
def remove_command(
    ref: Ref, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False
) -> None:
    """Remove one entry (and its weights, if no other entry shares them)."""
    registry = open_registry()
    target = registry.resolve(ref)  # not read: a damaged or tampered entry can be removed
    if not yes:
        typer.confirm(f"remove {target} from {registry.display_url}?", abort=True, err=True)
    registry.remove(target)
    console.print(f"removed {target}", highlight=False)


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="Weights in .safetensors format.", show_default=False)],
    arch: Annotated[
        str,
        typer.Option(
            "--arch",
            help="Architecture: a preset name, a spec .json file, or an entry whose architecture the weights have.",
            show_default=False,
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="Entry name to create.", show_default=False)],
    dataset: Annotated[str | None, typer.Option(help="Data set the weights were trained on.")] = None,
    top1: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Top-1 accuracy as a fraction (0.91) on the test split.")
    ] = None,
    notes: Annotated[str | None, typer.Option(help="Free text kept with the entry.")] = None,
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="Let --name be a public zoo name (resnet20) in your local registry: "
            "reszoo.load(NAME) then gives this entry, not the zoo's.",
        ),
    ] = False,
) -> None:
    """Add a safetensors weights file as a new entry (pickle files are refused).

    The same weights imported again under the same name add nothing: the
    entry that holds them is named instead.
    """
    from reszoo.zoo import weights as W
    from reszoo.zoo.factory import resolve_arch

    registry = open_registry()
    spec = resolve_arch(arch, registry)  # the rule every architecture argument follows
    state_dict = W.read_weights_file(file)
    same = registry.holding(name, spec, state_dict)  # refuses a name that is no entry name
    if same is not None:
        console.print(
            f"{same.ref} already holds these weights (sha256 {same.blob_sha256[:12]}); nothing added", highlight=False
        )
        return
    metrics = {"top1": top1} if top1 is not None else None
    record = registry.add(name, state_dict, spec, dataset=dataset, metrics=metrics, notes=notes, shadow=shadow)
    console.print(f"imported {describe(record)}", highlight=False)


@app.command("export")
def export_command(
    ref: Ref,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="The .safetensors file, hf folder or .onnx file to write.", show_default=False
        ),
    ],
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="safetensors, hf (a Hugging Face Hub folder: weights, "
            "config.json, model card) or onnx (dynamic batch size, "
            "checked against eager; needs reszoo\\[onnx]).",
        ),
    ] = "safetensors",
) -> None:
    """Write an entry's weights to a safetensors file, byte for byte as stored; or the
    entry as a Hugging Face model folder or an ONNX file."""
    if fmt != "safetensors":
        from reszoo.cli.export import export_as

        export_as(ref, out, fmt, force=force)
        return
    registry = open_registry()
    record = registry.get(ref)
    registry.export(record.ref, out, overwrite=force)
    console.print(f"wrote {out}  {describe(record)}", highlight=False)
