"""One way to publish a trained model: the metadata every trained entry carries.

``reszoo train --publish``, the search's ``--publish-best`` and ``reszoo
release`` all publish through :func:`publish_trained`, so every trained entry
records the same facts under the same keys: metrics (top-1, top-5, loss,
per-class top-1, test images), the per-epoch history, the recipe with how it
ran (seed, runtime, precision, steps, seconds), the data set (classes,
normalisation, subsets), the device, and its lineage (parent, search study
and trial, release).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reszoo.errors import InputError
from reszoo.train.data import Dataset
from reszoo.train.recipes import Recipe

if TYPE_CHECKING:
    from reszoo.train.loop import TrainResult
    from reszoo.zoo.records import EntryRecord
    from reszoo.zoo.registry import Registry

#: Metrics every trained entry has (the test split's).
CORE_METRICS = ("top1", "top5", "loss", "per_class_top1")


@dataclass(frozen=True)
class TrainedEntry:
    """What a trained model's entry records besides its weights; checks itself."""

    dataset: Dataset
    metrics: Mapping[str, Any]  # evaluate()'s: top1, top5, loss, per_class_top1, images
    history: list[dict[str, Any]]
    recipe: Recipe
    seed: int
    runtime: str
    precision: str
    steps: int
    seconds: float
    device: str  # the device label (GPU name, or CPU model and threads)
    train_subset: int | None = None
    test_subset: int | None = None
    extra_metrics: Mapping[str, Any] = field(default_factory=dict)
    extra_data: Mapping[str, Any] = field(default_factory=dict)  # e.g. the label a release gives the data set
    release: Mapping[str, Any] | None = None  # reszoo release's lineage
    parent: str | None = None
    study: str | None = None
    trial: int | None = None
    notes: str | None = None

    def __post_init__(self) -> None:
        missing = [key for key in (*CORE_METRICS, "images") if key not in self.metrics]
        if missing:
            raise InputError(
                f"a trained entry's metrics need {', '.join(missing)} (from evaluate()); got "
                f"{', '.join(self.metrics) or 'none'}"
            )
        if not self.history:
            raise InputError("a trained entry needs its per-epoch history; got none")

    @classmethod
    def from_result(cls, result: TrainResult, dataset: Dataset, device: str, **facts: Any) -> TrainedEntry:
        """The entry of a :func:`reszoo.train.train` result."""
        return cls(
            dataset=dataset,
            metrics=result.metrics,
            history=result.history,
            recipe=result.recipe,
            seed=result.seed,
            runtime=result.extra.get("runtime", "eager"),
            precision=result.extra.get("precision", "float32"),
            steps=result.steps,
            seconds=result.seconds,
            device=device,
            **facts,
        )

    def metrics_record(self) -> dict[str, Any]:
        return {
            **{k: self.metrics[k] for k in CORE_METRICS},
            "test_images": self.metrics["images"],
            **self.extra_metrics,
        }

    def recipe_record(self) -> dict[str, Any]:
        record = {
            **self.recipe.to_dict(),
            "seed": self.seed,
            "runtime": self.runtime,
            "precision": self.precision,
            "steps": self.steps,
            "train_seconds": self.seconds,
        }
        if self.release is not None:
            record["release"] = dict(self.release)
        return record

    def data_record(self) -> dict[str, Any]:
        return {
            **self.dataset.info(),
            "train_subset": self.train_subset,
            "test_subset": self.test_subset,
            **self.extra_data,
        }


def publish_trained(
    registry: Registry,
    name: str,
    weights: Any,
    spec: Any,
    entry: TrainedEntry,
    *,
    version: int | None = None,
    weights_dtype: Any = None,
    shadow: bool = False,
) -> EntryRecord:
    """Add trained ``weights`` of ``spec`` to ``registry`` as ``name`` with ``entry``'s facts.

    A public name (``resnet20``) in the user's local registry is refused unless
    ``shadow`` (see :meth:`Registry.add <reszoo.zoo.registry.Registry.add>`).
    """
    return registry.add(
        name,
        weights,
        spec,
        version=version,
        dataset=entry.dataset.name,
        metrics=entry.metrics_record(),
        history=entry.history,
        recipe=entry.recipe_record(),
        data=entry.data_record(),
        device=entry.device,
        parent=entry.parent,
        study=entry.study,
        trial=entry.trial,
        notes=entry.notes,
        weights_dtype=weights_dtype,
        shadow=shadow,
    )
