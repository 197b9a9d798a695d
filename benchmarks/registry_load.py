"""reszoo's load of a CIFAR-stem resnet34 from a local registry, against the
baseline of safetensors.torch.load_file + load_state_dict from a file holding
the same weights: into a model built beforehand (outside the timing), and
end to end (building the model by hand too, as a user without reszoo would).

reszoo's figure includes everything a user waits for: reading the blob from
SQLite, checking its sha256 and its fit to the spec, building the net.

    python benchmarks/registry_load.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from timing import median_seconds  # benchmarks/timing.py, beside this script

import reszoo
from reszoo import Registry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    model = reszoo.create_model("resnet34", num_classes=10, stem="cifar").eval()
    with tempfile.TemporaryDirectory() as tmp:
        registry = Registry(Path(tmp) / "registry.db")
        record = registry.add("resnet34-cifar", model)
        file = Path(tmp) / "weights.safetensors"
        save_file(model.state_dict(), str(file))
        target = reszoo.create_model("resnet34", num_classes=10, stem="cifar")

        def by_hand() -> None:
            fresh = reszoo.create_model("resnet34", num_classes=10, stem="cifar")
            fresh.load_state_dict(load_file(str(file)))

        ours = median_seconds(lambda: registry.load("resnet34-cifar"), args.repeats)
        baseline = median_seconds(lambda: target.load_state_dict(load_file(str(file))), args.repeats)
        end_to_end = median_seconds(by_hand, args.repeats)
        loaded = registry.load("resnet34-cifar")
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))
    mb = record.blob_size / 1e6
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; weights {mb:.1f} MB")
    print(f"reszoo Registry.load                          {ours * 1e3:8.1f} ms")
    print(
        f"load_file + load_state_dict (model prebuilt)  {baseline * 1e3:8.1f} ms"
        f"   ratio {ours / baseline:.2f}x (target <= 1.3)"
    )
    print(f"create_model + load_file + load_state_dict    {end_to_end * 1e3:8.1f} ms   ratio {ours / end_to_end:.2f}x")


if __name__ == "__main__":
    main()
