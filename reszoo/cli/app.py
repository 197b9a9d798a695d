"""The root ``reszoo`` command: global options, error rendering, exit codes.

Commands raise the library's ``ReszooError``s; this module alone turns them
into a one-line message on stderr and the error's exit code, so a traceback
only ever means a bug.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, Optional, Protocol, cast, overload

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from reszoo.errors import RegistryError, ReszooError

if TYPE_CHECKING:
    from reszoo.zoo.registry import Registry

# Command modules import torch, SQLAlchemy, Optuna and matplotlib inside their
# commands, not at the top: `reszoo --help` and shell completion then start in
# a fraction of a second (the app itself imports only Typer and Rich).

#: Tables and results go to stdout, diagnostics to stderr.
console = Console()
err_console = Console(stderr=True)


# Typer raises click's usage errors, from its own copy of click since 0.26: the classes
# come from whichever click the running Typer uses.
_UsageError: type[Exception] = typer.BadParameter.__mro__[1]
_NoArgsIsHelp = getattr(sys.modules[_UsageError.__module__], "NoArgsIsHelpError", ())


class _UsageErrorFields(Protocol):
    """What this module reads off a click usage error (of whichever click Typer uses)."""

    exit_code: int

    def format_message(self) -> str: ...


class _ReszooGroup(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # `reszoo pull x --registry r.db` means what `reszoo --registry r.db pull x` does: the one
        # global option is accepted after the command too (no command has an option of that name).
        state.argv = list(args)  # as typed: an interrupted command prints the one that resumes it
        moved: list[str] = []
        rest: list[str] = []
        index = 0
        while index < len(args):
            arg = args[index]
            if arg == "--":
                rest += args[index:]
                break
            if arg.startswith("--registry="):
                moved.append(arg)
            elif arg == "--registry" and index + 1 < len(args):
                moved += [arg, args[index + 1]]
                index += 1
            else:
                rest.append(arg)
            index += 1
        return super().parse_args(ctx, moved + rest)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ReszooError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except _UsageError as raised:
            if isinstance(raised, _NoArgsIsHelp):
                raise  # Typer prints the help
            usage = cast(_UsageErrorFields, raised)
            # One line, as reszoo's own errors, instead of Typer's five-line box.
            context = getattr(usage, "ctx", None)
            path = context.command_path.split()[1:] if context is not None else []
            listed = "commands" if context is not None and hasattr(context.command, "commands") else "options"
            err_console.print(
                f"[bold red]error:[/] {escape(usage.format_message())} ({shlex.join(['reszoo', *path])} "
                f"-h lists the {listed})",
                soft_wrap=True,
                highlight=False,
            )
            raise typer.Exit(usage.exit_code) from None


app = typer.Typer(
    cls=_ReszooGroup,
    name="reszoo",
    help="A model zoo and architecture search for residual, plain and highway networks.",
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        import timm
        import torch

        from reszoo import __version__

        console.print(f"reszoo {__version__} (torch {torch.__version__}, timm {timm.__version__})", highlight=False)
        raise typer.Exit()


class _State:
    """Global options, set by the root callback for the command that runs."""

    registry_url: str | None = None
    argv: list[str] = []


state = _State()


def command_line(*, drop: tuple[str, ...] = (), add: tuple[str, ...] = ()) -> str:
    """The command that is running, as the user can type it again: without the
    flags in ``drop``, with those in ``add`` that it lacks."""
    args = [arg for arg in state.argv if arg not in drop]
    return shlex.join(["reszoo", *args, *(flag for flag in add if flag not in args)])


def interrupted(done: str, again: str | None) -> NoReturn:
    """Ctrl-C: say what was done and the command that carries on, then exit 130 (128 + SIGINT)."""
    err_console.print(f"[bold yellow]interrupted:[/] {escape(done)}", soft_wrap=True, highlight=False)
    if again:
        err_console.print(f"to carry on: {escape(again)}", soft_wrap=True, highlight=False)
    raise typer.Exit(130)


@overload
def open_registry(*, must_exist: Literal[False] = False, readonly: bool = False) -> Registry: ...
@overload
def open_registry(*, must_exist: bool, readonly: bool = False) -> Registry | None: ...
def open_registry(*, must_exist: bool = False, readonly: bool = False) -> Registry | None:
    """The registry commands act on: --registry, else the local one.

    With ``must_exist``, ``None`` when the local SQLite file is not there yet,
    so that read-only commands never create it; with ``readonly``, opened so
    that nothing is written to it (a shipped file stays byte for byte).
    """
    from reszoo.zoo.hub import local_registry, local_url

    url = state.registry_url or local_url()
    if "://" not in url and Path(url).is_dir():
        raise RegistryError(f"registry {url} is a folder; give a registry file such as {Path(url) / 'registry.db'}")
    if must_exist and "://" not in url and not Path(url).is_file():
        if state.registry_url:
            raise RegistryError(f"registry {url} does not exist")
        return None
    if readonly:
        from reszoo.zoo.registry import Registry

        return Registry(url, readonly=True)
    return local_registry(state.registry_url)


@app.callback()
def root(
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            envvar="RESZOO_REGISTRY",
            help="Registry to use: a SQLAlchemy URL or a SQLite file. Default: $RESZOO_HOME/registry.db "
            "($RESZOO_HOME defaults to ~/.cache/reszoo).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """A model zoo and architecture search for residual, plain and highway networks.

    Start with `reszoo list`, then `reszoo show resnet56` or `reszoo pull resnet56`.
    """
    state.registry_url = registry


# Commands register themselves on `app` when their module is imported, and `reszoo --help`
# lists them in that order (groups such as `plot` after the commands): not sorted.
# isort: off
import reszoo.cli.bench
import reszoo.cli.models
import reszoo.cli.registry
import reszoo.cli.release
import reszoo.cli.train
import reszoo.cli.plot
import reszoo.cli.search
import reszoo.cli.site
# isort: on


def main() -> None:
    app()
