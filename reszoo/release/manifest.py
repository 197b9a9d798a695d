"""The zoo manifest (``zoo.toml``): which entries a release builds, from what, how.

A manifest names a release, the data set, one recipe per hardware kind
(``cpu``, ``cuda``), the entries in priority order (each a preset or a spec
file, with per-kind recipe changes where a net needs them), the pairs whose
recipes must agree (a plain net and its residual twin are only comparable
when trained alike), and the figures drawn from the result. Everything is
checked when the file is read, so a mistake costs seconds, not a training run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reszoo.errors import ManifestError, ReszooError
from reszoo.train.precision import PRECISIONS
from reszoo.train.recipes import Recipe, get_recipe
from reszoo.zoo.factory import resolve_spec
from reszoo.zoo.records import check_name
from reszoo.zoo.spec import ArchSpec

KINDS = ("cpu", "cuda")

#: Recipe fields a manifest may set, besides ``base``, ``runtime``, ``precision`` and ``version``.
RECIPE_FIELDS = {f.name for f in dataclasses.fields(Recipe)} - {"name"}


@dataclass(frozen=True)
class KindRecipe:
    """How one hardware kind trains every entry (before per-entry changes)."""

    kind: str
    recipe: Recipe
    runtime: str  # training runtime: auto, eager, graph, compile
    precision: str  # auto (the device's default: reszoo.train.precision), or one of PRECISIONS
    version: int | None  # the entry version this kind publishes (None: the next free one)


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    source: str  # preset name or spec file, as written
    spec: ArchSpec  # before fitting to the data set
    changes: dict[str, dict[str, Any]]  # per kind: recipe fields this net changes
    paper_error: float | None  # He et al. (2015) Table 6, CIFAR-10 test error in %, where the paper has it
    precisions: dict[str, str] = dataclasses.field(default_factory=dict)  # per kind: this net's own precision


@dataclass(frozen=True)
class Figure:
    file: str
    entries: tuple[str, ...]
    title: str


@dataclass(frozen=True)
class Manifest:
    path: Path
    name: str
    dataset: str
    dataset_label: str  # what to call the data beside every figure
    seed: int
    float16_tolerance: float  # largest top-1 drop (a fraction) that float16 storage may cost
    max_registry_mb: float | None
    # Precisions shown to learn alike (benchmarks/README.md), so that one figure may hold
    # curves of several of them; any other mix of precisions in a figure is refused.
    interchangeable_precisions: tuple[str, ...]
    docs: Path | None
    recipes: dict[str, KindRecipe]
    entries: tuple[ManifestEntry, ...]  # in priority order
    pairs: tuple[tuple[str, ...], ...]
    figures: tuple[Figure, ...]

    def entry(self, name: str) -> ManifestEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise ManifestError(f"{self.path}: no entry {name!r}; entries: {', '.join(e.name for e in self.entries)}")

    def recipe_for(self, name: str, kind: str) -> Recipe:
        """The recipe ``name`` trains with on ``kind``: the kind's, with the entry's changes."""
        base = self.kind(kind).recipe
        changes = self.entry(name).changes.get(kind, {})
        return base.with_overrides(**changes) if changes else base

    def kind(self, kind: str) -> KindRecipe:
        try:
            return self.recipes[kind]
        except KeyError:
            raise ManifestError(
                f"{self.path} has no recipe for {kind!r} devices (it has: {', '.join(self.recipes) or 'none'}); "
                f"add a [recipes.{kind}] table or pick another --device"
            ) from None

    def precision_for(self, name: str, kind: str) -> str:
        """The precision ``name`` trains in on ``kind``: its own, else the kind's (``auto`` possibly)."""
        return self.entry(name).precisions.get(kind, self.kind(kind).precision)

    def recipe_key(self, name: str, kind: str) -> str:
        """A short digest of everything that decides a trained entry: recipe, runtime, seed, data set,
        precision. An entry in the target carrying this key is 'held' and never trained again."""
        kind_recipe = self.kind(kind)
        body = {
            "recipe": self.recipe_for(name, kind).to_dict(),
            "runtime": kind_recipe.runtime,
            "seed": self.seed,
            "dataset": self.dataset,
            "kind": kind,
        }
        precision = self.precision_for(name, kind)
        if precision != "auto":  # keys made before precision could be chosen stay valid
            body["precision"] = precision
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: [{key}] must be a table, got {type(value).__name__}")
    return value


def _unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ManifestError(
            f"{where}: unknown key(s) {', '.join(map(repr, extra))}; allowed: {', '.join(sorted(allowed))}"
        )


