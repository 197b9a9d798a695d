"""The ranges of the numbers users give, in one place.

The CLI's option types (reszoo.cli.options) and the Python API check a value
against the same :class:`Range`, so both refuse the same values with the same
one-line message: the value, the range and what to do. Bounds lie far past any
real use; they are there so that a typo is refused at once, not after an hour
of training, a terabyte allocation or a process per core a thousand times over.

Importing this module costs nothing (no torch): the CLI builds its option types
from it at start-up.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass

from reszoo.errors import InputError

#: Images in one forward pass or training step. 65,536 CIFAR images in float32
#: are 0.8 GB of input alone; an ImageNet-sized batch of this many is 39 GB.
MAX_BATCH = 65_536


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity: taskset and cpusets count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Range:
    """A closed or half-open interval a number must lie in.

    Args:
        high: The upper bound, or a function giving it (the cores of this machine).
        integer: Whole numbers only (``True`` and ``False`` are never numbers here).
        hint: What to do, after the range (``"the paper's recipe uses 0.1"``).
    """

    low: float
    high: float | Callable[[], float]
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    hint: str = ""

    @property
    def upper(self) -> float:
        return self.high() if callable(self.high) else self.high

    def describe(self) -> str:
        """``a whole number from 1 to 65,536``, ``a finite number above 0``."""
        low, high = _number_text(self.low), _number_text(self.upper)
        kind = "a whole number" if self.integer else "a number"
        if math.isinf(self.upper):
            return (
                f"{'a finite number' if not self.integer else kind} {'above' if self.low_open else 'of at least'} {low}"
            )
        lower = f"above {low}" if self.low_open else (f"at least {low}" if self.high_open else f"from {low}")
        upper = f"below {high}" if self.high_open else (f"at most {high}" if self.low_open else f"to {high}")
        joint = " and " if self.low_open or self.high_open else " "
        return f"{kind} {lower}{joint}{upper}"

    def notation(self) -> str:
        """``1<=x<=65,536``, ``0<x``: for help texts."""
        upper = "" if math.isinf(self.upper) else f"{'<' if self.high_open else '<='}{_number_text(self.upper)}"
        return f"{_number_text(self.low)}{'<' if self.low_open else '<='}x{upper}"

    def contains(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.upper if self.high_open else value <= self.upper
        return above and below

    def check(self, value: object, name: str, *, shown: str | None = None) -> int | float:
        """``value`` as an int (``integer``) or float inside the range, else an
        InputError naming ``name``, the value (as ``shown``, if given), the range
        and what to do."""
        wanted = f"give {self.describe()}" + (f" ({self.hint})" if self.hint else "")
        given = shown if shown is not None else _value_text(value)

        def refuse(problem: str) -> InputError:
            return InputError(f"{name} {given} {problem}; {wanted}", field=name, value=value)

        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise refuse("is not a number")
        number: int | float
        if self.integer:
            if not isinstance(value, numbers.Integral):
                raise refuse("is not a whole number")
            number = int(value)
        else:
            number = float(value)
        if not self.integer and not math.isfinite(number):
            raise refuse("is not a finite number")
        if not self.contains(number):
            raise refuse("is out of range")
        return number

    def parse(self, text: str, name: str) -> int | float:
        """A command-line string checked as :meth:`check` does (``inf``, ``nan``,
        ``1e400`` and 5,000-digit integers included); the message shows ``text``."""
        stripped = text.strip()
        shown = stripped if stripped and stripped.isprintable() and " " not in stripped else repr(text)
        value: object = text
        for convert in (int, float) if self.integer else (float,):
            try:
                value = convert(stripped)
                break
            except ValueError:
                # More digits than Python converts (4,300): far out of range anyway.
                if convert is int and stripped.lstrip("+-").replace("_", "").isdigit():
                    value = -(10**999) if stripped.startswith("-") else 10**999
                    break
        return self.check(value, name, shown=shown if len(shown) <= 40 else shown[:37] + "...")


def _number_text(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:g}"


def _value_text(value: object) -> str:
    """The value as the user gave it, cut to one short line."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value).bit_length() > 128:
        return f"(a whole number of {int(value).bit_length()} bits)"  # str() refuses over 4,300 digits
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------- the ranges
#
# Every count and number a command or the API takes, with why its bounds are where they are.

