"""``reszoo train`` and ``reszoo eval``. The training bar and what an interrupted run
says are reszoo.cli.train_progress'; ``reszoo plot curves`` is reszoo.cli.plot's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from reszoo.cli.app import app, console, err_console, open_registry, state
from reszoo.cli.options import number_option
from reszoo.cli.render import print_json
from reszoo.cli.train_progress import TrainingBar, interrupted_training
from reszoo.errors import UnknownModelError
from reszoo.limits import BATCH, EPOCHS, ITERATIONS, LR, SEED, SUBSET, THREADS
from reszoo.train.recipes import RECIPES, get_recipe

DatasetOption = Annotated[
    str,
    typer.Option("--dataset", "-d", help="cifar10, cifar100, fashion-mnist, synthetic, or a path.", show_default=False),
]
DataRootOption = Annotated[str | None, typer.Option(help="Folder holding named data sets (also $RESZOO_DATA).")]
DownloadOption = Annotated[
    bool, typer.Option("--download", help="Let torchvision download cifar10/cifar100 if not found (needs network).")
]


@app.command("train")
def train_command(
    ref: Annotated[
        str,
        typer.Argument(
            help="A preset name, spec .json file, or an entry whose architecture to train.", show_default=False
        ),
    ],
    dataset_name: DatasetOption,
    recipe_name: Annotated[str, typer.Option("--recipe", help=f"One of: {', '.join(RECIPES)}.")] = "onecycle",
    epochs: Annotated[
        int | None, number_option(EPOCHS, "--epochs", help="Train this many epochs (overrides the recipe).")
    ] = None,
    iterations: Annotated[
        int | None, number_option(ITERATIONS, "--iterations", help="Train this many steps (overrides the recipe).")
    ] = None,
    batch_size: Annotated[
        int | None, number_option(BATCH, "--batch-size", help="Images per step (overrides the recipe).")
    ] = None,
    lr: Annotated[float | None, number_option(LR, "--lr", help="Peak learning rate (overrides the recipe).")] = None,
    warmup_lr: Annotated[
        float | None,
        number_option(
            LR, "--warmup-lr", help="Start at this lr until training error < 80% (the paper's resnet110: 0.01)."
        ),
    ] = None,
    subset: Annotated[int | None, number_option(SUBSET, "--subset", help="Train on this many training images.")] = None,
    test_subset: Annotated[
        int | None, number_option(SUBSET, "--test-subset", help="Evaluate on this many test images.")
    ] = None,
    data_root: DataRootOption = None,
    download: DownloadOption = False,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda or cuda:N.")] = "auto",
    runtime: Annotated[
        str,
        typer.Option(
            help="auto (graph on a GPU, eager on a CPU), eager, graph (whole step in one CUDA graph; GPU only) "
            "or compile (torch.compile)."
        ),
    ] = "auto",
    precision: Annotated[
        str,
        typer.Option(
            help="auto (bfloat16 autocast on a GPU, float32 on a CPU), float32, bfloat16, or "
            "bfloat16-norm32 (bfloat16 convolutions, float32 BatchNorm and residual stream; the zoo's CPU "
            "builds). On a CPU, bfloat16 runs natively only with AVX512-BF16 or AMX (elsewhere it is "
            "emulated, slower than float32), and a short run in it can reach a lower top-1 than in float32."
        ),
    ] = "auto",
    threads: Annotated[
        int | None,
        number_option(
            THREADS,
            "--threads",
            help="CPU threads for this process (default: all "
            "cores; give 1 per process when several runs share the machine).",
        ),
    ] = None,
    seed: Annotated[
        int, number_option(SEED, "--seed", help="Seed of initialisation, data order and augmentation.")
    ] = 0,
    checkpoint: Annotated[str | None, typer.Option(help="Checkpoint file, written after every epoch.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from --checkpoint if it exists.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over, replacing an existing --checkpoint.")] = False,
    publish: Annotated[str | None, typer.Option(help="Add the trained model to the registry under this name.")] = None,
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="Let --publish use a public zoo name (resnet20) in your local registry: "
            "reszoo.load(NAME) then gives your net, not the zoo's.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train a net on a data set, optionally publishing it with its metrics, history and recipe.

    Under torchrun (`torchrun --nproc_per_node N -m reszoo train ...`) every
    process trains on its share of each batch with DistributedDataParallel;
    only rank 0 reports, checkpoints and publishes.
    """
    import torch

    from reszoo.devices import device_label, resolve_device
    from reszoo.train.data import fit_spec
    from reszoo.train.data import load as load_dataset
    from reszoo.train.distributed import data_parallel, init_distributed
    from reszoo.train.loop import train
    from reszoo.train.steps import check_precision, default_precision
    from reszoo.zoo.factory import resolve_arch

    torch_device = resolve_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        torch_device = init_distributed(torch_device)
    rank, world = data_parallel()
    if runtime == "auto":
        # CUDA graphs on one GPU. On a CPU eager: torch.compile's step is ~16%
        # faster for resnet20 but compiling costs ~60 s, which a run repays
        # only after ~700 steps (benchmarks/README.md); pass --runtime compile
        # for long CPU runs.
        runtime = "graph" if torch_device.type == "cuda" and world == 1 else "eager"
    precision = default_precision(torch_device) if precision == "auto" else check_precision(precision)
    if publish is not None and rank == 0:
        open_registry().check_new_name(publish, shadow=shadow)  # refused now, not after the training
    # A preset or spec file, else an entry's architecture (trained from scratch; its weights are not used).
    # The registry is opened only for the entry: a preset trains into a --registry not yet created.
    try:
        spec = resolve_arch(ref)
    except UnknownModelError:
        spec = resolve_arch(ref, open_registry(must_exist=True))
    overrides: dict[str, Any] = {
        k: v
        for k, v in (
            ("epochs", epochs),
            ("iterations", iterations),
            ("batch_size", batch_size),
            ("lr", lr),
            ("warmup_lr", warmup_lr),
        )
        if v is not None
    }
    if epochs is not None and iterations is None:
        overrides["iterations"] = None
    recipe = get_recipe(recipe_name).with_overrides(**overrides)
    bar = TrainingBar(recipe.batch_size, disable=rank != 0, console=err_console)
    try:
        with bar:
            bar.status(f"loading {dataset_name}: the first time, decoding it into the cache takes about a minute")
            dataset = load_dataset(dataset_name, root=data_root, download=download).subset(subset, test_subset)
            spec = fit_spec(spec, dataset)
            bar.status(
                f"setting up {spec.family}{spec.depth}"
                + {"compile": ": torch.compile takes about a minute", "graph": ": capturing the CUDA graph"}.get(
                    runtime, ""
                )
            )
            result = train(
                spec,
                dataset,
                recipe,
                device=torch_device,
                seed=seed,
                runtime=runtime,
                precision=precision,
                checkpoint=checkpoint,
                resume=resume,
                overwrite=force,
                on_step=bar.step,
                on_epoch=bar.epoch if rank == 0 else None,
                # On a GPU reading the loss waits for it: the bar moves every 20th step there.
                report_every=20 if torch_device.type == "cuda" else 1,
            )
    except KeyboardInterrupt:
        if rank != 0:
            raise typer.Exit(130) from None
        interrupted_training(bar, checkpoint, force)
    summary = {
        "spec": spec.to_dict(),
        "digest": spec.digest,
        "dataset": dataset.name,
        "recipe": recipe.to_dict(),
        "runtime": runtime,
        "precision": precision,
        "steps": result.steps,
        "seconds": result.seconds,
        "top1": result.metrics["top1"],
        "top5": result.metrics["top5"],
        "loss": result.metrics["loss"],
    }
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    if rank != 0:
        return  # one report and one publish per run, from rank 0
    if publish:
        from reszoo.train.publish import TrainedEntry, publish_trained

        entry = TrainedEntry.from_result(
            result, dataset, device_label(torch_device), train_subset=subset, test_subset=test_subset
        )
        try:
            record = publish_trained(open_registry(), publish, result.model, spec, entry, shadow=shadow)
        except KeyboardInterrupt:
            bar.publishing = True
            interrupted_training(bar, checkpoint, force)
        summary["published"] = record.ref
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{spec.summary()}\n{dataset.name}: top-1 {100 * result.metrics['top1']:.2f}%, top-5 "
        f"{100 * result.metrics['top5']:.2f}% after {result.steps} steps in {result.seconds:.0f} s"
        + (f"\npublished {summary['published']}" if publish else ""),
        highlight=False,
    )


