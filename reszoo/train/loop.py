"""The training loop, evaluation and checkpoints.

Data stays on the training device as uint8 (under torchrun, each rank's
shard of it) and is augmented there (pad and crop, flip). Every epoch's order
and augmentation come from generators seeded by (seed, epoch), and checkpoints
(safetensors: weights and momentum buffers, plus JSON metadata) are written at
epoch ends, so a resumed run repeats the uninterrupted one exactly on a CPU.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from reszoo.errors import DeviceError, SpecError, TrainingError
from reszoo.train.data import Dataset, ImageSet
from reszoo.train.recipes import Recipe
from reszoo.zoo.network import build
from reszoo.zoo.spec import ArchSpec


def _generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7 + stream)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (images.float().div_(255) - mean) / std


@dataclass(frozen=True)
class AugmentParams:
    """Random crop offsets and flips for one global batch, drawn once so that
    every data-parallel rank applies the ones of its own samples."""

    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor

    @classmethod
    def draw(cls, batch: int, generator: torch.Generator, padding: int) -> AugmentParams:
        dy = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
        return cls(dy, dx, torch.rand(batch, generator=generator) < 0.5)

    def shard(self, rank: int, world: int) -> AugmentParams:
        """Rank ``rank``'s contiguous share: every rank's part of a global batch has the same length."""
        size = len(self.flip) // world
        part = slice(rank * size, (rank + 1) * size)
        return AugmentParams(self.dy[part], self.dx[part], self.flip[part])


def shard_order(permutation: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s epoch order, as indices into its shard of the training set.

    Global image ``i`` lives on rank ``i % world`` at local index ``i // world``.
    A rank visits its images in the order of the global ``permutation`` and stops
    after ``len(permutation) // world`` of them, so that every rank takes the
    same number of steps. With one process this is ``permutation`` itself.
    """
    mine = permutation[permutation % world == rank] // world
    return mine[: len(permutation) // world]


def augment(images: torch.Tensor, params: AugmentParams, padding: int, flip: bool) -> torch.Tensor:
    """Crops of the zero-padded batch and horizontal flips, on the batch's device."""
    batch, _, height, width = images.shape
    device = images.device
    if padding:
        padded = F.pad(images, (padding, padding, padding, padding))
        rows = (params.dy.to(device)[:, None] + torch.arange(height, device=device))[:, None, :, None]
        cols = (params.dx.to(device)[:, None] + torch.arange(width, device=device))[:, None, None, :]
        index = torch.arange(batch, device=device)[:, None, None, None]
        channels = torch.arange(images.shape[1], device=device)[None, :, None, None]
        images = padded[index, channels, rows, cols]
    if flip:
        images = torch.where(params.flip.to(device)[:, None, None, None], images.flip(-1), images)
    return images


def data_parallel() -> tuple[int, int]:
    """(rank, world size) of an initialised torch.distributed group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: ImageSet,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 500,
) -> dict[str, Any]:
    """Top-1, top-5 (fractions), mean cross-entropy and per-class top-1 of ``model`` on ``data``."""
    device = torch.device(device)
    if len(data) == 0:
        raise SpecError("cannot evaluate on an empty test set")
    was_training = model.training
    model.eval()
    mean_t = torch.tensor(mean, device=device)[None, :, None, None]
    std_t = torch.tensor(std, device=device)[None, :, None, None]
    num_classes = None
    correct1 = correct5 = 0
    loss_sum = 0.0
    per_class_correct = per_class_total = None
    for start in range(0, len(data), batch_size):
        x = normalize(data.images[start : start + batch_size].to(device), mean_t, std_t)
        y = data.labels[start : start + batch_size].to(device)
        logits = model(x).float()
        if num_classes is None:
            num_classes = logits.shape[1]
            per_class_correct = torch.zeros(num_classes, device=device)
            per_class_total = torch.zeros(num_classes, device=device)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        top = logits.topk(min(5, num_classes), dim=1).indices
        hit1 = top[:, 0] == y
        correct1 += int(hit1.sum())
        correct5 += int((top == y[:, None]).any(dim=1).sum())
        per_class_correct.index_add_(0, y, hit1.float())
        per_class_total.index_add_(0, y, torch.ones_like(y, dtype=torch.float))
    model.train(was_training)
    n = len(data)
    per_class = (per_class_correct / per_class_total.clamp(min=1)).tolist() if n else []
    return {"top1": correct1 / n, "top5": correct5 / n, "loss": loss_sum / n, "per_class_top1": per_class, "images": n}


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


class _EagerStep:
    """One optimisation step, op by op (the reference the fast paths must match)."""

    def __init__(self, forward: nn.Module, optimizer: torch.optim.Optimizer, recipe: Recipe, device: torch.device):
        self.forward, self.optimizer, self.recipe = forward, optimizer, recipe
        self.autocast = device.type == "cuda"  # bf16 on GPUs; CPUs stay in float32
        self.device_type = device.type

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.forward(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.recipe.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), logits.detach()


class _GraphStep:
    """The whole step (forward, backward, SGD update) captured in one CUDA graph
    and replayed: the paper's nets are launch-bound, and a replay launches once.

    Batches must all have the capture's shape (the run drops a last partial
    batch). The learning rate lives in a device tensor the replay reads. The
    warm-up steps that capture needs are undone (weights and momentum restored
    in place), so the run starts from the same state as an eager one.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, recipe: Recipe,
                 example: tuple[torch.Tensor, torch.Tensor], device: torch.device):
        self.lr = torch.tensor(recipe.lr, device=device)
        for group in optimizer.param_groups:
            group["lr"] = self.lr
        self.static_x, self.static_y = example[0].clone(), example[1].clone()
        snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
        momentum = {  # a resumed run arrives with momentum buffers; keep them
            param: state["momentum_buffer"].clone()
            for param, state in optimizer.state.items()
            if state.get("momentum_buffer") is not None
        }

        def step() -> tuple[torch.Tensor, torch.Tensor]:
            # cache_enabled=False: autocast's weight-cast cache must not outlive a capture.
            with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
                logits = model(self.static_x)
                loss = F.cross_entropy(logits.float(), self.static_y, label_smoothing=recipe.label_smoothing)
            loss.backward()
            optimizer.step()
            return loss.detach(), logits.detach()

        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                optimizer.zero_grad(set_to_none=True)
                step()
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.loss, self.logits = step()
        with torch.no_grad():
            model.load_state_dict(snapshot)  # copies in place: the graph's tensors stay put
            for param, state in optimizer.state.items():
                buffer = state["momentum_buffer"]
                if param in momentum:
                    buffer.copy_(momentum[param])
                else:
                    buffer.zero_()  # a zero buffer makes SGD's first update equal to eager's

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        self.static_x.copy_(x)
        self.static_y.copy_(y)
        self.lr.fill_(lr)
        self.graph.replay()
        return self.loss, self.logits