def _recipe_changes(table: dict[str, Any], where: str) -> dict[str, Any]:
    """Recipe fields, each checked for its type and range by the recipe itself (a recipe
    is only used hours later, so it is checked now)."""
    _unknown(table, RECIPE_FIELDS, where)
    changes: dict[str, Any] = {
        key: tuple(value) if key == "milestones" and isinstance(value, list) else value for key, value in table.items()
    }
    try:
        Recipe(name="check", **changes)
    except ReszooError as exc:
        raise ManifestError(f"{where}: {exc}") from None
    return changes


def _precision(value: Any, where: str) -> str:
    if value != "auto" and value not in PRECISIONS:
        raise ManifestError(f"{where}: precision must be auto or one of {', '.join(PRECISIONS)}, got {value!r}")
    return str(value)


def _kind_recipe(kind: str, table: dict[str, Any], where: str) -> KindRecipe:
    _unknown(table, RECIPE_FIELDS | {"base", "runtime", "precision", "version"}, where)
    fields = {k: v for k, v in table.items() if k not in ("base", "runtime", "precision", "version")}
    try:
        recipe = get_recipe(str(table.get("base", "onecycle"))).with_overrides(**_recipe_changes(fields, where))
        recipe.total_steps(1)  # epochs or iterations must be set
    except ReszooError as exc:
        raise ManifestError(f"{where}: {exc}") from None
    runtime = table.get("runtime", "auto")
    if runtime not in ("auto", "eager", "graph", "compile"):
        raise ManifestError(f"{where}: runtime must be auto, eager, graph or compile, got {runtime!r}")
    if runtime == "graph" and kind != "cuda":
        raise ManifestError(f"{where}: runtime 'graph' needs CUDA; use auto or eager for {kind}")
    precision = _precision(table.get("precision", "auto"), where)
    version = table.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise ManifestError(f"{where}: version must be a whole number of at least 1, got {version!r}")
    return KindRecipe(kind, recipe, runtime, precision, version)


