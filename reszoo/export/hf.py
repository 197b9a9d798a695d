"""A registry entry as a Hugging Face Hub model folder, and back.

The folder holds what a Hub user expects:

- ``model.safetensors``: the entry's weights, byte for byte as the registry
  stores them, so its sha256 is the entry's;
- ``config.json`` in timm's layout (``architecture``, ``num_classes``,
  ``num_features``, ``global_pool``, ``label_names``, ``pretrained_cfg``), plus
  a ``reszoo`` key with the architecture spec and the entry's checksums;
- ``README.md``: the model card (reszoo.export.card), and ``curves.png``, the
  training curves it shows.

:func:`load_folder` builds the net back from such a folder, the weights
checked against the sha256 in ``config.json`` and against the spec;
:func:`from_pretrained` does so for a folder or a Hub repository (downloaded
once by huggingface_hub, then read from its cache); :func:`push_to_hub`
uploads an entry's folder to a Hub repository.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reszoo.errors import ConflictError, InputError, RemoteUnavailableError, WeightsError
from reszoo.files import atomic_write_bytes, atomic_write_text, ensure_folder
from reszoo.zoo import weights as W
from reszoo.zoo.describe import pretrained_cfg
from reszoo.zoo.facts import has_curves
from reszoo.zoo.spec import ArchSpec

if TYPE_CHECKING:
    from reszoo.zoo.network import ReszooNet
    from reszoo.zoo.records import EntryRecord
    from reszoo.zoo.registry import Registry

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
FIGURE_FILE = "curves.png"
#: The files a folder is made of; only these are replaced by a new export.
FOLDER_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE, FIGURE_FILE)
#: Bumped when ``config.json``'s ``reszoo`` key changes meaning.
CONFIG_FORMAT = 1
#: How timm's loaders name a Hub repository, accepted here too.
HUB_PREFIX = "hf-hub:"
#: A Hub repository id: ``user/repo``.
REPO_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def hub_config(record: EntryRecord) -> dict[str, Any]:
    """``config.json`` for ``record``: timm's fields, and the spec under ``reszoo``."""
    cfg = pretrained_cfg(record.spec, record.data, ref=record.ref, dataset=record.dataset, sha256=record.blob_sha256)
    architecture = cfg.pop("architecture")
    config: dict[str, Any] = {
        "architecture": architecture,
        "num_classes": record.spec.num_classes,
        "num_features": record.spec.feature_dim,
        "global_pool": "avg",
    }
    if cfg.get("label_names"):
        config["label_names"] = list(cfg["label_names"])
    config["pretrained_cfg"] = {key: value for key, value in cfg.items() if value is not None}
    config["reszoo"] = {
        "format": CONFIG_FORMAT,
        "ref": record.ref,
        "spec": record.spec.to_dict(),
        "arch_digest": record.arch_digest,
        "weights_sha256": record.blob_sha256,
        "dataset": record.dataset,
        "top1": record.top1,
    }
    return config