#: Seeds of initialisation, data order, augmentation and sampling. Optuna's
#: samplers take numpy seeds below 2**32, a search adds each worker's index to
#: its seed, and the augmentation mixes seed, epoch and stream into one 64-bit
#: torch seed: 2**31 - 1 leaves room for all three.
SEED = Range(0, 2**31 - 1, integer=True, hint="each picks one run; the default is 0")
#: Learning rates (peak and warm-up): positive and finite. No upper bound: a rate too
#: large stops the run at its first non-finite loss, with its own message, and a search
#: test drives a trial into divergence that way on purpose.
LR = Range(0, math.inf, low_open=True, hint="the paper's recipe uses 0.1, its resnet110 warm-up 0.01")
#: Images in a step or forward pass.
BATCH = Range(1, MAX_BATCH, integer=True, hint="the paper's recipe uses 128")
#: Training length. 10 million steps is 150 times the paper's 64,000 iterations.
EPOCHS = Range(1, 100_000, integer=True, hint="the short recipe trains 15")
ITERATIONS = Range(1, 10_000_000, integer=True, hint="the paper trains 64,000")
#: How often something happens, in epochs or steps (checkpoints, progress reports).
EVERY = Range(1, 10_000_000, integer=True, hint="1 is every one")
#: Images of a training or test subset (a data set has at most so many; 10 gives each class one).
SUBSET = Range(10, 1_000_000_000, integer=True, hint="leave it out to use the whole split")
#: CPU threads of one process: more than the cores it may use only adds contention.
THREADS = Range(1, usable_cores, integer=True, hint="the cores this process may use; 1 per process when several share")
#: Processes that each get their own cores (release jobs on a CPU).
CPU_PROCESSES = Range(1, usable_cores, integer=True, hint="one per core this process may use")
#: Nets a release trains at once, as a command line takes it (build_release then bounds
#: it by CPU_PROCESSES on a CPU, STREAMS on a GPU).
JOBS = Range(1, 64, integer=True, hint="on a CPU at most one per core; on a GPU 4 is the default")
#: Latency limits and filters, in milliseconds: an hour a forward pass is past any net.
LATENCY_MS = Range(0, 3_600_000, low_open=True, hint="e.g. 2.5")
#: Fractions such as top-1 accuracy.
FRACTION = Range(0, 1, hint="a fraction: 0.9 for 90%")
#: Random specs a --build-table run times besides the named ones.
RANDOM_SPECS = Range(0, 10_000, integer=True, hint="each takes about a second to time")
#: CUDA streams that train nets side by side in one process (4 fill an H100 with CIFAR nets).
STREAMS = Range(1, 64, integer=True, hint="4 is the default on a GPU")
#: Recipe fields (a recipe is data, and is checked as it is made).
MOMENTUM = Range(0, 1, hint="the paper uses 0.9")
WEIGHT_DECAY = Range(0, 1, hint="the paper uses 1e-4")
LABEL_SMOOTHING = Range(0, 1, high_open=True, hint="the short recipe uses 0.1")
GAMMA = Range(0, 1, hint="the paper divides by 10: 0.1")
PCT_START = Range(0, 1, hint="the short recipe rises for 0.25 of the run")
MILESTONE = Range(0, 1, low_open=True, high_open=True, hint="fractions of the run: the paper's are 0.5 and 0.75")
CROP_PADDING = Range(0, 64, integer=True, hint="the paper pads 4 pixels; 0 turns crops off")


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` as a whole number torch, numpy and Optuna all accept (see :data:`SEED`)."""
    return int(SEED.check(seed, name))


#: The search trains only nets within this many times the MACs of the references (1: none
#: larger than the largest reference); "none" lifts the bound.
MACS_BUDGET = Range(1, 1000, hint="1.5 keeps the proxy's cost near the references'; 'none' lifts the bound")
#: The default: a proxy run then costs at most about 1.5x the references' (training time follows
#: the MACs), while the nets a latency limit set by the references admits are mostly within it.
DEFAULT_MACS_BUDGET = 1.5