def read_manifest(path: str | Path) -> Manifest:
    """Read and check a zoo manifest.

    Raises:
        ManifestError: the file is missing or not TOML, or a value is wrong
            (the message names the key and what it takes).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(
            f"manifest {path} does not exist; the public zoo's is zoo.toml at the repository root"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"manifest {path} is not valid TOML: {exc}") from None
    where = str(path)
    _unknown(data, {"release", "recipes", "entries", "pairs", "figures"}, where)
    release = _table(data, "release", where)
    _unknown(
        release,
        {
            "name",
            "dataset",
            "dataset_label",
            "seed",
            "float16_tolerance",
            "max_registry_mb",
            "docs",
            "interchangeable_precisions",
        },
        f"{where} [release]",
    )
    try:
        name = check_name(str(release.get("name", "")))
    except ReszooError as exc:
        raise ManifestError(f"{where} [release] name: {exc}") from None
    dataset = release.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise ManifestError(f"{where} [release]: dataset must name a data set (cifar10, fashion-mnist or a path)")
    tolerance = release.get("float16_tolerance", 0.0005)
    if not isinstance(tolerance, (int, float)) or not 0 <= tolerance <= 1:
        raise ManifestError(
            f"{where} [release]: float16_tolerance is a top-1 fraction (0.0005 = 0.05 points), got {tolerance!r}"
        )
    max_mb = release.get("max_registry_mb")
    if max_mb is not None and (not isinstance(max_mb, (int, float)) or max_mb <= 0):
        raise ManifestError(f"{where} [release]: max_registry_mb must be a positive number, got {max_mb!r}")
    alike = release.get("interchangeable_precisions", [])
    if not isinstance(alike, list) or not all(isinstance(p, str) and p in PRECISIONS for p in alike):
        raise ManifestError(
            f"{where} [release]: interchangeable_precisions lists precisions shown to learn alike "
            f"(of {', '.join(PRECISIONS)}), got {alike!r}"
        )
    seed = release.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ManifestError(f"{where} [release]: seed must be a whole number, got {seed!r}")
    docs = release.get("docs")
    recipes_table = _table(data, "recipes", where)
    _unknown(recipes_table, set(KINDS), f"{where} [recipes]")
    recipes = {kind: _kind_recipe(kind, table, f"{where} [recipes.{kind}]") for kind, table in recipes_table.items()}
    if not recipes:
        raise ManifestError(f"{where}: no [recipes.cpu] or [recipes.cuda] table; a release needs one")

    raw_entries = data.get("entries", [])
    if not isinstance(raw_entries, list) or not raw_entries:
        raise ManifestError(f"{where}: [[entries]] lists the nets to build, in priority order; none found")
    entries: list[ManifestEntry] = []
    for index, raw in enumerate(raw_entries):
        at = f"{where} entries[{index}]"
        if not isinstance(raw, dict):
            raise ManifestError(f"{at}: each entry is a table with name and preset (or spec)")
        _unknown(raw, {"name", "preset", "spec", "overrides", "paper_error", *KINDS}, at)
        try:
            entry_name = check_name(str(raw.get("name", "")))
        except ReszooError as exc:
            raise ManifestError(f"{at} name: {exc}") from None
        if any(e.name == entry_name for e in entries):
            raise ManifestError(f"{at}: entry {entry_name!r} is listed twice")
        source = raw.get("preset", raw.get("spec"))
        if ("preset" in raw) == ("spec" in raw) or not isinstance(source, str):
            raise ManifestError(f'{at} ({entry_name}): give exactly one of preset = "NAME" or spec = "FILE.json"')
        if "spec" in raw and not Path(source).is_absolute():
            source = str(path.parent / source)
        try:
            spec = resolve_spec(source, **_table(raw, "overrides", at))
        except ReszooError as exc:
            raise ManifestError(f"{at} ({entry_name}): {exc}") from None
        per_kind = {kind: dict(_table(raw, kind, at)) for kind in KINDS if kind in raw}
        precisions = {
            kind: _precision(table.pop("precision"), f"{at} [{kind}]")
            for kind, table in per_kind.items()
            if "precision" in table
        }
        changes = {kind: _recipe_changes(table, f"{at} [{kind}]") for kind, table in per_kind.items() if table}
        paper = raw.get("paper_error")
        if paper is not None and not isinstance(paper, (int, float)):
            raise ManifestError(f"{at} ({entry_name}): paper_error is a test error in %, got {paper!r}")
        entries.append(
            ManifestEntry(entry_name, str(raw.get("preset", raw.get("spec"))), spec, changes, paper, precisions)
        )

    manifest = Manifest(
        path=path,
        name=name,
        dataset=dataset,
        dataset_label=str(release.get("dataset_label", dataset)),
        seed=seed,
        float16_tolerance=float(tolerance),
        max_registry_mb=None if max_mb is None else float(max_mb),
        interchangeable_precisions=tuple(alike),
        docs=None if docs is None else (path.parent / str(docs)),
        recipes=recipes,
        entries=tuple(entries),
        pairs=(),
        figures=(),
    )
    pairs = _pairs(data.get("pairs", []), manifest, where)
    figures = _figures(data.get("figures", []), manifest, where)
    return dataclasses.replace(manifest, pairs=pairs, figures=figures)


def _pairs(raw: Any, manifest: Manifest, where: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(raw, list) or not all(isinstance(p, list) and len(p) >= 2 for p in raw):
        raise ManifestError(f'{where}: pairs is a list of lists of entry names, e.g. [["resnet20", "plain20"]]')
    for group in raw:
        for name in group:
            manifest.entry(name)
        for kind in manifest.recipes:
            recipes = {name: manifest.recipe_for(name, kind) for name in group}
            first = recipes[group[0]]
            for name, recipe in recipes.items():
                if recipe != first:
                    differ = sorted(k for k, v in recipe.to_dict().items() if first.to_dict()[k] != v)
                    raise ManifestError(
                        f"{where}: {group[0]} and {name} are a pair but train differently on {kind} "
                        f"({', '.join(differ)}); a pair must share its recipe to be compared"
                    )
    return tuple(tuple(group) for group in raw)


def _figures(raw: Any, manifest: Manifest, where: str) -> tuple[Figure, ...]:
    if not isinstance(raw, list):
        raise ManifestError(f"{where}: [[figures]] is a list of tables with file and entries")
    figures = []
    for index, table in enumerate(raw):
        at = f"{where} figures[{index}]"
        if not isinstance(table, dict):
            raise ManifestError(f"{at}: a figure is a table with file and entries")
        _unknown(table, {"file", "entries", "title"}, at)
        file, names = table.get("file"), table.get("entries")
        if not isinstance(file, str) or Path(file).suffix not in (".png", ".svg", ".pdf") or Path(file).name != file:
            raise ManifestError(f"{at}: file must be a plain file name ending .png, .svg or .pdf, got {file!r}")
        if not isinstance(names, list) or not names:
            raise ManifestError(f"{at}: entries lists the entries to draw")
        for name in names:
            manifest.entry(name)
        figures.append(Figure(file, tuple(names), str(table.get("title", ""))))
    return tuple(figures)
