"""Options that take numbers: each checks its value against a range of
reszoo.limits, so that a bad number is one line naming the flag, the value,
the range and what to do (``--lr inf is not a finite number; give a finite
number above 0 ...``), as the Python API says it for ``lr``.

    lr: Annotated[Optional[float], number_option(LR, "--lr", help="Peak learning rate.")] = None
"""

from __future__ import annotations

from typing import Any

import typer

from reszoo.errors import InputError, ReszooError
from reszoo.limits import Range


class OptionValueError(ReszooError):
    """A number given on the command line outside its range (the message is the
    library's InputError's). Not a ValueError: Typer would wrap that in its own
    message."""

    exit_code = 2


def number_option(range: Range, *flags: str, help: str, **options: Any) -> Any:
    """``typer.Option(*flags, ...)`` for a number in ``range``; the help ends with the range."""
    name = max(flags, key=len)

    def parse(text: Any) -> int | float:
        try:
            return range.parse(text, name) if isinstance(text, str) else range.check(text, name)
        except InputError as exc:
            raise OptionValueError(str(exc)) from None

    return typer.Option(*flags, parser=parse, help=f"{help} [{range.notation()}]", **options)
