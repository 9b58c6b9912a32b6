"""Time one training sample's loading at GTA5's real frame size, with and without the
pre-resized copy that `omuda prepare --resize` writes.

Usage: .venv/bin/python scripts/bench_data.py [--frames 16]

The frames are the procedural renderer's scenes at GTA5's 1914x1052 (no real GTA5 frame
can be downloaded here); loading = PNG decode + keep-ratio resize to 1280x720 + 512 crop +
flip, as the training loader does in each worker.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from omuda.data import io
from omuda.data.datasets import SampleRequest, SegmentationDataset, gta_pairs
from omuda.data.resized import find_resized_copy, write_resized_copy
from omuda.data.synthetic import DEFAULT_SHIFT, render_scene

FRAME = (1052, 1914)  # GTA5 (height, width)
SCALE = (1280, 720)
CROP = (512, 512)


def _time_items(dataset: SegmentationDataset, count: int) -> float:
    seconds = []
    for index in range(count):
        start = time.perf_counter()
        dataset[SampleRequest(index % len(dataset), None, seed=index)]
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "gta"
        for index in range(args.frames):
            rng = np.random.default_rng(index)
            image, label = render_scene(rng, "gta", DEFAULT_SHIFT, *FRAME)
            io.write_image(root / "images" / f"{index:05d}.png", image)
            io.write_label(root / "labels" / f"{index:05d}_labelTrainIds.png", label)
        pairs = gta_pairs(root)
        size_mb = sum(p.stat().st_size for p, _ in pairs) / len(pairs) / 1e6
        full = SegmentationDataset(pairs, SCALE, CROP, cat_max_ratio=1.0)
        full_s = _time_items(full, 3 * args.frames)
        write_resized_copy(root, pairs, SCALE, progress=False)
        copy = (root, find_resized_copy(root, SCALE, pairs)[0])
        resized = SegmentationDataset(pairs, SCALE, CROP, cat_max_ratio=1.0, resized_copy=copy)
        resized_s = _time_items(resized, 3 * args.frames)
    print(f"{args.frames} frames {FRAME[1]}x{FRAME[0]}, {size_mb:.1f} MB PNG each, 1 process")
    print(f"full-size files: {full_s * 1e3:.1f} ms per sample")
    print(f"resized copy:    {resized_s * 1e3:.1f} ms per sample ({full_s / resized_s:.1f}x)")


if __name__ == "__main__":
    main()
