"""One optimisation step, three ways: eager (the reference), and the whole step
captured in one CUDA graph; and the precision each runs in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reszoo.errors import InputError
from reszoo.train.recipes import Recipe


PRECISIONS = ("float32", "bfloat16")


def default_precision(device: str | torch.device) -> str:
    """bf16 autocast on a GPU; float32 on a CPU.

    On this project's CPU (AVX512-BF16 and AMX) bf16 autocast halves a resnet20
    step, but it did not learn as well: after 3 epochs of CIFAR-10 (JPEG q75)
    its top-1 was 0.55 to 1.24 points under float32's in each of 3 seeds (mean
    0.86; benchmarks/README.md). ``precision="bfloat16"`` stays available for
    runs that value speed over the last point.
    """
    return "bfloat16" if torch.device(device).type == "cuda" else "float32"


def native_bfloat16(device: str | torch.device) -> bool:
    """Whether bf16 matmuls and convolutions run natively here: a CUDA GPU, or a CPU
    with AVX512-BF16 or AMX (oneDNN's own check). Elsewhere bf16 autocast on a CPU
    is emulated and slower than float32."""
    if torch.device(device).type == "cuda":
        return True
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}",
                        field="precision", value=precision)
    return precision


class _EagerStep:
    """One optimisation step, op by op (the reference the fast paths must match)."""

    def __init__(self, forward: nn.Module, optimizer: torch.optim.Optimizer, recipe: Recipe, device: torch.device,
                 precision: str = "float32"):
        self.forward, self.optimizer, self.recipe = forward, optimizer, recipe
        self.autocast = precision == "bfloat16"
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
                 example: tuple[torch.Tensor, torch.Tensor], device: torch.device, precision: str = "bfloat16"):
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
            with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False, enabled=precision == "bfloat16"):
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
