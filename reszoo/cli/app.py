"""The root ``reszoo`` command: global options, error rendering, exit codes.

Commands raise the library's ``ReszooError``s; this module alone turns them
into a one-line message on stderr and the error's exit code, so a traceback
only ever means a bug.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from reszoo.errors import ReszooError

#: Tables and results go to stdout, diagnostics to stderr.
console = Console()
err_console = Console(stderr=True)


class _ReszooGroup(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ReszooError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_ReszooGroup,
    name="reszoo",
    help="A model zoo and architecture search for residual, plain and highway networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        import timm
        import torch

        from reszoo import __version__

        console.print(f"reszoo {__version__} (torch {torch.__version__}, timm {timm.__version__})", highlight=False)
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """A model zoo and architecture search for residual, plain and highway networks.

    Start with `reszoo list`, then `reszoo show resnet56`.
    """


# Commands register themselves on `app` when their module is imported.
from reszoo.cli import models  # noqa: E402,F401


def main() -> None:
    app()
