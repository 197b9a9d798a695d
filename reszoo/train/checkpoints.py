"""Training checkpoints: safetensors files of the weights and momentum buffers,
with the run's identity and history as JSON metadata, written whole or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from reszoo.errors import InputError, TrainingError
from reszoo.files import atomic_file, check_output_file


def check_checkpoint_path(path: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse, before any training, a checkpoint path that the first epoch's end
    could not write, or whose file a new run would silently replace."""
    check_output_file(path, "checkpoint")
    if path.exists() and not (resume or overwrite):
        raise InputError(
            f"checkpoint {str(path)!r} already exists; --resume continues that run, --force starts over and replaces it"
        )


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for index, param in enumerate(p for group in optimizer.param_groups for p in group["params"]):
        buffer = optimizer.state.get(param, {}).get("momentum_buffer")
        if buffer is not None:
            tensors[f"optim.momentum.{index}"] = buffer.detach().cpu().contiguous()
    try:
        with atomic_file(path) as tmp:  # a kill mid-write leaves the previous checkpoint whole
            save_file(tensors, str(tmp), metadata={"reszoo": json.dumps(meta)})
    except (OSError, SafetensorError) as exc:  # a full disk surfaces as either
        kept = "; the previous checkpoint is intact" if path.is_file() else ""
        raise TrainingError(f"cannot write checkpoint {path}: {exc} (is the disk full?){kept}") from None


#: What every checkpoint's metadata holds (save_checkpoint's ``meta``).
CHECKPOINT_KEYS = ("identity", "history", "epochs_done", "warming_up")


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    try:
        with safe_open(str(path), "pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("reszoo") or "null")
            if not isinstance(meta, dict) or any(key not in meta for key in CHECKPOINT_KEYS):
                raise TrainingError(
                    f"{path} is not a training checkpoint: it holds no run to resume (a weights file has only "
                    "weights); give the file --checkpoint wrote, or another path to start a new run there"
                )
            model_state, momentum = {}, {}
            for key in handle.keys():
                if key.startswith("model."):
                    model_state[key[len("model.") :]] = handle.get_tensor(key)
                elif key.startswith("optim.momentum."):
                    momentum[key[len("optim.momentum.") :]] = handle.get_tensor(key)
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        raise TrainingError(f"cannot read checkpoint {path}: {exc}") from None
    return model_state, momentum, meta