@app.command("eval")
def eval_command(
    ref: Annotated[
        str,
        typer.Argument(
            help="A registry entry (NAME, NAME@VERSION, NAME:ALIAS), or with --weights a preset or spec file.",
            show_default=False,
        ),
    ],
    dataset_name: DatasetOption,
    weights: Annotated[
        Path | None, typer.Option(help="A .safetensors file of weights for the architecture REF names.")
    ] = None,
    test_subset: Annotated[
        int | None,
        number_option(SUBSET, "--test-subset", help="Evaluate on this many test images (default: as the entry was)."),
    ] = None,
    data_root: DataRootOption = None,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda or cuda:N.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Evaluate trained weights: top-1, top-5, loss and per-class accuracy on a test split."""
    from reszoo.devices import resolve_device
    from reszoo.train.data import fit_spec
    from reszoo.train.data import load as load_dataset
    from reszoo.train.metrics import evaluate
    from reszoo.zoo.factory import resolve_spec
    from reszoo.zoo.weights import model_from_state_dict, read_weights_file

    torch_device = resolve_device(device)
    if weights is not None:
        dataset = load_dataset(dataset_name, root=data_root).subset(test=test_subset)
        spec = fit_spec(resolve_spec(ref), dataset)
        model = model_from_state_dict(spec, read_weights_file(weights))
        label, stored, mean, std = str(weights), None, dataset.mean, dataset.std
    else:
        from reszoo.zoo.hub import fetch

        entry, model = fetch(ref, registry=state.registry_url)  # pulled from the zoo on first use, as reszoo.load
        dataset = load_dataset(dataset_name, root=data_root).subset(test=test_subset or entry.data.get("test_subset"))
        label, stored = entry.ref, entry.top1
        mean, std = entry.data.get("mean", dataset.mean), entry.data.get("std", dataset.std)
    metrics = evaluate(model.to(torch_device), dataset.test, tuple(mean), tuple(std), device=torch_device)
    if as_json:
        print_json({"ref": label, "dataset": dataset.name, **metrics, "stored_top1": stored})
        return
    stored_text = f" (stored: {100 * stored:.2f}%)" if stored is not None else ""
    console.print(
        f"{label} on {dataset.name} ({metrics['images']} test images): top-1 {100 * metrics['top1']:.2f}%"
        f"{stored_text}, top-5 {100 * metrics['top5']:.2f}%, loss {metrics['loss']:.4f}",
        highlight=False,
    )
