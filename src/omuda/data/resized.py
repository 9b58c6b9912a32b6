"""Pre-resized copies of a dataset: decode and resize once, not at every iteration.

GTA5 frames are 1914x1052 and Cityscapes' 2048x1024, but training resizes them to
1280x720 and 1024x512 first; decoding the full-size PNG and resizing it is most of the
data loader's work. `omuda prepare KIND ROOT --resize W H` writes
`ROOT/resized_WxH/` with every image (bilinear) and train-id label (nearest) already
resized exactly as `transforms.resize` does, under the same relative paths, and a marker
file last. A dataset whose configured scale has a complete copy reads from it; the crops
are identical to those of the full-size files (PNG is lossless). Evaluation reads the
resized image but keeps the full-size label, as without a copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from omuda.data import transforms
from omuda.data.io import atomic_write_bytes, read_image, read_label, write_image, write_label
from omuda.errors import OmudaError

MARKER_FILE = "resized.json"


def resized_folder(root: Path, scale: Sequence[int]) -> Path:
    """`ROOT/resized_WxH` for scale = (width, height)."""
    return Path(root) / f"resized_{int(scale[0])}x{int(scale[1])}"


def find_resized_copy(root: Path, scale: Sequence[int]) -> Path | None:
    """The complete pre-resized copy of `root` at `scale`, or None (no copy, or unfinished)."""
    folder = resized_folder(root, scale)
    return folder if (folder / MARKER_FILE).is_file() else None


@dataclass
class ResizeReport:
    """What `write_resized_copy` did: pairs written, and the folder."""

    folder: Path
    written: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"resized copy in {self.folder}: {self.written} pairs, {len(self.problems)} problems"


def _resize_pair(job: tuple[Path, Path, Path, Path, tuple[int, int]]) -> str | None:
    image_path, label_path, image_out, label_out, scale = job
    try:
        image, label = transforms.resize(read_image(image_path), read_label(label_path), scale)
        write_image(image_out, image)
        write_label(label_out, label)
    except OmudaError as error:
        return str(error)
    return None


def write_resized_copy(
    root: Path,
    pairs: Sequence[tuple[Path, Path]],
    scale: Sequence[int],
    workers: int = 0,
    progress: bool = True,
) -> ResizeReport:
    """Write the resized copy of `pairs` (image, train-id label paths under `root`).

    scale = (width, height) of the keep-ratio resize. The marker file is written last and
    only when every pair succeeded, so a failed or interrupted run leaves no usable copy.
    """
    root = Path(root)
    scale = (int(scale[0]), int(scale[1]))
    if min(scale) <= 0:
        raise OmudaError(f"--resize needs a positive width and height, got {scale}")
    folder = resized_folder(root, scale)
    (folder / MARKER_FILE).unlink(missing_ok=True)
    jobs = [
        (image, label, folder / image.relative_to(root), folder / label.relative_to(root), scale)
        for image, label in pairs
    ]
    results: Iterable[str | None]
    if workers <= 1:
        results = map(_resize_pair, jobs)
    else:
        executor = ProcessPoolExecutor(max_workers=workers)
        results = executor.map(_resize_pair, jobs, chunksize=max(1, len(jobs) // (workers * 16)))
    report = ResizeReport(folder)
    for problem in tqdm(
        results, total=len(jobs), desc=f"resize {scale[0]}x{scale[1]}", disable=not progress
    ):
        if problem is None:
            report.written += 1
        else:
            report.problems.append(problem)
    if workers > 1:
        executor.shutdown()
    if not report.problems:
        marker = {"scale": list(scale), "pairs": report.written}
        atomic_write_bytes(folder / MARKER_FILE, json.dumps(marker).encode())
    return report
