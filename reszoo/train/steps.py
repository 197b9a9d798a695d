"""One optimisation step, two ways: eager (the reference), and the whole step
captured in one CUDA graph, each in the precision it is given (reszoo.train.precision).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reszoo.train.precision import PRECISIONS, autocast, check_precision, default_precision, native_bfloat16
from reszoo.train.recipes import Recipe

__all__ = ["PRECISIONS", "check_precision", "default_precision", "native_bfloat16"]  # their home is train.precision


class _EagerStep:
    """One optimisation step, op by op (the reference the fast paths must match)."""

    def __init__(
        self,
        forward: nn.Module,
        optimizer: torch.optim.Optimizer,
        recipe: Recipe,
        device: torch.device,
        precision: str = "float32",
    ):
        self.forward, self.optimizer, self.recipe = forward, optimizer, recipe
        self.precision = precision
        self.device_type = device.type

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.device_type, self.precision):
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

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        recipe: Recipe,
        example: tuple[torch.Tensor, torch.Tensor],
        device: torch.device,
        precision: str = "bfloat16",
    ):
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
            with autocast("cuda", precision, cache_enabled=False):
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
