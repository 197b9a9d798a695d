"""The training loop: ``train`` and the ``TrainingRun`` it steps.

Data stays on the training device as uint8 (under torchrun, each rank's
shard of it: reszoo.train.distributed) and is augmented there
(reszoo.train.augment). A run is a TrainingRun: set up, resumed from its
checkpoint (reszoo.train.checkpoints), stepped (reszoo.train.steps) and ended
epoch by epoch, tested by reszoo.train.metrics' ``evaluate``, so that a resumed
run repeats the uninterrupted one exactly on a CPU; several runs can share a
GPU on streams (reszoo.train.interleave's ``train_many``, importable from here
too). (About 400 lines: TrainingRun's set-up, resume, epoch and end of epoch
share the run's state, and stay in one class.)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reszoo.devices import resolve_device
from reszoo.errors import DeviceError, InputError, SpecError, TrainingError
from reszoo.limits import EVERY, check_seed
from reszoo.train.augment import AugmentParams, _generator, augment, normalize, shard_order
from reszoo.train.checkpoints import check_checkpoint_path, load_checkpoint, save_checkpoint
from reszoo.train.data import Dataset
from reszoo.train.distributed import data_parallel
from reszoo.train.interleave import train_many as train_many  # re-exported: its home until it moved
from reszoo.train.metrics import evaluate
from reszoo.train.precision import apply_precision, check_precision
from reszoo.train.recipes import Recipe
from reszoo.train.steps import _EagerStep, _GraphStep
from reszoo.zoo.network import build
from reszoo.zoo.spec import ArchSpec


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    recipe: Recipe
    steps: int
    seconds: float
    device: str
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)


def _check_finite(value: float, where: str, checkpoint: Path | None) -> None:
    if not math.isfinite(value):
        kept = f"; the last good checkpoint is {checkpoint}" if checkpoint is not None and checkpoint.is_file() else ""
        raise TrainingError(
            f"loss became {value} at {where}; stopped{kept}. Lower the learning rate or add warm-up (warmup_lr)."
        )


def _param_groups(model: nn.Module, recipe: Recipe) -> list[dict[str, Any]]:
    if recipe.decay_norm_and_bias:
        return [{"params": list(model.parameters()), "weight_decay": recipe.weight_decay}]
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in model.parameters():
        (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(
    spec: ArchSpec,
    dataset: Dataset,
    recipe: Recipe,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    runtime: str = "eager",
    precision: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    report_every: int = 20,
) -> TrainResult:
    """Train ``spec`` on ``dataset`` with ``recipe``.

    Args:
        checkpoint: File to write every ``checkpoint_every`` epochs and at the end.
        resume: Continue from ``checkpoint`` if it exists (same spec, recipe, seed).
        overwrite: Start afresh over an existing ``checkpoint``; without it (or
            ``resume``) an existing file is refused, never silently replaced.
        runtime: ``eager``; ``graph`` (the whole step in one CUDA graph; CUDA only,
            drops a last partial batch); ``compile`` (``torch.compile`` of the model).
        precision: ``bfloat16`` (autocast) or ``float32``; default bfloat16 on
            a GPU and float32 on a CPU (:func:`default_precision` says why).
        on_step / on_epoch: Progress callbacks (the CLI draws its bar with them);
            ``on_step`` runs every ``report_every`` steps, when the loss is also
            checked for NaN (reading it waits for the GPU).

    Raises:
        TrainingError: the loss became NaN or infinite (the last checkpoint is kept).
    """
    run = TrainingRun(
        spec,
        dataset,
        recipe,
        device=device,
        seed=seed,
        runtime=runtime,
        precision=precision,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        overwrite=overwrite,
        on_step=on_step,
        on_epoch=on_epoch,
        report_every=report_every,
    )
    for _ in run.steps():
        pass
    return run.result()


class TrainingRun:
    """One net's training, set up and resumed on construction; :meth:`steps`
    then trains it, yielding after every optimisation step (so that
    :func:`train_many` can interleave several), and :meth:`result` gives the
    trained model and its metrics. Split as timm's ``train_one_epoch`` and
    ``validate``: set-up, resume, one epoch, end of epoch. ``validate_epochs=False``
    skips the test pass after each epoch (its record has the training figures
    only): a search proxy ranked by its training loss needs no per-epoch test.
    """

    def __init__(
        self,
        spec: ArchSpec,
        dataset: Dataset,
        recipe: Recipe,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        runtime: str = "eager",
        precision: str | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        overwrite: bool = False,
        on_step: Callable[[dict[str, Any]], None] | None = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        report_every: int = 20,
        validate_epochs: bool = True,
    ) -> None:
        seed = check_seed(seed)
        checkpoint_every, report_every = (
            int(EVERY.check(v, k)) for k, v in (("checkpoint_every", checkpoint_every), ("report_every", report_every))
        )
        self.device = device = resolve_device(device)
        if (spec.num_classes, spec.in_chans, spec.input_size) != (
            dataset.num_classes,
            dataset.in_chans,
            dataset.input_size,
        ):
            raise SpecError(
                f"spec expects {spec.num_classes} classes of {spec.in_chans}x{spec.input_size}x{spec.input_size} "
                f"images, data set {dataset.name!r} has {dataset.num_classes} of "
                f"{dataset.in_chans}x{dataset.input_size}x{dataset.input_size}; override num_classes, in_chans, "
                "input_size"
            )
        if runtime not in ("eager", "graph", "compile"):
            raise InputError(
                f"training runtime must be 'eager', 'graph' or 'compile', got {runtime!r}", field="runtime"
            )
        self.cuda = cuda = device.type == "cuda"
        self.precision = check_precision(precision or ("bfloat16" if cuda else "float32"))
        # NHWC everywhere: cuDNN's bf16 kernels want it, and on a CPU oneDNN's float32
        # convolutions ran a resnet20 step in 0.75-0.84x the NCHW time (same arithmetic).
        self.channels_last = True
        if runtime == "graph" and not cuda:
            raise DeviceError(f"runtime 'graph' captures CUDA graphs and needs a CUDA device, not {device}; use eager")
        self.rank, self.world = rank, world = data_parallel()
        if recipe.batch_size % world:
            raise InputError(
                f"batch size {recipe.batch_size} does not split over {world} processes", field="batch_size"
            )
        if runtime == "graph" and world > 1:
            raise InputError("runtime 'graph' runs on one GPU; use eager or compile under torchrun", field="runtime")
        self.spec, self.dataset, self.recipe, self.seed, self.runtime = spec, dataset, recipe, seed, runtime
        self.on_step, self.on_epoch, self.report_every = on_step, on_epoch, report_every
        self.validate_epochs = validate_epochs
        self.checkpoint_every = checkpoint_every
        self.path = Path(checkpoint) if checkpoint is not None else None
        if resume and self.path is None:
            raise InputError("resume needs a checkpoint file to resume from (--checkpoint)", field="checkpoint")
        if self.path is not None:
            check_checkpoint_path(self.path, resume=resume, overwrite=overwrite)
        self._set_up_model()
        self._set_up_data()
        self.history: list[dict[str, Any]] = []
        self.start_epoch, self.warming_up = 0, recipe.warmup_lr is not None
        self.identity = {
            "spec": spec.digest,
            "recipe": recipe.to_dict(),
            "seed": seed,
            "data": dataset.fingerprint,
            "precision": self.precision,
        }
        if resume and self.path is not None and self.path.is_file():
            self._resume(self.path)
        self.step = self.start_epoch * self.steps_per_epoch
        self._run_step: _EagerStep | _GraphStep | None = None
        self._started = time.perf_counter() - (self.history[-1]["seconds"] if self.history else 0.0)

    def _set_up_model(self) -> None:
        torch.manual_seed(self.seed)
        model = build(self.spec).to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = apply_precision(model, self.precision)
        self.optimizer = torch.optim.SGD(
            _param_groups(model, self.recipe),
            lr=self.recipe.lr,
            momentum=self.recipe.momentum,
            nesterov=self.recipe.nesterov,
            # The fused kernel reads a tensor learning rate on the device; the
            # default foreach path calls .item() on it, which a capture forbids.
            fused=True if self.runtime == "graph" else None,
        )
        forward: nn.Module = model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            # Each rank trains on its share of every global batch; gradients are
            # averaged, so a step equals one on the whole batch (up to BN, whose
            # statistics stay per rank).
            forward = DistributedDataParallel(model, device_ids=[self.device.index] if self.cuda else None)
        if self.runtime == "compile":
            # torch.compile's stub returns a Callable; given a module it returns an OptimizedModule, a Module.
            forward = torch.compile(forward)  # type: ignore[assignment]
        self.forward = forward

    def _set_up_data(self) -> None:
        dataset, device, rank, world, recipe = self.dataset, self.device, self.rank, self.world, self.recipe
        # Each rank holds only its shard (global indices i with i % world == rank) on
        # its device: a whole copy per GPU would cost world times the memory. The
        # epoch order is still a shuffle of the whole set, only split by shard.
        self.train_images = dataset.train.images[rank::world].to(device)
        self.train_labels = dataset.train.labels[rank::world].to(device)
        self.mean = torch.tensor(dataset.mean, device=device)[None, :, None, None]
        self.std = torch.tensor(dataset.std, device=device)[None, :, None, None]
        self.n = n = len(dataset.train)
        self.n_local, self.local_batch = n // world, recipe.batch_size // world  # the same on every rank
        if self.n_local == 0:
            raise InputError(f"{n} training images do not split over {world} process(es)")
        self.drop_last = self.runtime == "graph"  # a graph replays one batch shape
        if self.drop_last and n < recipe.batch_size:
            raise InputError(f"runtime 'graph' needs at least one full batch of {recipe.batch_size} images, have {n}")
        self.steps_per_epoch = (
            self.n_local // self.local_batch if self.drop_last else math.ceil(self.n_local / self.local_batch)
        )
        self.total = recipe.total_steps(self.steps_per_epoch)
        self.epochs = math.ceil(self.total / self.steps_per_epoch)

    def _resume(self, path: Path) -> None:
        model_state, momentum, meta = load_checkpoint(path)
        if meta["identity"] != self.identity:
            raise TrainingError(
                f"checkpoint {path} belongs to another run (spec, recipe, seed, data or precision differ)"
            )
        self.model.load_state_dict(model_state)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        for index, buffer in momentum.items():
            # empty_like keeps the parameter's layout (channels_last): the fused SGD step
            # of the graph runtime refuses buffers whose strides differ from the weights'.
            param = params[int(index)]
            self.optimizer.state[param]["momentum_buffer"] = torch.empty_like(param).copy_(buffer)
        self.history, self.start_epoch, self.warming_up = meta["history"], meta["epochs_done"], meta["warming_up"]

    def steps(self) -> Iterator[int]:
        """Train every remaining epoch, yielding the step count after each step."""
        for epoch in range(self.start_epoch, self.epochs):
            totals = yield from self._train_one_epoch(epoch)
            self._end_epoch(epoch, *totals)

    def _train_one_epoch(self, epoch: int) -> Generator[int, None, tuple[torch.Tensor, torch.Tensor, int, float]]:
        recipe, device, rank, world = self.recipe, self.device, self.rank, self.world
        self.model.train()
        order = shard_order(torch.randperm(self.n, generator=_generator(self.seed, epoch, 0)), rank, world).to(device)
        starts = range(0, self.n_local, self.local_batch)
        batches = [world * len(order[start : start + self.local_batch]) for start in starts]
        augment_params = AugmentParams.draw_epoch(
            batches, _generator(self.seed, epoch, 1), recipe.crop_padding, rank, world, device
        )
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        lr = recipe.lr
        for batch_start, params in zip(starts, augment_params, strict=True):
            if self.step >= self.total:
                break
            # Global batch k: items [k*b, (k+1)*b) of every rank's order. Its
            # augmentation is drawn whole, so every rank draws the same numbers.
            index = order[batch_start : batch_start + self.local_batch]
            x = augment(self.train_images[index], params, recipe.crop_padding, recipe.flip)
            x = normalize(x, self.mean, self.std)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = self.train_labels[index]
            if self.drop_last and len(y) < self.local_batch:
                break
            # (warming_up is set only where the recipe has a warmup_lr)
            lr = (
                recipe.warmup_lr
                if self.warming_up and recipe.warmup_lr is not None
                else recipe.lr_at(self.step, self.total)
            )
            if self._run_step is None:
                self._run_step = (
                    _GraphStep(self.model, self.optimizer, recipe, (x, y), device, self.precision)
                    if self.runtime == "graph"
                    else _EagerStep(self.forward, self.optimizer, recipe, device, self.precision)
                )
            loss, logits = self._run_step(x, y, lr)
            batch = len(y)
            loss_sum += loss * batch
            correct += (logits.argmax(1) == y).sum()
            seen += batch
            self.step += 1
            # Reading the loss waits for the GPU: do it every report_every steps only.
            if self.step % self.report_every == 0 or self.step == self.total:
                value = loss.item()
                if world == 1:  # under DDP every rank must stop together: checked after the all-reduce
                    _check_finite(value, f"step {self.step} (epoch {epoch + 1}, lr {lr:g})", self.path)
                if self.on_step is not None:
                    self.on_step({"step": self.step, "total": self.total, "epoch": epoch + 1, "loss": value, "lr": lr})
            yield self.step
        return loss_sum, correct, seen, lr

    def _end_epoch(self, epoch: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int, lr: float) -> None:
        """Training error, test error, history record and checkpoint of epoch ``epoch``."""
        device = self.device
        if self.world > 1:
            import torch.distributed as dist

            totals = torch.stack([loss_sum, correct.float(), torch.tensor(float(seen), device=device)])
            dist.all_reduce(totals)
            loss_sum, correct, seen = totals[0], totals[1], int(totals[2].item())
        train_err = 1 - correct.item() / max(seen, 1)
        _check_finite(loss_sum.item(), f"epoch {epoch + 1}", self.path)
        if self.warming_up and train_err < self.recipe.warmup_until_error:
            self.warming_up = False  # the paper's resnet110: back to the schedule once training error < 80%
        record = {
            "epoch": epoch + 1,
            "iteration": self.step,
            "lr": lr,
            "train_loss": loss_sum.item() / max(seen, 1),
            "train_err": train_err,
        }
        if self.validate_epochs:
            # Large batches on a GPU: each one synchronises, and the nets are launch-bound.
            test = evaluate(
                self.model,
                self.dataset.test,
                self.dataset.mean,
                self.dataset.std,
                device=device,
                precision=self.precision,
                batch_size=2000 if self.cuda else 500,
            )
            # The last step's update can break the weights after a finite loss:
            # never checkpoint a net whose test loss is not finite.
            _check_finite(test["loss"], f"the end of epoch {epoch + 1} (test loss)", self.path)
            record.update(test_loss=test["loss"], test_err=1 - test["top1"])
        record["seconds"] = time.perf_counter() - self._started
        self.history.append(record)
        if self.on_epoch is not None:
            self.on_epoch(record)
        last = epoch == self.epochs - 1
        if self.path is not None and self.rank == 0 and ((epoch + 1) % self.checkpoint_every == 0 or last):
            save_checkpoint(
                self.path,
                self.model,
                self.optimizer,
                {
                    "identity": self.identity,
                    "history": self.history,
                    "epochs_done": epoch + 1,
                    "warming_up": self.warming_up,
                },
            )

    def result(self, evaluate_at_end: bool = True) -> TrainResult:
        """The trained net (on the CPU, contiguous) and its float32 test metrics (none
        with ``evaluate_at_end=False``)."""
        metrics = (
            evaluate(self.model, self.dataset.test, self.dataset.mean, self.dataset.std, device=self.device)
            if evaluate_at_end
            else {}
        )
        if metrics:  # the only test pass of a run with validate_epochs=False
            _check_finite(metrics["loss"], "the end of training (test loss)", self.path)
        self.model.eval()
        return TrainResult(
            model=self.model.to("cpu").to(memory_format=torch.contiguous_format),
            history=self.history,
            metrics=metrics,
            recipe=self.recipe,
            steps=self.step,
            seconds=time.perf_counter() - self._started,
            device=str(self.device),
            seed=self.seed,
            extra={"precision": self.precision, "runtime": self.runtime},
        )
