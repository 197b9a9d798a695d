"""Small renderers shared by the commands: JSON out, a latency row, the noisy-row note.

Kept apart from the command modules (which import reszoo.cli.app) so that any
of them can be imported first without an import cycle.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from reszoo.zoo.records import LatencyRecord


def print_json(data: Any) -> None:
    # Plain stdout, not Rich: no wrapping or colour inside machine-readable output.
    typer.echo(json.dumps(data, indent=2))


def latency_row(record: LatencyRecord) -> dict[str, Any]:
    return {
        "device": record.device,
        "runtime": record.runtime,
        "batch_size": record.batch_size,
        "dtype": record.dtype,
        "median_ms": record.median_ms,
        "p90_ms": record.p90_ms,
        "samples": record.samples,
        "noisy": record.noisy,
        "measured_at": record.measured_at.isoformat(),
    }


#: What the "noisy" mark means, wherever a latency table shows one.
NOISY_NOTE = (
    "noisy: p90 over 1.5x the median, measured while the machine was busy (retried twice); "
    "measure again with `reszoo bench --remeasure` when it is idle"
)
