"""The Markdown model card of an entry: the ``README.md`` of its Hub folder.

The card is huggingface_hub's :class:`~huggingface_hub.ModelCard`: YAML
metadata the Hub indexes (library, licence, task, data set, the top-1 as a
``model-index`` result), then what a reader needs to trust and use the
weights: how to load them, metrics, data set, recipe, training curves, measured
latency, lineage, checksums and licence. Every fact comes from the registry
entry and its latency rows, worded as ``reszoo show`` words them
(reszoo.zoo.facts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from reszoo.zoo.facts import entry_facts, history_cell, human_count, shown_history
from reszoo.zoo.records import EntryRecord, LatencyRecord

if TYPE_CHECKING:
    from huggingface_hub import ModelCard, ModelCardData

#: The licence the zoo's weights are released under: reszoo's own.
LICENSE = "apache-2.0"
#: Hub ids of the data sets reszoo names (others are named in the text only).
HUB_DATASETS = {
    "cifar10": "uoft-cs/cifar10",
    "cifar100": "uoft-cs/cifar100",
    "fashion-mnist": "zalando-datasets/fashion_mnist",
}
LATENCY_HEADERS = ("device", "runtime", "batch", "dtype", "median ms", "p90 ms", "samples", "measured")


def latency_cells(row: LatencyRecord) -> list[str]:
    """One latency row as table cells (a noisy p90 marked)."""
    return [
        row.device,
        row.runtime,
        str(row.batch_size),
        row.dtype,
        f"{row.median_ms:.3f}",
        f"{row.p90_ms:.3f}" + (" (noisy)" if row.noisy else ""),
        str(row.samples),
        f"{row.measured_at:%Y-%m-%d}",
    ]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; ``|`` and line breaks in cells escaped."""

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", "<br>")

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def history_markdown(record: EntryRecord) -> str:
    """The per-epoch history (first and last epochs) as a Markdown table."""
    keys = list(dict.fromkeys(k for epoch in record.history for k in epoch))
    return markdown_table(keys, [[history_cell(epoch.get(k)) for k in keys] for epoch in shown_history(record.history)])


def card_metadata(record: EntryRecord) -> ModelCardData:
    """The card's YAML header as huggingface_hub's ``ModelCardData``."""
    from huggingface_hub import EvalResult, ModelCardData

    hub_dataset = HUB_DATASETS.get(record.dataset or "")
    results = None
    if record.top1 is not None and record.dataset:
        results = [
            EvalResult(
                task_type="image-classification",
                dataset_type=hub_dataset or record.dataset,
                dataset_name=record.dataset,
                dataset_split="test",
                metric_type="accuracy",
                metric_name="top-1",
                metric_value=round(record.top1, 6),
            )
        ]
    return ModelCardData(
        library_name="reszoo",
        license=LICENSE,
        pipeline_tag="image-classification",
        tags=["image-classification", "reszoo", "timm", "safetensors", f"{record.spec.family}-net"],
        datasets=[hub_dataset] if hub_dataset else None,
        metrics=["accuracy"] if results else None,
        model_name=record.name,
        eval_results=results,
    )


def model_card(
    record: EntryRecord, latency: Sequence[LatencyRecord] = (), *, figure: str | None = None, repo_id: str | None = None
) -> ModelCard:
    """The model card of ``record`` (a ``huggingface_hub.ModelCard``; ``str(card)`` is its Markdown).

    Args:
        latency: The entry's architecture's stored latency rows.
        figure: File name of the training-curves picture beside the card, if one was drawn.
        repo_id: The Hub repository the folder is meant for (shown in the loading example).
    """
    from huggingface_hub import ModelCard

    spec = record.spec
    source = repo_id or "USER/REPO"
    top1 = f"{100 * record.top1:.2f}% top-1" if record.top1 is not None else "no top-1 recorded"
    sections = [
        f"# {record.name} (reszoo {record.ref})",
        f"A {spec.depth}-layer {spec.family} network from the reszoo zoo, "
        f"trained on {record.dataset or 'an unnamed data set'}: {top1}, {human_count(record.params)} parameters, "
        f"{human_count(record.macs)} multiply-adds per image. {spec.summary()}.",
        "## Use",
        "```python\nimport reszoo\n\n"
        f'model = reszoo.from_pretrained("{source}")  # or reszoo.load("path/to/this/folder")\n'
        "transform = reszoo.data_transform(model)  # PIL image -> normalised tensor, as trained\n"
        "logits = model(transform(image).unsqueeze(0))\n```",
        f'From reszoo\'s own registry: `reszoo pull {record.ref}`, then `reszoo.load("{record.ref}")`. '
        "`config.json` holds the architecture spec and timm's `pretrained_cfg` (input size, mean, std, class names).",
        "## Results",
        markdown_table(["fact", "value"], entry_facts(record)),
    ]
    if record.history:
        sections.append("## Training curves")
        if figure:
            sections.append(f"![training and test error against iterations]({figure})")
        sections.append(history_markdown(record))
    if latency:
        sections += [
            "## Latency",
            "Measured by `reszoo bench`: median and p90 of many forward passes after a "
            "warm-up, on the device, runtime, batch size and dtype named.",
            markdown_table(LATENCY_HEADERS, [latency_cells(row) for row in latency]),
        ]
    lineage = [
        ("entry", record.ref),
        ("aliases", ", ".join(record.aliases)),
        ("parent", record.parent or ""),
        ("search study", f"{record.study} trial {record.trial}" if record.study else ""),
        ("weights sha256", f"`{record.blob_sha256}`"),
        ("architecture digest", f"`{record.arch_digest}`"),
    ]
    sections += [
        "## Lineage and checksums",
        markdown_table(["link", "value"], [(label, value) for label, value in lineage if value]),
        "`sha256sum model.safetensors` prints the weights sha256 above: the file is the registry's blob, "
        "byte for byte.",
        "## Licence",
        f"The weights are released under {LICENSE}, reszoo's licence. The data set they were trained on keeps its "
        "own terms.",
    ]
    text = "---\n" + card_metadata(record).to_yaml() + "\n---\n\n" + "\n\n".join(sections) + "\n"
    return ModelCard(text)
