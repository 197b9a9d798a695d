"""``reszoo train`` and ``reszoo eval``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from reszoo.cli.app import app, command_line, console, err_console, interrupted, open_registry, state
from reszoo.cli.options import number_option
from reszoo.cli.render import print_json
from reszoo.errors import UnknownModelError
from reszoo.files import FIGURE_SUFFIXES, check_output_file
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
            help="auto (bfloat16 autocast on a GPU, float32 on a CPU), bfloat16 or float32. On a CPU "
            "with AVX512-BF16, bfloat16 halves a step but cost resnet20 0.9 points of top-1 "
            "after 3 epochs."
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
    bar = TrainingBar(recipe.batch_size, disable=rank != 0)
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
        _interrupted_training(bar, checkpoint, force)
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
            _interrupted_training(bar, checkpoint, force)
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


class TrainingBar:
    """The training bar on stderr: what happens before the first step (decoding a
    data set the first time takes about a minute), then epoch, steps, loss, speed
    and time left; a line per epoch above it. It also remembers how far the run
    got, for the message of an interrupted run."""

    def __init__(self, batch_size: int, *, disable: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.fields[status]}"),
            BarColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=disable,
        )
        self.batch_size = batch_size
        self.last: dict[str, Any] | None = None  # the latest step's report
        self.first: tuple[int, float] | None = None  # (step, time) of the first report: the rate starts there
        self.publishing = False
        self.epochs_seen = 0  # epochs this run finished

    def __enter__(self) -> TrainingBar:
        self.progress.__enter__()
        self.task = self.progress.add_task("train", total=None, status="")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.__exit__(exc_type, exc, tb)

    def status(self, text: str) -> None:
        self.progress.update(self.task, status=text)
        self.progress.refresh()

    def step(self, state: dict[str, Any]) -> None:
        now = time.perf_counter()
        self.first = self.first or (state["step"], now)
        self.last = state
        steps, seconds = state["step"] - self.first[0], now - self.first[1]
        rate = f"  {steps * self.batch_size / seconds:.0f} img/s" if steps and seconds > 0 else ""
        self.progress.update(
            self.task,
            completed=state["step"],
            total=state["total"],
            status=f"epoch {state['epoch']}  {state['step']:,}/{state['total']:,}  loss {state['loss']:.3f}{rate}",
        )

    def epoch(self, record: dict[str, Any]) -> None:
        self.epochs_seen += 1
        self.progress.console.print(
            f"epoch {record['epoch']:>3}  train loss {record['train_loss']:.3f}  train err "
            f"{100 * record['train_err']:5.2f}%  test err {100 * record['test_err']:5.2f}%  "
            f"{record['seconds']:.0f} s",
            highlight=False,
        )


def _interrupted_training(bar: TrainingBar, checkpoint: str | None, force: bool) -> None:
    """Ctrl-C on ``reszoo train``: what was done, and the command that carries on."""
    from reszoo.errors import TrainingError
    from reszoo.train.checkpoints import load_checkpoint

    state = bar.last
    where = (
        "while publishing: a publish is one transaction, so the registry holds all of it or none (reszoo list "
        "says which)"
        if bar.publishing
        else f"at step {state['step']:,} of {state['total']:,} (epoch {state['epoch']})"
        if state
        else "before the first step"
    )
    if checkpoint is None:
        interrupted(
            f"{where}; nothing was saved (only --checkpoint FILE makes a run resumable)",
            command_line(add=("--checkpoint", "run.safetensors")),
        )
    path = Path(checkpoint)
    try:
        done = load_checkpoint(path)[2]["epochs_done"] if path.is_file() else 0
    except TrainingError:
        done = 0
    if force and not bar.epochs_seen:  # the file, if any, is still the run --force was to replace
        interrupted(f"{where}; no epoch had finished, so {checkpoint} is as it was", command_line())
    if not done:
        interrupted(f"{where}; no epoch had finished, so {checkpoint} was not written", command_line())
    interrupted(
        f"{where}; {checkpoint} holds {done} finished epoch{'s' if done != 1 else ''}",
        command_line(drop=("--force",), add=("--resume",)),
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


plot_app = typer.Typer(help="Draw figures from registry entries.", no_args_is_help=True)
app.add_typer(plot_app, name="plot")


@plot_app.command("curves")
def plot_curves_command(
    refs: Annotated[
        list[str],
        typer.Argument(
            help="Trained entries to compare: yours, else the default remote's (the shipped zoo).", show_default=False
        ),
    ],
    out: Annotated[
        str, typer.Option("--out", "-o", help="Image file to write (.png, .svg, .pdf).", show_default=False)
    ],
    title: Annotated[str | None, typer.Option(help="Figure title.")] = None,
) -> None:
    """Training (dashed) and test (bold) error against iterations, as the paper's Figure 6.

    All curves share one recipe: a bare NAME draws its newest version trained
    as the other entries can be (NAME@VERSION picks one).
    """
    from reszoo.errors import EntryNotFoundError, RegistryError
    from reszoo.train.plots import alike, plot_curves
    from reszoo.zoo.hub import remote_url
    from reszoo.zoo.registry import Registry

    check_output_file(out, "--out", suffixes=FIGURE_SUFFIXES)
    # Yours first, then the zoo's. Curves need only the stored history: it is read where it is, nothing is pulled.
    places = [r for r in [open_registry(must_exist=True)] if r is not None]
    try:
        places.append(Registry(remote_url(), readonly=True))
    except RegistryError:
        if not places:
            raise
    requests = []
    for ref in refs:
        pinned = None
        if "@" in ref or ":" in ref:  # name@version or name:alias: that entry, wherever it is first found
            for index, place in enumerate(places):
                try:
                    pinned = place.get(ref)
                    break
                except EntryNotFoundError:
                    if index == len(places) - 1:
                        raise
        name = pinned.name if pinned is not None else ref
        versions: dict[int, Any] = {}
        for place in reversed(places):  # yours win over the zoo's of the same version
            versions.update((e.version, e) for e in place.list(name, all_versions=True) if e.name == name)
        if not versions:
            places[-1].get(ref)  # the zoo's own message, with its suggestions
        requests.append(([versions[v] for v in sorted(versions)], pinned))
    entries = alike(requests)
    older = [
        f"{e.ref} (not {versions[-1].ref})"
        for (versions, pinned), e in zip(requests, entries)
        if pinned is None and e.version != versions[-1].version
    ]
    if older:
        err_console.print(f"drew {', '.join(older)}: the versions trained alike", highlight=False)
    path = plot_curves(entries, out, title=title)
    console.print(f"wrote {path}", highlight=False)
