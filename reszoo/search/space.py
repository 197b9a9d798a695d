"""The search space: which specs a search (or a latency study) may draw.

A space is data: bounds on family, block, depth per stage, base width,
shortcut style and stem, read from the CLI or a JSON/TOML file. ``suggest``
is the only code that asks Optuna for values; ``sample`` draws the same
space with a plain RNG (the latency predictor's checks use it).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reszoo.errors import InputError, SpecFileError
from reszoo.zoo.spec import BLOCKS, FAMILIES, FAMILY_SHORTCUTS, STEMS, ArchSpec


@dataclass(frozen=True)
class SearchSpace:
    """Bounds of the searchable specs.

    Args:
        families: Families to draw from.
        blocks: Block types to draw from.
        num_stages: Stages of every net (each after the first halves the size).
        min_depth, max_depth: Blocks per stage.
        base_widths: Width of the first stage; later stages multiply it by
            ``width_multipliers``.
        width_multipliers: Per-stage factor on the base width.
        shortcuts: Shortcut styles allowed (each family draws among those it
            can use; plain nets have none).
        stems: Stems to draw from.
        num_classes, in_chans, input_size: Fixed by the data set.
    """

    families: tuple[str, ...] = ("residual", "plain", "highway")
    blocks: tuple[str, ...] = ("basic", "bottleneck")
    num_stages: int = 3
    min_depth: int = 1
    # resnet20 has 3 blocks per stage. Deeper stages rarely fit a latency limit
    # worth searching under (on a CPU batch-1 latency grows with layer count).
    max_depth: int = 4
    base_widths: tuple[int, ...] = (8, 12, 16, 24, 32, 48, 64)
    width_multipliers: tuple[int, ...] = (1, 2, 4)
    shortcuts: tuple[str, ...] = ("A", "B", "C")
    stems: tuple[str, ...] = ("cifar",)
    num_classes: int = 10
    in_chans: int = 3
    input_size: int = 32

    def __post_init__(self) -> None:
        _check_subset("families", self.families, FAMILIES)
        _check_subset("blocks", self.blocks, BLOCKS)
        _check_subset("shortcuts", self.shortcuts, ("A", "B", "C"))
        _check_subset("stems", self.stems, STEMS)
        _check_ints("base_widths", self.base_widths, 1)
        _check_ints("width_multipliers", self.width_multipliers, 1)
        for name in ("num_stages", "min_depth", "max_depth", "num_classes", "in_chans", "input_size"):
            _check_ints(name, (getattr(self, name),), 1)
        if self.min_depth > self.max_depth:
            raise InputError(
                f"min_depth {self.min_depth} is above max_depth {self.max_depth}; give min_depth <= max_depth",
                field="min_depth",
                value=self.min_depth,
            )
        if len(self.width_multipliers) < self.num_stages:
            raise InputError(
                f"width_multipliers {list(self.width_multipliers)} has fewer entries than num_stages "
                f"{self.num_stages}; give one multiplier per stage",
                field="width_multipliers",
            )
        for family in self.families:
            if not self.family_shortcuts(family):
                raise InputError(
                    f"family {family!r} can use shortcuts {list(FAMILY_SHORTCUTS[family])}, none of which is in "
                    f"shortcuts {list(self.shortcuts)}; allow one of them or drop the family",
                    field="shortcuts",
                )

    def family_shortcuts(self, family: str) -> tuple[str, ...]:
        """The shortcut styles ``family`` may draw (plain nets: ``none`` only)."""
        allowed = FAMILY_SHORTCUTS[family]
        if allowed == ("none",):
            return allowed
        return tuple(s for s in allowed if s in self.shortcuts)

    def make_spec(
        self, family: str, block: str, depths: tuple[int, ...], base_width: int, shortcut: str, stem: str | None = None
    ) -> ArchSpec:
        return ArchSpec(
            family=family,
            block=block,
            stem=stem or self.stems[0],
            stage_depths=depths,
            stage_widths=tuple(base_width * m for m in self.width_multipliers[: self.num_stages]),
            shortcut=shortcut,
            num_classes=self.num_classes,
            in_chans=self.in_chans,
            input_size=self.input_size,
        )

    def fastest_candidates(self) -> list[ArchSpec]:
        """The nets of this space that can be its fastest, fewest layers first: the
        shallowest and narrowest of each family, block and stem (on a CPU and a
        GPU alike, batch-1 latency follows the layer count; GPU-CALIBRATION.md)."""
        depths = (self.min_depth,) * self.num_stages
        specs = {
            spec.digest: spec
            for family in self.families
            for block in self.blocks
            for stem in self.stems
            for spec in [
                self.make_spec(family, block, depths, min(self.base_widths), self.family_shortcuts(family)[0], stem)
            ]
        }
        from reszoo.zoo.counting import count

        return sorted(specs.values(), key=lambda s: (s.depth + (s.family == "highway") * s.depth, count(s).macs))

    def suggest(self, trial: Any) -> ArchSpec:
        """The spec an Optuna trial draws. Axes with one choice are not suggested,
        and each family draws its shortcut under its own name, so every
        parameter keeps one fixed set of choices (TPE requires it)."""
        return self._build(lambda name, choices: trial.suggest_categorical(name, list(choices)), trial.suggest_int)

    def from_params(self, params: Mapping[str, Any]) -> ArchSpec:
        """The spec ``suggest`` builds from these Optuna parameters (a sampler's draw)."""
        return self._build(lambda name, _choices: params[name], lambda name, _low, _high: params[name])

    def distributions(self) -> dict[str, Any]:
        """Every parameter ``suggest`` may ask for, with its Optuna distribution
        (each family's shortcut included, whichever family a draw picks)."""
        from optuna.distributions import CategoricalDistribution, IntDistribution

        found: dict[str, Any] = {}
        axes: list[tuple[str, Sequence[str | int]]] = [
            ("family", self.families),
            ("block", self.blocks),
            ("base_width", self.base_widths),
            *((f"shortcut_{family}", self.family_shortcuts(family)) for family in self.families),
            ("stem", self.stems),
        ]
        for name, choices in axes:
            if len(choices) > 1:
                found[name] = CategoricalDistribution(list(choices))
        if self.min_depth != self.max_depth:
            found.update(
                {
                    f"depth{stage + 1}": IntDistribution(self.min_depth, self.max_depth)
                    for stage in range(self.num_stages)
                }
            )
        return found

    def _build(self, categorical: Any, integer: Any) -> ArchSpec:
        """One spec, asking ``categorical(name, choices)`` and ``integer(name, low, high)``
        for each axis with more than one choice, in ``suggest``'s order."""

        def choose(name: str, choices: tuple[Any, ...]) -> Any:
            return choices[0] if len(choices) == 1 else categorical(name, choices)

        family = choose("family", self.families)
        block = choose("block", self.blocks)
        depths = tuple(
            self.min_depth
            if self.min_depth == self.max_depth
            else integer(f"depth{stage + 1}", self.min_depth, self.max_depth)
            for stage in range(self.num_stages)
        )
        base_width = choose("base_width", self.base_widths)
        shortcut = choose(f"shortcut_{family}", self.family_shortcuts(family))
        stem = choose("stem", self.stems)
        return self.make_spec(family, block, depths, base_width, shortcut, stem)

    def params_for(self, spec: ArchSpec) -> dict[str, Any] | None:
        """The Optuna parameters with which ``suggest`` draws ``spec``, ``None`` if the
        space cannot draw it (a search can then start from a known net)."""
        if len(spec.stage_depths) != self.num_stages or spec.family not in self.families:
            return None
        first = self.width_multipliers[0]
        base = spec.stage_widths[0] // first if spec.stage_widths[0] % first == 0 else None
        shortcuts = self.family_shortcuts(spec.family)
        if (
            spec.block not in self.blocks
            or spec.stem not in self.stems
            or base not in self.base_widths
            or spec.shortcut not in shortcuts
            or not all(self.min_depth <= d <= self.max_depth for d in spec.stage_depths)
            or self.make_spec(spec.family, spec.block, spec.stage_depths, base, spec.shortcut, spec.stem) != spec
        ):
            return None
        params: dict[str, Any] = {}
        for name, value, choices in (
            ("family", spec.family, self.families),
            ("block", spec.block, self.blocks),
            ("base_width", base, self.base_widths),
            (f"shortcut_{spec.family}", spec.shortcut, shortcuts),
            ("stem", spec.stem, self.stems),
        ):
            if len(choices) > 1:
                params[name] = value
        if self.min_depth != self.max_depth:
            params.update({f"depth{i + 1}": d for i, d in enumerate(spec.stage_depths)})
        return params

    def sample(self, rng: random.Random) -> ArchSpec:
        """One spec drawn uniformly along every axis."""
        family = rng.choice(self.families)
        return self.make_spec(
            family,
            rng.choice(self.blocks),
            tuple(rng.randint(self.min_depth, self.max_depth) for _ in range(self.num_stages)),
            rng.choice(self.base_widths),
            rng.choice(self.family_shortcuts(family)),
            rng.choice(self.stems),
        )

    def with_overrides(self, **changes: Any) -> SearchSpace:
        return from_mapping({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()
        }


def from_mapping(data: Mapping[str, Any], source: str = "search space") -> SearchSpace:
    """A space from a dict (a JSON/TOML file's content); unknown keys are errors."""
    fields = {f.name: f for f in dataclasses.fields(SearchSpace)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(f"{source}: unknown key(s) {unknown}; known keys: {', '.join(fields)}", field=unknown[0])
    values = {}
    for key, value in data.items():
        if isinstance(SearchSpace.__dataclass_fields__[key].default, tuple):
            if isinstance(value, (str, int)):
                value = [value]
            if not isinstance(value, (list, tuple)) or not value:
                raise InputError(f"{source}: {key} must be a non-empty list, got {value!r}", field=key, value=value)
            value = tuple(value)
        values[key] = value
    return SearchSpace(**values)


def load_space_file(path: str | Path) -> SearchSpace:
    """A space from a ``.json`` or ``.toml`` file of SearchSpace fields."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            text = handle.read(1_000_001).decode("utf-8")  # bounded: a space file is a few lines
    except OSError as exc:
        raise SpecFileError(f"cannot read search space file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpecFileError(f"search space file {path} is not text (UTF-8 JSON or TOML)") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise SpecFileError(f"search space file {path} is not valid {path.suffix[1:] or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise SpecFileError(
            f"search space file {path} must hold an object of SearchSpace fields, got {type(data).__name__}"
        )
    return from_mapping(data, source=str(path))


def _check_subset(name: str, values: tuple[Any, ...], allowed: tuple[str, ...]) -> None:
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise InputError(
            f"{name} must be a non-empty list drawn from {list(allowed)}, got {list(values)}", field=name, value=values
        )


def _check_ints(name: str, values: tuple[Any, ...], minimum: int) -> None:
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise InputError(f"{name} must hold integers >= {minimum}, got {value!r}", field=name, value=value)