def save_folder(
    registry: Registry, ref: str, out: str | os.PathLike[str], *, overwrite: bool = False, repo_id: str | None = None
) -> list[Path]:
    """Write the entry ``ref`` as a Hub model folder at ``out``; returns the files written.

    Args:
        overwrite: Replace the folder's model files if they exist (other files are left alone).
        repo_id: The Hub repository the folder is meant for, shown in the card's example.
    """
    from reszoo.export.card import model_card

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{str(out)!r} is a file; give a folder to write the model into", field="out")
    held = [name for name in FOLDER_FILES if (out / name).exists()]
    if held and not overwrite:
        raise ConflictError(
            f"{str(out)!r} already holds {', '.join(held)}; choose another folder or allow overwriting (--force)"
        )
    record = registry.get(ref)
    data = registry.blob(record.ref)  # verified against its sha256
    ensure_folder(out, "the model folder")
    written = [
        atomic_write_bytes(out / WEIGHTS_FILE, data),
        atomic_write_text(out / CONFIG_FILE, json.dumps(hub_config(record), indent=2) + "\n"),
    ]
    figure = None
    if has_curves(record):
        from reszoo.train.plots import plot_curves

        figure = plot_curves([record], out / FIGURE_FILE, title=f"{record.ref} on {record.dataset}")
        written.append(figure)
    elif (out / FIGURE_FILE).exists():
        (out / FIGURE_FILE).unlink()  # an earlier export's curves, not this entry's
    card = model_card(
        record, registry.latency(record.arch_digest), figure=figure.name if figure else None, repo_id=repo_id
    )
    written.append(atomic_write_text(out / CARD_FILE, str(card)))
    return written


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config.json`` of a reszoo model folder, checked to be one."""
    path = Path(folder) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(
            f"{str(folder)!r} holds no {CONFIG_FILE}: not a model folder (write one with "
            "reszoo export NAME --format hf --out DIR)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WeightsError(f"cannot read {path}: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("reszoo"), dict) or "spec" not in config["reszoo"]:
        raise WeightsError(
            f"{path} has no 'reszoo' spec: not a folder reszoo wrote (a timm folder loads with "
            "timm.create_model('local-dir:...'))"
        )
    return config


def load_folder(folder: str | os.PathLike[str]) -> ReszooNet:
    """The net a Hub model folder holds, float32, in eval mode, with its ``pretrained_cfg``.

    The spec is read from ``config.json`` and checked against its digest; the
    weights are checked against the sha256 written there, then against the spec.
    """
    folder = Path(folder)
    config = read_config(folder)
    meta = config["reszoo"]
    spec = ArchSpec.from_dict(meta["spec"])
    if meta.get("arch_digest") not in (None, spec.digest):
        raise WeightsError(
            f"{folder / CONFIG_FILE}: its spec hashes to {spec.digest[:12]}, not the "
            f"{str(meta['arch_digest'])[:12]} it names; the folder was changed"
        )
    weights = folder / WEIGHTS_FILE
    sha = meta.get("weights_sha256")
    if sha:
        try:
            data = weights.read_bytes()
        except OSError as exc:
            raise WeightsError(f"cannot read {weights}: {exc.strerror or exc}") from None
        W.verify(data, sha, what=str(weights))
        state = W.deserialize(data)
    else:
        state = W.read_weights_file(weights)
        sha = W.sha256(weights.read_bytes())
    model = W.model_from_state_dict(spec, state)
    cfg = config.get("pretrained_cfg") or {}
    data_info = {"mean": cfg.get("mean"), "std": cfg.get("std"), "classes": config.get("label_names")}
    model.pretrained_cfg = pretrained_cfg(
        spec, data_info, ref=str(meta.get("ref") or config.get("architecture")), dataset=meta.get("dataset"), sha256=sha
    )
    return model


def from_pretrained(
    name_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> ReszooNet:
    """A net from a model folder, or from a Hub repository (``user/repo`` or
    ``hf-hub:user/repo``), which huggingface_hub downloads once into its cache.

    Args:
        revision: A branch, tag or commit of the repository.
        local_files_only: Read the cache only, never the network.
        token: A Hub token for private repositories (default: huggingface_hub's login).

    Example:
        >>> model = reszoo.from_pretrained("user/resnet20-cifar10")
    """
    text = str(name_or_path)
    if not text.startswith(HUB_PREFIX) and (
        isinstance(name_or_path, os.PathLike) or Path(text).is_dir() or not REPO_ID_RE.fullmatch(text)
    ):
        return load_folder(name_or_path)
    repo_id = text.removeprefix(HUB_PREFIX)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
            local_files_only=local_files_only,
            token=token,
            allow_patterns=[CONFIG_FILE, WEIGHTS_FILE],
        )
    except (RepositoryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        hint = "" if text.startswith(HUB_PREFIX) else " (nor is there a folder of that name here)"
        raise RemoteUnavailableError(
            f"cannot fetch Hub repository {repo_id!r}{hint}: {str(exc).splitlines()[0]}"
        ) from None
    model = load_folder(folder)
    model.pretrained_cfg["hf_hub_id"] = repo_id
    return model


def push_to_hub(
    registry: Registry,
    ref: str,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload the entry ``ref`` as a model folder to the Hub repository ``repo_id``
    (created if missing); returns the commit's URL. Needs a Hub token
    (``hf auth login`` or ``token=``).

    Example:
        >>> push_to_hub(reszoo.Registry("registry.db"), "resnet20", "me/resnet20-cifar10")
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="reszoo-hub-") as folder:
        save_folder(registry, ref, folder, repo_id=repo_id)
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=commit_message or f"reszoo {registry.get(ref).ref}"
        )
    return str(commit.commit_url)
