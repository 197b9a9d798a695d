"""``reszoo site``: the registry's entries as a static HTML site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reszoo.cli.app import app, console, open_registry


@app.command("site")
def site_command(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder to write the site into (created if missing).", show_default=False),
    ],
) -> None:
    """Write a static HTML site of the registry's entries: a sortable index, a page per entry
    (card, curves, latency, lineage, pull command) and the accuracy-latency chart.

    Plain files that open from disk; run it on the shipped zoo with --registry registry.db.
    """
    from reszoo.errors import RegistryError
    from reszoo.site import write_site

    registry = open_registry(must_exist=True, readonly=True)  # the site only reads: a shipped file stays as it is
    if registry is None:
        raise RegistryError(
            "the local registry does not exist yet: nothing to show (pull an entry first, or give "
            "--registry registry.db for the shipped zoo)"
        )
    with registry:
        files = write_site(registry, out)
    console.print(f"wrote {len(files)} files to {out}; open {out / 'index.html'}", highlight=False, soft_wrap=True)
