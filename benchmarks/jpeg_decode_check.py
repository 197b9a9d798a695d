"""GPU check of JPEG decoding: nvjpeg (torchvision, batches of 1024) against
libjpeg on the CPU (through Pillow, which reszoo uses), for the first N images of an archive:
time of each, and how far apart the pixels are. On an H200 (2026-11-27) nvjpeg
was slower (0.099 s vs 0.068 s for 2,000 CIFAR JPEGs) and differed in 43% of
values by up to 87, so reszoo decodes on the CPU everywhere.

    python benchmarks/jpeg_decode_check.py ARCHIVE [--images 2000]
"""

from __future__ import annotations

import argparse
import tarfile
import time
import warnings

import torch

from reszoo.train.data.readers import _decode_on_cpu


def _decode_on_gpu(data: list[bytes]) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    images: list[torch.Tensor] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torchvision 0.29 deprecates its decoders
        for start in range(0, len(data), 1024):
            batch = [torch.frombuffer(bytearray(blob), dtype=torch.uint8) for blob in data[start : start + 1024]]
            images += [image.cpu() for image in decode_jpeg(batch, mode=ImageReadMode.RGB, device="cuda")]
    return images


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("archive")
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    blobs, names = [], []
    with tarfile.open(args.archive, "r:*") as archive:
        for member in archive:
            if member.isfile() and member.name.lower().endswith(".jpg"):
                blobs.append(archive.extractfile(member).read())
                names.append(member.name)
                if len(blobs) == args.images:
                    break
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _decode_on_gpu(blobs[:16])  # nvjpeg's handles and kernels load outside the timing
        torch.cuda.synchronize()
        start = time.perf_counter()
        gpu = torch.stack(_decode_on_gpu(blobs))
        gpu_s = time.perf_counter() - start
    start = time.perf_counter()
    cpu = torch.stack(_decode_on_cpu(blobs, names))
    cpu_s = time.perf_counter() - start
    diff = (gpu.int() - cpu.int()).abs()
    print(
        f"{len(blobs)} JPEGs: nvjpeg {gpu_s:.3f} s, CPU {cpu_s:.3f} s ({cpu_s / gpu_s:.1f}x); "
        f"max pixel difference {int(diff.max())}, {100 * (diff > 0).float().mean():.2f}% of values differ; "
        f"warnings: {[str(w.message)[:80] for w in caught if 'GPU failed' in str(w.message)] or 'none'}"
    )


if __name__ == "__main__":
    main()
