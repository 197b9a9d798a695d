"""ArchSpec: the declarative description of one network, and its digest.

Everything else in reszoo (builders, registry rows, latency rows, search
trials) keys on an ``ArchSpec`` and its ``digest``, so this module owns the
rules of what a valid spec is and the one canonical JSON form it is hashed in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reszoo.errors import SpecError, SpecFileError, suggest
from reszoo.files import atomic_write_text

FAMILIES = ("residual", "plain", "highway")
BLOCKS = ("basic", "bottleneck")
STEMS = ("cifar", "imagenet")
SHORTCUTS = ("A", "B", "C", "none")

#: Shortcut styles each family can be built with, the first one its default.
#: Plain nets have no shortcut at all; highway nets carry their input through
#: a gate, so only the projection policy of the carry path (B or C) is free:
#: a zero-padded carry (A) would gate half of its channels against zeros.
FAMILY_SHORTCUTS: dict[str, tuple[str, ...]] = {
    "residual": ("B", "A", "C"),
    "plain": ("none",),
    "highway": ("B", "C"),
}

#: Output channels of a block per unit of stage width.
BLOCK_EXPANSION = {"basic": 1, "bottleneck": 4}
#: Weighted layers (convolutions on the main path) in one block.
BLOCK_LAYERS = {"basic": 2, "bottleneck": 3}
#: The input size each stem is designed for, used when a caller changes the
#: stem without naming an input size.
STEM_INPUT_SIZE = {"cifar": 32, "imagenet": 224}
#: Spatial reduction of the stem: 3x3 stride 1, or 7x7 stride 2 + 3x3/2 max-pool.
STEM_STRIDE = {"cifar": 1, "imagenet": 4}


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class ArchSpec:
    """A frozen, validated description of one residual, plain or highway net.

    Args:
        family: ``residual`` (shortcut connections), ``plain`` (the same stack
            without shortcuts) or ``highway`` (gated shortcuts).
        block: ``basic`` (two 3x3 convs) or ``bottleneck`` (1x1, 3x3, 1x1 with
            4x expansion).
        stem: ``cifar`` (3x3 conv, no pooling) or ``imagenet`` (7x7 stride-2
            conv and 3x3 stride-2 max-pool). The stem has ``stage_widths[0]``
            channels.
        stage_depths: Blocks per stage. Every stage after the first halves the
            spatial size in its first block.
        stage_widths: Width per stage (a bottleneck stage outputs 4x this).
        shortcut: ``A`` identity, stride-2 subsampling and zero-padded channels
            (no parameters); ``B`` projection only where the shape changes;
            ``C`` projection in every block; ``none`` for plain nets. ``None``
            picks the family's default (residual and highway: B).
        num_classes: Classifier outputs.
        in_chans: Input image channels.
        input_size: Side of the square input image; ``None`` picks the stem's
            (32 for cifar, 224 for imagenet).
    """

    family: str = "residual"
    block: str = "basic"
    stem: str = "cifar"
    stage_depths: tuple[int, ...] = (3, 3, 3)
    stage_widths: tuple[int, ...] = (16, 32, 64)
    shortcut: str | None = None
    num_classes: int = 10
    in_chans: int = 3
    input_size: int | None = None

    def __post_init__(self) -> None:
        _check_choice("family", self.family, FAMILIES)
        _check_choice("block", self.block, BLOCKS)
        _check_choice("stem", self.stem, STEMS)
        depths = _check_int_tuple("stage_depths", self.stage_depths)
        widths = _check_int_tuple("stage_widths", self.stage_widths)
        if len(depths) != len(widths):
            raise SpecError(
                f"stage_depths has {len(depths)} stages but stage_widths has {len(widths)}; "
                "give one depth and one width per stage",
                field="stage_widths",
                value=list(widths),
            )
        allowed = FAMILY_SHORTCUTS[self.family]
        shortcut = allowed[0] if self.shortcut is None else self.shortcut
        _check_choice("shortcut", shortcut, SHORTCUTS)
        if shortcut not in allowed:
            raise SpecError(
                f"shortcut {shortcut!r} is not valid for a {self.family} net; "
                f"allowed: {', '.join(repr(s) for s in allowed)}"
                + (" (plain nets have no shortcut)" if self.family == "plain" else "")
                + (
                    " (a highway gate cannot carry zero-padded channels)"
                    if self.family == "highway" and shortcut == "A"
                    else ""
                ),
                field="shortcut",
                value=shortcut,
            )
        if shortcut == "A" and any(b < a for a, b in zip(widths, widths[1:])):
            raise SpecError(
                f"shortcut 'A' pads channels with zeros and cannot reduce them, but stage_widths "
                f"{list(widths)} decreases; use non-decreasing widths or shortcut 'B'",
                field="stage_widths",
                value=list(widths),
            )
        num_classes = _check_positive_int("num_classes", self.num_classes)
        in_chans = _check_positive_int("in_chans", self.in_chans)
        input_size = STEM_INPUT_SIZE[self.stem] if self.input_size is None else self.input_size
        input_size = _check_positive_int("input_size", input_size)
        # Normalise in place: the dataclass is frozen to callers, not to itself.
        for name, value in (
            ("stage_depths", depths),
            ("stage_widths", widths),
            ("shortcut", shortcut),
            ("num_classes", num_classes),
            ("in_chans", in_chans),
            ("input_size", input_size),
        ):
            object.__setattr__(self, name, value)

    # ----------------------------------------------------------------- derived

    # ``shortcut`` and ``input_size`` may be passed as ``None`` (the family's, the stem's
    # default); ``__post_init__`` resolves them, so on a built spec they are never ``None``.

    @property
    def resolved_shortcut(self) -> str:
        """``shortcut`` as ``__post_init__`` resolved it (never ``None``)."""
        if self.shortcut is None:
            raise AssertionError("ArchSpec.shortcut was not resolved: __post_init__ sets it on every spec")
        return self.shortcut

    @property
    def resolved_input_size(self) -> int:
        """``input_size`` as ``__post_init__`` resolved it (never ``None``)."""
        if self.input_size is None:
            raise AssertionError("ArchSpec.input_size was not resolved: __post_init__ sets it on every spec")
        return self.input_size

    @property
    def expansion(self) -> int:
        """Output channels of a block per unit of stage width."""
        return BLOCK_EXPANSION[self.block]

    @property
    def num_blocks(self) -> int:
        return sum(self.stage_depths)

    @property
    def depth(self) -> int:
        """Weighted layers as the paper counts them: stem conv, block convs, classifier."""
        return 1 + BLOCK_LAYERS[self.block] * self.num_blocks + 1

    @property
    def stem_width(self) -> int:
        return self.stage_widths[0]

    @property
    def feature_dim(self) -> int:
        """Channels reaching the classifier."""
        return self.stage_widths[-1] * self.expansion

    def stage_strides(self) -> tuple[int, ...]:
        return tuple(1 if i == 0 else 2 for i in range(len(self.stage_depths)))

    def stem_output_size(self) -> int:
        return ceil_div(self.resolved_input_size, STEM_STRIDE[self.stem])

    def stage_output_sizes(self) -> tuple[int, ...]:
        """Spatial side after each stage (stride-2 convs with padding round up)."""
        size = self.stem_output_size()
        sizes = []
        for stride in self.stage_strides():
            size = ceil_div(size, stride)
            sizes.append(size)
        return tuple(sizes)

    def summary(self) -> str:
        """One line a person can read.

        ``residual 20-layer basic, cifar stem, depths 3-3-3, widths 16-32-64,
        shortcut A, 10 classes, 3x32x32 input``
        """
        depths = "-".join(map(str, self.stage_depths))
        widths = "-".join(map(str, self.stage_widths))
        shortcut = "no shortcut" if self.shortcut == "none" else f"shortcut {self.shortcut}"
        return (
            f"{self.family} {self.depth}-layer {self.block}, {self.stem} stem, "
            f"depths {depths}, widths {widths}, {shortcut}, "
            f"{self.num_classes} classes, {self.in_chans}x{self.input_size}x{self.input_size} input"
        )

    # ----------------------------------------------------------- serialising

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict with every field explicit (no ``None``)."""
        out = dataclasses.asdict(self)
        out["stage_depths"] = list(self.stage_depths)
        out["stage_widths"] = list(self.stage_widths)
        return out

    def to_json(self, *, indent: int | None = None) -> str:
        """JSON text; without ``indent`` it is the canonical form the digest hashes."""
        if indent is None:
            return canonical_json(self.to_dict())
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True) + "\n"

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON: the architecture's identity everywhere."""
        return hashlib.sha256(self.to_json().encode("ascii")).hexdigest()

    @property
    def short_digest(self) -> str:
        return self.digest[:12]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchSpec:
        """Build from a mapping; missing fields take their defaults, unknown ones are refused."""
        if not isinstance(data, Mapping):
            raise SpecError(
                f"a spec must be a JSON object of fields, got {type(data).__name__}",
                value=data,
            )
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                close = suggest(str(key), known)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SpecError(
                    f"unknown spec field {key!r}{hint} (fields: {', '.join(sorted(known))})",
                    field=str(key),
                    value=data[key],
                )
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str | bytes) -> ArchSpec:
        if len(text) > 1_000_000:  # a spec is a few hundred bytes; this is something else
            raise SpecError(f"spec is {len(text):,} bytes; a spec is a small JSON object (at most 1 MB)")
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:  # JSONDecodeError and undecodable bytes
            raise SpecError(f"spec is not valid JSON: {exc}") from None
        except RecursionError:
            raise SpecError("spec is not a spec: its JSON nests deeper than Python can read") from None
        return cls.from_dict(data)

    def with_overrides(self, **overrides: Any) -> ArchSpec:
        """A copy with some fields replaced.

        Fields that follow another one are re-derived when the caller does not
        set them: changing ``stem`` resets ``input_size`` to that stem's size,
        and changing ``family`` resets a ``shortcut`` the new family cannot use
        to the family's default. So ``resnet34`` with ``stem="cifar"`` is the
        32x32 CIFAR variant, and ``resnet20`` with ``family="plain"`` is plain20.
        """
        data = self.to_dict()
        if "stem" in overrides and "input_size" not in overrides:
            data["input_size"] = None
        family = overrides.get("family", self.family)
        if (
            "family" in overrides
            and "shortcut" not in overrides
            and self.shortcut not in FAMILY_SHORTCUTS.get(family, (self.shortcut,))
        ):
            data["shortcut"] = None
        data.update(overrides)
        return ArchSpec.from_dict(data)


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace, ASCII only: identical bytes on every machine."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _check_choice(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        close = suggest(value, allowed) if isinstance(value, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SpecError(
            f"{field} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}{hint}",
            field=field,
            value=value,
        )


