"""Pre-resized copies of a dataset: decode and resize once, not at every iteration.

GTA5 frames are 1914x1052 and Cityscapes' 2048x1024, but training resizes them to
1280x720 and 1024x512 first; decoding the full-size PNG and resizing it is most of the
data loader's work. `omuda prepare KIND ROOT --resize W H` writes
`ROOT/resized_WxH/` with every image (bilinear) and train-id label (nearest) already
resized exactly as `transforms.resize` does, under the same relative paths, and a marker
file last that records each source file's size and modification time. A dataset whose
configured scale has a copy holding all its pairs, unchanged since, reads from it; the crops
are identical to those of the full-size files (PNG is lossless). Evaluation reads the
resized image but keeps the full-size label, as without a copy.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from omuda.data import transforms
from omuda.data.io import atomic_write_bytes, read_image, read_label, write_image, write_label
from omuda.data.workers import process_pool
from omuda.errors import OmudaError

MARKER_FILE = "resized.json"


def resized_folder(root: Path, scale: Sequence[int]) -> Path:
    """`ROOT/resized_LxS` for scale = (width, height): long side first, since the keep-ratio
    resize treats (1280, 720) and (720, 1280) alike."""
    long_side, short_side = max(scale), min(scale)
    return Path(root) / f"resized_{int(long_side)}x{int(short_side)}"


def _file_stamps(root: Path, pairs: Sequence[tuple[Path, Path]]) -> dict[str, list[int]]:
    """{path relative to root: [size, modification time in ns]} of every source file."""
    stamps = {}
    for pair in pairs:
        for path in pair:
            stat = path.stat()
            stamps[path.relative_to(root).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return stamps


def find_resized_copy(
    root: Path, scale: Sequence[int], pairs: Sequence[tuple[Path, Path]]
) -> tuple[Path | None, str]:
    """The complete, up-to-date pre-resized copy of `pairs` at `scale`, or None and why not.

    Every pair must be in the copy with its source files unchanged since (same size and
    modification time); otherwise the copy is stale for these pairs and not used, and the
    reason says so, for a warning.
    """
    root = Path(root)
    folder = resized_folder(root, scale)
    marker = folder / MARKER_FILE
    if not marker.is_file():
        return None, ""
    try:
        written = json.loads(marker.read_text()).get("sources", {})
        current = _file_stamps(root, pairs)
    except (OSError, ValueError, AttributeError) as error:
        return None, f"resized copy {folder} is unreadable ({error}); reading full-size files"
    if any(written.get(name) != stamp for name, stamp in current.items()):
        return None, (
            f"resized copy {folder} is older than its sources or lacks some; reading full-size"
            " files (run `omuda prepare --resize` again)"
        )
    return folder, ""


@dataclass
class ResizeReport:
    """What `write_resized_copy` did: pairs written, and the folder."""

    folder: Path
    written: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the CLI."""
        return f"resized copy in {self.folder}: {self.written} pairs, {len(self.problems)} problems"


def _resize_pair(job: tuple[Path, Path, Path, Path, tuple[int, int]]) -> str | None:
    image_path, label_path, image_out, label_out, scale = job
    try:
        image, label = transforms.resize(read_image(image_path), read_label(label_path), scale)
        write_image(image_out, image)
        write_label(label_out, label)
    except OmudaError as error:
        return str(error)
    except Exception as error:  # one bad pair is reported, the others still get written
        return f"{image_path}: {type(error).__name__}: {error}"
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
    scale = check_scale(scale)
    folder = resized_folder(root, scale)
    (folder / MARKER_FILE).unlink(missing_ok=True)
    jobs = [
        (image, label, folder / image.relative_to(root), folder / label.relative_to(root), scale)
        for image, label in pairs
    ]
    report = ResizeReport(folder)
    with contextlib.ExitStack() as stack:
        results: Iterable[str | None] = map(_resize_pair, jobs)
        if workers > 1:
            executor = stack.enter_context(process_pool(workers))
            chunksize = max(1, len(jobs) // (workers * 16))
            results = executor.map(_resize_pair, jobs, chunksize=chunksize)
        for problem in tqdm(
            results, total=len(jobs), desc=f"resize {folder.name}", disable=not progress
        ):
            if problem is None:
                report.written += 1
            else:
                report.problems.append(problem)
    if not report.problems:
        marker = {"scale": list(scale), "sources": _file_stamps(root, pairs)}
        atomic_write_bytes(folder / MARKER_FILE, json.dumps(marker).encode())
    return report


def check_scale(scale: Sequence[int]) -> tuple[int, int]:
    """(width, height) as ints; OmudaError unless both are positive."""
    width, height = (int(value) for value in scale)
    if min(width, height) <= 0:
        raise OmudaError(f"--resize needs a positive width and height, got {width} {height}")
    return width, height
