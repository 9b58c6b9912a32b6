"""Per-class spatial counts of a labelled dataset: where in the image each class appears.

CAMix's contextual mask multiplies the teacher's target softmax by a class-wise spatial
prior P(class | image position) of the *source* labels (the authors' code ships one, made
offline). `spatial_counts` sums, over every label map, the fraction of each cell of a small
(h, w) grid covered by each class; the grid spans the whole image whatever its size, so the
counts live in normalised image coordinates. Computed once per dataset and grid and cached
in the dataset folder beside `sample_class_stats.json` (`load_spatial_counts`).
"""

from __future__ import annotations

import hashlib
import io as bytes_io
import sys
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from omuda.data.io import atomic_write_bytes, read_label
from omuda.data.labels import NUM_CLASSES
from omuda.data.workers import process_pool


def prior_file(root: Path, size: tuple[int, int]) -> Path:
    """Where the counts of the dataset at `root` on an (h, w) grid are cached."""
    return Path(root) / f"spatial_prior_{size[0]}x{size[1]}.npz"


def label_fractions(
    label: np.ndarray, size: tuple[int, int], num_classes: int = NUM_CLASSES
) -> np.ndarray:
    """Per grid cell, the fraction of its pixels labelled with each class.

    label (H,W) integer train ids (values >= num_classes, e.g. 255, are ignored and count
    for no class) -> (num_classes, h, w) float64. Pixel (y, x) falls in cell
    (floor(y h / H), floor(x w / W)); each cell's fractions sum to at most 1, and a cell
    that holds no pixel (H < h or W < w) gets 0.
    """
    height, width = label.shape
    rows, columns = size
    cell_row = np.arange(height) * rows // height
    cell_column = np.arange(width) * columns // width
    cells = (cell_row[:, None] * columns + cell_column[None, :]).ravel()
    classes = label.ravel().astype(np.int64)
    valid = classes < num_classes
    pixels = np.bincount(cells, minlength=rows * columns)
    counts = np.bincount(
        classes[valid] * rows * columns + cells[valid], minlength=num_classes * rows * columns
    )
    fractions = counts.reshape(num_classes, rows * columns) / np.maximum(pixels, 1)
    return fractions.reshape(num_classes, rows, columns)


def _fractions_of_file(path: Path, size: tuple[int, int]) -> np.ndarray:
    return label_fractions(read_label(path), size)


def spatial_counts(
    label_paths: Sequence[Path], size: tuple[int, int], workers: int = 0
) -> np.ndarray:
    """Sum of `label_fractions` over label files: (19, h, w) float64, read by `workers`
    processes (0 or 1: in this process)."""
    counts = np.zeros((NUM_CLASSES, *size), dtype=np.float64)
    for fractions in _map(partial(_fractions_of_file, size=size), list(label_paths), workers):
        counts += fractions
    return counts


def _map(function: partial, paths: list[Path], workers: int) -> Iterator[np.ndarray]:
    if workers <= 1:
        yield from map(function, paths)
        return
    with process_pool(workers) as executor:
        chunksize = max(1, len(paths) // (workers * 16))
        yield from executor.map(function, paths, chunksize=chunksize)


def _fingerprint(root: Path, label_paths: Sequence[Path]) -> str:
    """Which labels the counts cover: a hash of their paths relative to the dataset root."""
    digest = hashlib.sha256()
    for path in label_paths:
        digest.update(Path(path).relative_to(root).as_posix().encode() + b"\n")
    return digest.hexdigest()


def load_spatial_counts(
    root: Path, label_paths: Sequence[Path], size: tuple[int, int], workers: int = 0
) -> np.ndarray:
    """`spatial_counts` of the dataset's labels, from the cache file when it covers exactly
    these labels on this grid; otherwise computed (once: the result is cached)."""
    root = Path(root)
    path = prior_file(root, size)
    fingerprint = _fingerprint(root, label_paths)
    if path.is_file():
        try:
            with np.load(path) as cached:
                if str(cached["fingerprint"]) == fingerprint:
                    return cached["counts"].astype(np.float64)
        except (OSError, ValueError, KeyError):
            pass  # unreadable or from another version: computed again below
    print(
        f"spatial prior of {len(label_paths)} labels on a {size[0]}x{size[1]} grid (once,"
        f" cached in {path})",
        file=sys.stderr,
    )
    counts = spatial_counts(label_paths, size, workers)
    buffer = bytes_io.BytesIO()
    np.savez(buffer, counts=counts, fingerprint=np.array(fingerprint))
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as error:  # a read-only dataset folder: use the counts uncached
        print(f"omuda: warning: could not cache the spatial prior ({error})", file=sys.stderr)
    return counts
