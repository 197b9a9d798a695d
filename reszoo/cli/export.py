"""``reszoo export --format hf|onnx``: an entry as a Hub model folder or an ONNX file.

The ``export`` command itself (and its default, safetensors) is reszoo.cli.registry's;
it hands the other formats to :func:`export_as`.
"""

from __future__ import annotations

from pathlib import Path

from reszoo.cli.app import console, open_registry
from reszoo.errors import InputError

FORMATS = ("safetensors", "hf", "onnx")


def export_as(ref: str, out: Path, fmt: str, *, force: bool = False) -> None:
    """Write entry ``ref`` to ``out`` in format ``hf`` or ``onnx`` and say what was written."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}", field="format", value=fmt)
    registry = open_registry()
    record = registry.get(ref)
    if fmt == "hf":
        from reszoo.export.hf import save_folder

        files = save_folder(registry, record.ref, out, overwrite=force)
        console.print(
            f"wrote {out}: {', '.join(f.name for f in files)}  ({record.ref}, weights sha256 "
            f"{record.blob_sha256[:12]}); load it with reszoo.load({str(out)!r}), upload it with "
            "reszoo.export.hf.push_to_hub",
            highlight=False,
            soft_wrap=True,
        )
        return
    from reszoo.export.onnx import export_entry

    result = export_entry(registry, record.ref, out, overwrite=force)
    console.print(
        f"wrote {result.path} ({result.size / 1e6:.1f} MB, {record.ref}, dynamic batch size)",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"max abs diff against eager PyTorch: {result.max_abs_diff:.2e} (float32, ONNX Runtime "
        f"{result.onnxruntime} on the CPU, batch {' and '.join(map(str, result.batch_sizes))})",
        highlight=False,
        soft_wrap=True,
    )
