"""Training recipes as data: optimiser, schedule, augmentation, every number with its unit."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from reszoo.errors import InputError
from reszoo.limits import (
    BATCH,
    CROP_PADDING,
    EPOCHS,
    GAMMA,
    ITERATIONS,
    LABEL_SMOOTHING,
    LR,
    MILESTONE,
    MOMENTUM,
    PCT_START,
    WEIGHT_DECAY,
    Range,
)

#: Every number of a recipe and its range (reszoo.limits says why each lies where it does).
_RANGES = {
    "batch_size": BATCH,
    "lr": LR,
    "momentum": MOMENTUM,
    "weight_decay": WEIGHT_DECAY,
    "label_smoothing": LABEL_SMOOTHING,
    "gamma": GAMMA,
    "warmup_lr": LR,
    "pct_start": PCT_START,
    "epochs": EPOCHS,
    "iterations": ITERATIONS,
    "crop_padding": CROP_PADDING,
}
_OPTIONAL = {"warmup_lr", "epochs", "iterations"}  # None: no warm-up; length set by the other
#: The warm-up ends once the training error falls below this: -1 never ends it, above 1 ends it at once.
WARMUP_UNTIL_ERROR = Range(-1, 2, hint="the paper's resnet110 warm-up ends below 0.8")


@dataclass(frozen=True)
class Recipe:
    """How to train: SGD with momentum and a learning-rate schedule.

    A run lasts ``iterations`` steps, or ``epochs`` passes when ``iterations``
    is ``None``. ``milestones`` are fractions of the run (the paper's 32k and
    48k of 64k iterations are 0.5 and 0.75), so a shortened run keeps the shape.
    """

    name: str
    batch_size: int = 128  # images per step
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4  # L2, per step
    decay_norm_and_bias: bool = True  # False: no weight decay on BN parameters and biases
    label_smoothing: float = 0.0
    schedule: str = "step"  # "step": lr * gamma at each milestone; "onecycle": linear up, then linear down
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of the run
    gamma: float = 0.1
    warmup_lr: float | None = None  # the paper's resnet110 warm-up: this lr ...
    warmup_until_error: float = 0.8  # ... until the training error falls below this
    pct_start: float = 0.25  # onecycle: fraction of the run spent rising
    epochs: int | None = None
    iterations: int | None = 64_000
    crop_padding: int = 4  # pixels of zero padding for random crops; 0 disables
    flip: bool = True  # random horizontal flips

    def __post_init__(self) -> None:
        # A recipe is checked as it is made (from the CLI, the API, a manifest or a stored
        # entry): an infinite learning rate is refused now, not as a NaN loss an epoch later.
        for key, range in _RANGES.items():
            value = getattr(self, key)
            if value is not None or key not in _OPTIONAL:
                range.check(value, key)
        for key in ("nesterov", "decay_norm_and_bias", "flip"):
            if not isinstance(getattr(self, key), bool):
                raise InputError(f"{key} must be true or false, got {getattr(self, key)!r}", field=key)
        if self.schedule not in ("step", "onecycle"):
            raise InputError(f"schedule must be 'step' or 'onecycle', got {self.schedule!r}", field="schedule")
        if not isinstance(self.milestones, (tuple, list)):
            raise InputError(
                f"milestones must be a list of fractions of the run, e.g. [0.5, 0.75], got {self.milestones!r}",
                field="milestones",
            )
        for milestone in self.milestones:
            MILESTONE.check(milestone, "milestone")
        WARMUP_UNTIL_ERROR.check(self.warmup_until_error, "warmup_until_error")

    def with_overrides(self, **changes: Any) -> Recipe:
        if "epochs" in changes and changes["epochs"] is not None and "iterations" not in changes:
            changes["iterations"] = None
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as exc:
            raise InputError(f"unknown recipe field: {exc}") from None

    def total_steps(self, steps_per_epoch: int) -> int:
        """Steps in the whole run, given how many steps one epoch takes."""
        if self.iterations is not None:
            return self.iterations
        if self.epochs is None:
            raise InputError(f"recipe {self.name!r} sets neither epochs nor iterations", field="epochs")
        return self.epochs * steps_per_epoch

    def lr_at(self, step: int, total: int) -> float:
        """Learning rate of step ``step`` (0-based) in a run of ``total`` steps."""
        if self.schedule == "step":
            passed = sum(step >= m * total for m in self.milestones)
            return self.lr * self.gamma**passed
        if self.schedule == "onecycle":
            rise = max(1, round(self.pct_start * total))
            if step < rise:
                return self.lr * (step + 1) / rise
            return self.lr * max(0.0, (total - step) / max(1, total - rise))
        raise InputError(f"schedule must be 'step' or 'onecycle', got {self.schedule!r}", field="schedule")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """A recipe as :meth:`to_dict` wrote it (keys a recipe does not have are left out)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        if "milestones" in values:
            values["milestones"] = tuple(values["milestones"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["milestones"] = list(self.milestones)
        return out


#: He et al. (2015), section 4.2: batch 128, lr 0.1 divided by 10 at 32k and
#: 48k iterations, stop at 64k, weight decay 1e-4, momentum 0.9, 4-pixel pad
#: and crop with flips. For resnet110 set warmup_lr=0.01 (the paper's warm-up).
PAPER = Recipe(name="paper")

#: A short recipe for quick runs and search trials: one cycle, Nesterov,
#: label smoothing, no weight decay on BN and biases.
ONECYCLE = Recipe(
    name="onecycle",
    lr=0.2,
    nesterov=True,
    weight_decay=5e-4,
    decay_norm_and_bias=False,
    label_smoothing=0.1,
    schedule="onecycle",
    iterations=None,
    epochs=15,
)

RECIPES = {recipe.name: recipe for recipe in (PAPER, ONECYCLE)}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise InputError(
            f"recipe must be one of {', '.join(map(repr, RECIPES))}, got {name!r}", field="recipe"
        ) from None