def _check_finite(value: float, where: str, checkpoint: Path | None) -> None:
    if not math.isfinite(value):
        kept = f"; the last good checkpoint is {checkpoint}" if checkpoint is not None and checkpoint.is_file() else ""
        raise TrainingError(
            f"loss became {value} at {where}; stopped{kept}. Lower the learning rate or add warm-up (warmup_lr)."
        )


def _param_groups(model: nn.Module, recipe: Recipe) -> list[dict[str, Any]]:
    if recipe.decay_norm_and_bias:
        return [{"params": list(model.parameters()), "weight_decay": recipe.weight_decay}]
    decay, no_decay = [], []
    for param in model.parameters():
        (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for index, param in enumerate(p for group in optimizer.param_groups for p in group["params"]):
        buffer = optimizer.state.get(param, {}).get("momentum_buffer")
        if buffer is not None:
            tensors[f"optim.momentum.{index}"] = buffer.detach().cpu().contiguous()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp), metadata={"reszoo": json.dumps(meta)})
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint whole


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    try:
        with safe_open(str(path), "pt") as handle:
            meta = json.loads(handle.metadata()["reszoo"])
            model_state, momentum = {}, {}
            for key in handle.keys():
                if key.startswith("model."):
                    model_state[key[len("model.") :]] = handle.get_tensor(key)
                elif key.startswith("optim.momentum."):
                    momentum[key[len("optim.momentum.") :]] = handle.get_tensor(key)
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        raise TrainingError(f"cannot read checkpoint {path}: {exc}") from None
    return model_state, momentum, meta