def _is_int(value: object) -> bool:
    # bool is an int to Python but never a depth or a width.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


#: Bounds far beyond any net of the paper (resnet1202: 200 blocks a stage, width 64,
#: ImageNet's 1000 classes at 224x224) that keep a typo from building a net that
#: never finishes (100,000 blocks) or allocates terabytes.
LIMITS = {
    "stages": 8,
    "stage_depths": 1000,  # blocks in one stage
    "total_blocks": 2000,
    "stage_widths": 8192,
    "num_classes": 100_000,
    "in_chans": 64,
    "input_size": 4096,
}


def _check_positive_int(field: str, value: object) -> int:
    limit = LIMITS.get(field)
    if not _is_int(value) or int(value) < 1 or (limit is not None and int(value) > limit):  # type: ignore[call-overload]
        raise SpecError(
            f"{field} must be a positive integer" + (f" of at most {limit:,}" if limit else "") + f", got {value!r}",
            field=field,
            value=value,
        )
    return int(value)  # type: ignore[call-overload]


def _check_int_tuple(field: str, value: object) -> tuple[int, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise SpecError(
            f"{field} must be a list of positive integers, one per stage, got {value!r}",
            field=field,
            value=value,
        )
    items = tuple(value)[: LIMITS["stages"] + 1]
    if not items:
        raise SpecError(f"{field} is empty; a net needs at least one stage", field=field, value=[])
    if len(items) > LIMITS["stages"]:
        raise SpecError(
            f"{field} has more than {LIMITS['stages']} stages; each stage halves the image, and "
            f"reszoo builds at most {LIMITS['stages']}",
            field=field,
        )
    limit = LIMITS[field]
    for item in items:
        if not _is_int(item) or int(item) < 1 or int(item) > limit:
            raise SpecError(
                f"{field} must hold positive integers of at most {limit:,}, got {item!r} in {list(items)!r}"
                + ("; an empty stage is not allowed, drop the stage instead" if item == 0 else ""),
                field=field,
                value=list(items),
            )
    if field == "stage_depths" and sum(items) > LIMITS["total_blocks"]:
        raise SpecError(
            f"stage_depths {list(items)} add up to {sum(items):,} blocks; reszoo builds at most "
            f"{LIMITS['total_blocks']:,} (resnet1202 has 600)",
            field=field,
            value=list(items),
        )
    return tuple(int(i) for i in items)


def read_spec_file(path: str | os.PathLike[str]) -> ArchSpec:
    """Read a spec written by :func:`write_spec_file` or by hand."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise SpecFileError(f"spec file {str(path)!r} is a folder or a device, not a file")
        with path.open("rb") as handle:
            text = handle.read(1_000_001)  # bounded: never reads a stream to its (absent) end
    except FileNotFoundError:
        raise SpecFileError(f"spec file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise SpecFileError(f"cannot read spec file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        return ArchSpec.from_json(text)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}", field=exc.field, value=exc.value) from None


def write_spec_file(spec: ArchSpec, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``spec`` as indented JSON; refuses to replace an existing file unless ``overwrite``."""
    path = Path(path)
    if len(path.name.encode()) > 255:  # before any stat: the OS raises on such a name
        raise SpecFileError(
            f"cannot write spec file: its name is {len(path.name.encode())} bytes, more than the 255 "
            "a file system allows; choose a shorter name"
        )
    if path.exists() and not overwrite:
        raise SpecFileError(f"{str(path)!r} already exists; choose another path or allow overwriting (--force)")
    try:
        atomic_write_text(path, spec.to_json(indent=2), encoding="ascii")  # a reader never sees half a spec
    except OSError as exc:
        raise SpecFileError(f"cannot write spec file {str(path)!r}: {exc.strerror or exc}") from None
    return path
