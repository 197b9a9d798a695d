"""``reszoo plot``: figures drawn from registry entries (``plot curves`` here;
``plot pareto`` is reszoo.cli.search's)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reszoo.cli.app import app, console, err_console, open_registry
from reszoo.files import FIGURE_SUFFIXES, check_output_file

plot_app = typer.Typer(help="Draw figures from registry entries.", no_args_is_help=True)
app.add_typer(plot_app, name="plot")


@plot_app.command("curves")
def plot_curves_command(
    refs: Annotated[
        list[str],
        typer.Argument(
            help="Trained entries to compare: yours, else the default remote's (the shipped zoo).", show_default=False
        ),
    ],
    out: Annotated[
        str, typer.Option("--out", "-o", help="Image file to write (.png, .svg, .pdf).", show_default=False)
    ],
    title: Annotated[str | None, typer.Option(help="Figure title.")] = None,
) -> None:
    """Training (dashed) and test (bold) error against iterations, as the paper's Figure 6.

    All curves share one recipe: a bare NAME draws its newest version trained
    as the other entries can be (NAME@VERSION picks one).
    """
    from reszoo.errors import EntryNotFoundError, RegistryError
    from reszoo.train.plots import alike, plot_curves
    from reszoo.zoo.hub import remote_url
    from reszoo.zoo.registry import Registry

    check_output_file(out, "--out", suffixes=FIGURE_SUFFIXES)
    # Yours first, then the zoo's. Curves need only the stored history: it is read where it is, nothing is pulled.
    places = [r for r in [open_registry(must_exist=True)] if r is not None]
    try:
        places.append(Registry(remote_url(), readonly=True))
    except RegistryError:
        if not places:
            raise
    requests = []
    for ref in refs:
        pinned = None
        if "@" in ref or ":" in ref:  # name@version or name:alias: that entry, wherever it is first found
            for index, place in enumerate(places):
                try:
                    pinned = place.get(ref)
                    break
                except EntryNotFoundError:
                    if index == len(places) - 1:
                        raise
        name = pinned.name if pinned is not None else ref
        versions: dict[int, Any] = {}
        for place in reversed(places):  # yours win over the zoo's of the same version
            versions.update((e.version, e) for e in place.list(name, all_versions=True) if e.name == name)
        if not versions:
            places[-1].get(ref)  # the zoo's own message, with its suggestions
        requests.append(([versions[v] for v in sorted(versions)], pinned))
    entries = alike(requests)
    older = [
        f"{e.ref} (not {versions[-1].ref})"
        for (versions, pinned), e in zip(requests, entries)
        if pinned is None and e.version != versions[-1].version
    ]
    if older:
        err_console.print(f"drew {', '.join(older)}: the versions trained alike", highlight=False)
    path = plot_curves(entries, out, title=title)
    console.print(f"wrote {path}", highlight=False)