def train(
    spec: ArchSpec,
    dataset: Dataset,
    recipe: Recipe,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    runtime: str = "eager",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    report_every: int = 20,
) -> TrainResult:
    """Train ``spec`` on ``dataset`` with ``recipe``.

    Args:
        checkpoint: File to write every ``checkpoint_every`` epochs and at the end.
        resume: Continue from ``checkpoint`` if it exists (same spec, recipe, seed).
        runtime: ``eager``; ``graph`` (the whole step in one CUDA graph; CUDA only,
            drops a last partial batch); ``compile`` (``torch.compile`` of the model).
        on_step / on_epoch: Progress callbacks (the CLI draws its bar with them);
            ``on_step`` runs every ``report_every`` steps, when the loss is also
            checked for NaN (reading it waits for the GPU).

    Raises:
        TrainingError: the loss became NaN or infinite (the last checkpoint is kept).
    """
    device = torch.device(device)
    if (spec.num_classes, spec.in_chans, spec.input_size) != (dataset.num_classes, dataset.in_chans, dataset.input_size):
        raise SpecError(
            f"spec expects {spec.num_classes} classes of {spec.in_chans}x{spec.input_size}x{spec.input_size} images, "
            f"data set {dataset.name!r} has {dataset.num_classes} of "
            f"{dataset.in_chans}x{dataset.input_size}x{dataset.input_size}; override num_classes, in_chans, input_size"
        )
    if runtime not in ("eager", "graph", "compile"):
        raise SpecError(f"training runtime must be 'eager', 'graph' or 'compile', got {runtime!r}", field="runtime")
    cuda = device.type == "cuda"
    if runtime == "graph" and not cuda:
        raise DeviceError(f"runtime 'graph' captures CUDA graphs and needs a CUDA device, not {device}; use eager")
    rank, world = data_parallel()
    if recipe.batch_size % world:
        raise SpecError(f"batch size {recipe.batch_size} does not split over {world} processes", field="batch_size")
    torch.manual_seed(seed)
    model = build(spec).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    if runtime == "graph" and world > 1:
        raise SpecError("runtime 'graph' runs on one GPU; use eager or compile under torchrun", field="runtime")
    optimizer = torch.optim.SGD(
        _param_groups(model, recipe),
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        # The fused kernel reads a tensor learning rate on the device; the
        # default foreach path calls .item() on it, which a capture forbids.
        fused=True if runtime == "graph" else None,
    )
    forward: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Each rank trains on its share of every global batch; gradients are
        # averaged, so a step equals one on the whole batch (up to BN, whose
        # statistics stay per rank).
        forward = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    if runtime == "compile":
        forward = torch.compile(forward)
    # Each rank holds only its shard (global indices i with i % world == rank) on
    # its device: a whole copy per GPU would cost world times the memory. The
    # epoch order is still a shuffle of the whole set, only split by shard.
    train_images = dataset.train.images[rank::world].to(device)
    train_labels = dataset.train.labels[rank::world].to(device)
    mean = torch.tensor(dataset.mean, device=device)[None, :, None, None]
    std = torch.tensor(dataset.std, device=device)[None, :, None, None]
    n = len(dataset.train)
    n_local, local_batch = n // world, recipe.batch_size // world  # the same on every rank
    if n_local == 0:
        raise SpecError(f"{n} training images do not split over {world} process(es)")
    drop_last = runtime == "graph"  # a graph replays one batch shape
    if drop_last and n < recipe.batch_size:
        raise SpecError(f"runtime 'graph' needs at least one full batch of {recipe.batch_size} images, have {n}")
    steps_per_epoch = n_local // local_batch if drop_last else math.ceil(n_local / local_batch)
    total = recipe.total_steps(steps_per_epoch)
    epochs = math.ceil(total / steps_per_epoch)
    history: list[dict[str, Any]] = []
    start_epoch, warming_up = 0, recipe.warmup_lr is not None
    identity = {"spec": spec.digest, "recipe": recipe.to_dict(), "seed": seed, "data": dataset.fingerprint}
    path = Path(checkpoint) if checkpoint is not None else None
    if resume and path is None:
        raise SpecError("resume needs a checkpoint file to resume from (--checkpoint)", field="checkpoint")
    if resume and path is not None and path.is_file():
        model_state, momentum, meta = load_checkpoint(path)
        if meta["identity"] != identity:
            raise TrainingError(f"checkpoint {path} belongs to another run (spec, recipe, seed or data differ)")
        model.load_state_dict(model_state)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for index, buffer in momentum.items():
            optimizer.state[params[int(index)]]["momentum_buffer"] = buffer.to(device)
        history, start_epoch, warming_up = meta["history"], meta["epochs_done"], meta["warming_up"]

    run_step: _EagerStep | _GraphStep | None = None
    started = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, epochs):
        model.train()
        order = shard_order(torch.randperm(n, generator=_generator(seed, epoch, 0)), rank, world).to(device)
        aug = _generator(seed, epoch, 1)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        lr = recipe.lr
        for batch_start in range(0, n_local, local_batch):
            if step >= total:
                break
            # Global batch k: items [k*b, (k+1)*b) of every rank's order. Its
            # augmentation is drawn whole, so every rank draws the same numbers.
            index = order[batch_start : batch_start + local_batch]
            params = AugmentParams.draw(world * len(index), aug, recipe.crop_padding).shard(rank, world)
            x = augment(train_images[index], params, recipe.crop_padding, recipe.flip)
            x = normalize(x, mean, std)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            y = train_labels[index]
            if drop_last and len(y) < local_batch:
                break
            lr = recipe.warmup_lr if warming_up else recipe.lr_at(step, total)
            if run_step is None:
                run_step = (
                    _GraphStep(model, optimizer, recipe, (x, y), device)
                    if runtime == "graph"
                    else _EagerStep(forward, optimizer, recipe, device)
                )
            loss, logits = run_step(x, y, lr)
            batch = len(y)
            loss_sum += loss * batch
            correct += (logits.argmax(1) == y).sum()
            seen += batch
            step += 1
            # Reading the loss waits for the GPU: do it every report_every steps only.
            if step % report_every == 0 or step == total:
                value = loss.item()
                if world == 1:  # under DDP every rank must stop together: checked after the all-reduce
                    _check_finite(value, f"step {step} (epoch {epoch + 1}, lr {lr:g})", path)
                if on_step is not None:
                    on_step({"step": step, "total": total, "epoch": epoch + 1, "loss": value, "lr": lr})
        if world > 1:
            import torch.distributed as dist

            totals = torch.stack([loss_sum, correct.float(), torch.tensor(float(seen), device=device)])
            dist.all_reduce(totals)
            loss_sum, correct, seen = totals[0], totals[1], int(totals[2].item())
        train_err = 1 - correct.item() / max(seen, 1)
        _check_finite(loss_sum.item(), f"epoch {epoch + 1}", path)
        if warming_up and train_err < recipe.warmup_until_error:
            warming_up = False  # the paper's resnet110: back to the schedule once training error < 80%
        test = evaluate(model, dataset.test, dataset.mean, dataset.std, device=device)
        # The last step's update can break the weights after a finite loss:
        # never checkpoint a net whose test loss is not finite.
        _check_finite(test["loss"], f"the end of epoch {epoch + 1} (test loss)", path)
        record = {
            "epoch": epoch + 1,
            "iteration": step,
            "lr": lr,
            "train_loss": loss_sum.item() / max(seen, 1),
            "train_err": train_err,
            "test_loss": test["loss"],
            "test_err": 1 - test["top1"],
            "seconds": time.perf_counter() - started,
        }
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        last = epoch == epochs - 1
        if path is not None and rank == 0 and ((epoch + 1) % checkpoint_every == 0 or last):
            save_checkpoint(
                path, model, optimizer,
                {"identity": identity, "history": history, "epochs_done": epoch + 1, "warming_up": warming_up},
            )
    metrics = evaluate(model, dataset.test, dataset.mean, dataset.std, device=device)
    model.eval()
    return TrainResult(
        model=model.to("cpu").to(memory_format=torch.contiguous_format),
        history=history,
        metrics=metrics,
        recipe=recipe,
        steps=step,
        seconds=time.perf_counter() - started,
        device=str(device),
        seed=seed,
    )


def init_distributed(device: torch.device) -> torch.device:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_*):
    NCCL on GPUs, gloo on CPUs. Returns the device this rank trains on."""
    import torch.distributed as dist

    if dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device
