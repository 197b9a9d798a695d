"""The one exception tree of reszoo.

Library code raises these; only the CLI turns them into messages and exit
codes (``exit_code`` below), so a Python caller can catch ``ReszooError`` and
get every failure reszoo knows how to describe.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ReszooError(Exception):
    """Base of every error reszoo raises on purpose."""

    #: Process exit status the CLI uses for this error.
    exit_code: int = 1


class InputError(ReszooError, ValueError):
    """A value given to a command or function that is not usable: an option out
    of range, a bad name, version or reference, registry metadata, a training or
    search setting, an output path in a missing folder (SpecError below: a bad
    architecture spec). The message names the value, what was expected and what
    to do.

    Attributes:
        field: The argument or option at fault, where there is one.
        value: The offending value.
    """

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class SpecError(InputError):
    """An architecture spec is invalid (a spec is one kind of input).

    Attributes:
        field: The spec field at fault (``"stage_depths"``), or ``None`` when the
            problem is the spec as a whole (e.g. malformed JSON).
        value: The offending value.
    """


class UnknownModelError(ReszooError, LookupError):
    """A model name matches no preset; carries close matches to suggest."""

    exit_code = 2

    def __init__(self, name: str, known: Iterable[str], *, hint: str = "reszoo list") -> None:
        self.name = name
        self.suggestions = suggest(name, known)
        message = f"unknown model {name!r}"
        if self.suggestions:
            quoted = [repr(s) for s in self.suggestions]
            choices = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
            message += f"; did you mean {choices}?"
        message += f" ({hint} shows every name)"
        super().__init__(message)

    def __str__(self) -> str:  # LookupError would repr() the message otherwise
        return self.args[0]


class SpecFileError(ReszooError, OSError):
    """A spec file cannot be read, parsed or written."""

    exit_code = 2


def suggest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Close matches of ``word`` among ``candidates``, best first."""
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)


class RegistryError(ReszooError):
    """A registry cannot be opened or used (not a database, schema too new, ...)."""


class EntryNotFoundError(ReszooError, LookupError):
    """A reference (``name``, ``name@version``, ``name:alias``) matches no entry."""

    exit_code = 2

    def __str__(self) -> str:  # LookupError would repr() the message otherwise
        return self.args[0]


class ConflictError(ReszooError):
    """The target already holds something else under that name (``name@version``, alias)."""


class IntegrityError(ReszooError):
    """Stored or transferred bytes do not match their sha256: nothing was loaded or copied."""


class WeightsError(ReszooError):
    """Weights that cannot be accepted: pickle files, non-finite values, a state_dict
    that does not fit the architecture. Nothing is written."""

    exit_code = 2


class RemoteUnavailableError(RegistryError):
    """A remote registry cannot be reached; the local registry was not touched."""


class DeviceError(ReszooError):
    """A device or runtime that is not there or cannot do what was asked
    (``cuda`` on a machine without one, CUDA graphs on a CPU)."""

    exit_code = 2


class MeasurementError(ReszooError):
    """A latency measurement failed (out of memory, a compile error); nothing was stored."""


class DatasetError(ReszooError):
    """A data set is missing or malformed; the message names the file and what was expected."""

    exit_code = 2


class TrainingError(ReszooError):
    """Training stopped: a non-finite loss, or a checkpoint that does not fit the run."""


class SearchError(ReszooError):
    """A search cannot run or gave nothing usable: a study resumed with other
    settings, an unreachable study storage, no feasible trial."""


class ManifestError(ReszooError):
    """A zoo manifest (``zoo.toml``) that cannot be read or names something wrong;
    the message names the key and what it takes. Nothing was trained or written."""

    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a long run (a release) once all it had written was whole; the
    message says what it had done. A KeyboardInterrupt, not a ReszooError, so that
    code which knows nothing of it stops as on any Ctrl-C."""
