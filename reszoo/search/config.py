"""A search's settings, and which of them a resumed study must share.

A study keeps the settings it was started with (data set, space, proxy,
latency target, mode) as a study attribute, so a resumed or joined study
refuses other settings instead of mixing incomparable trials. Settings added
since a study was started are left out of the comparison at their old
default, so such a study still resumes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from reszoo.errors import InputError, SearchError
from reszoo.latency.judge import LatencyTarget
from reszoo.limits import DEFAULT_MACS_BUDGET
from reszoo.search.proxy import Proxy
from reszoo.search.space import SearchSpace

MODES = ("constrained", "pareto")

#: How a trial's proxy run may be stopped early: ``median`` (below the median of earlier trials
#: at an epoch: the default, for short proxies), ``hyperband`` (Optuna's Hyperband, successive
#: halving over proxy epochs in several brackets: for a proxy of many epochs, where most trials
#: should stop after one or a few), ``none``.
PRUNERS = ("median", "hyperband", "none")


@dataclass(frozen=True)
class SearchConfig:
    """Everything a worker needs to run trials of one study (picklable: workers are spawned)."""

    dataset: str
    space: SearchSpace
    proxy: Proxy
    target: LatencyTarget
    registry: str  # URL of the registry that caches latency (and receives published nets)
    study: str
    storage: str = "memory"
    mode: str = "constrained"
    seed: int | None = 0
    data_root: str | None = None
    startup_trials: int = 10  # random trials before TPE models the space
    sampler: str = "tpe"  # or "random": the baseline of benchmarks/search_quality.py
    screen: bool = True  # redraw draws the latency predictor puts over the limit (search/sampling.py)
    size_preference: bool = True  # of the screen's passing draws, hand on the largest likely under the limit
    pruner: str = "median"  # one of PRUNERS
    # The epoch from which the pruner may stop a proxy run: Hyperband's first rung (its
    # min_resource), the median pruner's warm-up. Later than 1 where scores after one epoch do
    # not yet rank nets (wide nets start slower).
    min_proxy_epochs: int = 1
    # Trials train only nets within this many times the MACs of the largest net the study started
    # from (its proxy-training cost); None: no bound (a budget that affords any size).
    macs_budget: float | None = DEFAULT_MACS_BUDGET

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}", field="mode")
        if self.pruner not in PRUNERS:
            raise InputError(f"pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}", field="pruner")
        if not 1 <= self.min_proxy_epochs <= max(1, self.proxy.recipe.epochs or 1):
            raise InputError(
                f"min proxy epochs must be from 1 to the proxy's {self.proxy.recipe.epochs} epochs, got "
                f"{self.min_proxy_epochs}",
                field="min_proxy_epochs",
            )
        if self.macs_budget is not None and not (math.isfinite(self.macs_budget) and self.macs_budget >= 1):
            raise InputError(
                f"macs budget must be a finite number of at least 1 (times the references' MACs), or none for no "
                f"bound; got {self.macs_budget!r}",
                field="macs_budget",
            )
        if self.sampler not in ("tpe", "random"):
            raise InputError(f"sampler must be 'tpe' or 'random', got {self.sampler!r}", field="sampler")
        if self.mode == "constrained" and self.target.max_ms is None:
            raise InputError("constrained mode needs a latency limit (--max-latency-ms)", field="max_latency_ms")

    def settings(self) -> dict[str, Any]:
        """What trials of one study must share to be comparable."""
        proxy = dataclasses.asdict(self.proxy)
        proxy["recipe"] = self.proxy.recipe.to_dict()
        if proxy["precision"] is None:
            del proxy["precision"]  # the device's default, as before the field existed: older studies resume
        if proxy["score"] == "top1":
            del proxy["score"]  # how studies were scored before the field existed: they resume with --proxy-score top1
        target = dataclasses.asdict(self.target)
        # How latency is found, not what it means (limit_from: a resumed study keeps its limit in max_ms).
        del target["predict"], target["limit_from"]
        return {
            "dataset": self.dataset,
            "mode": self.mode,
            "space": self.space.to_dict(),
            "proxy": proxy,
            "target": target,
        }


def check_same_settings(name: str, stored: dict[str, Any], config: SearchConfig) -> None:
    """Refuse to resume study ``name``, started with ``stored`` settings, under other settings,
    naming each setting that differs with its value then and now (so the user knows which option to give)."""
    settings = config.settings()
    if stored == settings:
        return
    differences = _differences(stored, settings)
    differ = sorted({path.split(".")[0] for path, _, _ in differences})
    values = "; ".join(f"{path}: {then!r} then, {now!r} now" for path, then, now in differences[:4])
    raise SearchError(
        f"study {name!r} was started with other {', '.join(differ)} settings ({values}): its trials "
        f"would not compare with new ones. Use the same options to resume it, or another --study name"
    )


def _differences(then: Any, now: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """The leaves where two settings differ, as (dotted path, then, now)."""
    if isinstance(then, dict) and isinstance(now, dict):
        return [
            found
            for key in sorted(then.keys() | now.keys())
            for found in _differences(then.get(key), now.get(key), f"{path}.{key}" if path else key)
        ]
    return [] if then == now else [(path, then, now)]
