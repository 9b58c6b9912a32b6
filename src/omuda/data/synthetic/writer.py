"""Writing the benchmark: one job per frame, the real datasets' file names and raw ids.

Image i (0-based) of split d is rendered from `np.random.default_rng([seed, d, i])` only
(d = 0 gta, 1 cityscapes train, 2 cityscapes val, 3 synthia), so the bytes written depend
on (seed, shift, counts) and never on the number of worker processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from omuda.data import io
from omuda.data.labels import (
    IGNORE_INDEX,
    TRAIN_ID_TO_CITYSCAPES_ID,
    TRAIN_ID_TO_SYNTHIA_ID,
)
from omuda.data.synthetic.appearance import DEFAULT_SHIFT, domain_style, draws_ambiguous_look
from omuda.data.synthetic.scene import render_scene
from omuda.data.workers import process_pool
from omuda.errors import OmudaError

# Default frame sizes as (height, width): GTA5's 1.82 aspect, Cityscapes' 2.0, SYNTHIA's 1.68.
FRAME_SIZES: dict[str, tuple[int, int]] = {
    "gta": (352, 640),
    "cityscapes": (256, 512),
    "synthia": (380, 640),
}

CITIES: dict[str, tuple[str, ...]] = {
    "train": ("aachen", "bochum", "bremen"),
    "val": ("frankfurt", "lindau", "munster"),
}

# Raw ids written for ignored pixels: Cityscapes' "ego vehicle" (the only ignored region
# the target scenes contain is the bonnet) and "unlabeled" / SYNTHIA's "void" elsewhere.
CITYSCAPES_EGO_VEHICLE_ID = 1
UNLABELED_ID = 0

# Index of each written split in the per-image seed sequence [seed, domain_index, image].
_DOMAIN_INDEX = {("gta", ""): 0, ("cityscapes", "train"): 1, ("cityscapes", "val"): 2}
_DOMAIN_INDEX[("synthia", "")] = 3


@dataclass(frozen=True)
class _Job:
    """One frame to render and write: everything a worker process needs."""

    out: Path
    seed: int
    shift: float
    domain: str
    split: str  # "train" / "val" for Cityscapes, "" for the flat datasets
    index: int  # 0-based position within its split


def _cityscapes_stem(split: str, index: int) -> tuple[str, str]:
    """(city, file stem) of image `index` of a split, e.g. ('aachen', 'aachen_000000_000019')."""
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_000019"


def raw_label(train_ids: np.ndarray, domain: str) -> np.ndarray:
    """Train ids (H,W) uint8 -> the dataset's raw ids (H,W): uint8 Cityscapes label ids
    (ignore -> ego vehicle in "cityscapes", unlabeled in "gta") or uint16 SYNTHIA class ids."""
    if domain == "synthia":
        table = np.full(256, UNLABELED_ID, dtype=np.uint16)
        for train_id, class_id in TRAIN_ID_TO_SYNTHIA_ID.items():
            table[train_id] = class_id
        return table[train_ids]
    table = np.full(256, UNLABELED_ID, dtype=np.uint8)
    for train_id, label_id in TRAIN_ID_TO_CITYSCAPES_ID.items():
        table[train_id] = label_id
    if domain == "cityscapes":
        table[IGNORE_INDEX] = CITYSCAPES_EGO_VEHICLE_ID
    return table[train_ids]


def _frame_rng(seed: int, domain: str, split: str, index: int) -> np.random.Generator:
    """The generator that frame `index` of a split is rendered from, and nothing else."""
    return np.random.default_rng([seed, _DOMAIN_INDEX[(domain, split)], index])


def ambiguous_target_frames(
    seed: int, split: str, count: int, shift: float = DEFAULT_SHIFT
) -> list[tuple[str, str]]:
    """(city, file stem) of the Cityscapes-like frames of `split` ("train" or "val") that
    `omuda synth --seed seed --shift shift` draws with the locally ambiguous look, among
    the split's first `count` frames; the others keep every class's own cues."""
    style = domain_style("cityscapes", shift)
    return [
        _cityscapes_stem(split, index)
        for index in range(count)
        if draws_ambiguous_look(_frame_rng(seed, "cityscapes", split, index), style)
    ]


def _render_job(job: _Job) -> None:
    """Render one frame from its own seed sequence and write its image and label."""
    rng = _frame_rng(job.seed, job.domain, job.split, job.index)
    height, width = FRAME_SIZES[job.domain]
    rgb, train_ids = render_scene(rng, job.domain, job.shift, height, width)
    raw_ids = raw_label(train_ids, job.domain)
    if job.domain == "gta":
        name = f"{job.index + 1:05d}.png"
        io.write_image(job.out / "gta" / "images" / name, rgb)
        io.write_label(job.out / "gta" / "labels" / name, raw_ids)
    elif job.domain == "synthia":
        name = f"{job.index + 1:07d}.png"
        io.write_image(job.out / "synthia" / "RGB" / name, rgb)
        io.write_synthia_label(job.out / "synthia" / "GT" / "LABELS" / name, raw_ids)
    else:
        city, stem = _cityscapes_stem(job.split, job.index)
        root = job.out / "cityscapes"
        io.write_image(root / "leftImg8bit" / job.split / city / f"{stem}_leftImg8bit.png", rgb)
        io.write_label(root / "gtFine" / job.split / city / f"{stem}_gtFine_labelIds.png", raw_ids)


def _init_worker() -> None:
    # One OpenCV thread per process: the processes already use the cores.
    cv2.setNumThreads(1)


def _size_text(domain: str) -> str:
    """A domain's frame size as 'WIDTHxHEIGHT', e.g. '640x352'."""
    height, width = FRAME_SIZES[domain]
    return f"{width}x{height}"


def _readme(seed: int, shift: float, counts: dict[str, int]) -> str:
    return (
        "OMUDA synthetic benchmark (generated by `omuda synth`; NOT real data)\n"
        "\n"
        "Procedural street scenes in the 19 Cityscapes train-id classes, written in the real\n"
        "datasets' file layouts with raw label ids, for `omuda prepare` and the loaders:\n"
        f"  gta/         GTA5-like source: {counts['gta']} frames, images/NNNNN.png and\n"
        f"               labels/NNNNN.png (Cityscapes label ids), {_size_text('gta')}\n"
        f"  cityscapes/  Cityscapes-like target: {counts['train']} train and {counts['val']} val\n"
        "               frames, leftImg8bit/ and gtFine/*_gtFine_labelIds.png, "
        f"{_size_text('cityscapes')}\n"
        f"  synthia/     SYNTHIA-like source: {counts['synthia']} frames, RGB/ and GT/LABELS/\n"
        f"               (16-bit 3-channel, class id in R), {_size_text('synthia')}; "
        "no terrain, truck, train\n"
        "\n"
        f"seed: {seed}\n"
        f"shift: {shift!r} (0: both domains alike; default {DEFAULT_SHIFT}; larger: harder)\n"
        "\n"
        "The source is rendered synthetic (saturated, contrasty, sharp, warm, clean surfaces,\n"
        "vivid object colours); the target real (desaturated, slightly blurred and noisy, cool,\n"
        "vignetted, muted object colours, more cars and persons, and frames where locally alike\n"
        "classes share one look: sidewalk like road, terrain like vegetation, wall like facade,\n"
        "truck like bus). See the docstring of omuda.data.synthetic for every component.\n"
    )


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise OmudaError(f"{name} must be an integer >= 0, got {value!r}")


def generate_benchmark(
    out: Path,
    seed: int = 0,
    shift: float = DEFAULT_SHIFT,
    num_source: int = 400,
    num_target_train: int = 300,
    num_target_val: int = 100,
    num_synthia: int = 200,
    workers: int = 0,
    progress: bool = True,
) -> None:
    """Write the synthetic benchmark under `out` (see the package docstring).

    out/gta (num_source frames), out/cityscapes (num_target_train + num_target_val frames),
    out/synthia (num_synthia frames) and out/README.txt. The bytes written depend only on
    (seed, shift) and the counts, never on `workers` (0 or 1 = in-process, else that many
    processes). Writing into an existing benchmark folder overwrites its files in place,
    each atomically; files that this run does not write (e.g. from a run with larger
    counts, or `prepare`'s outputs) are left as they are. Raises OmudaError on bad
    arguments or when `out` is a file.
    """
    for name, value in (
        ("seed", seed),
        ("num_source", num_source),
        ("num_target_train", num_target_train),
        ("num_target_val", num_target_val),
        ("num_synthia", num_synthia),
        ("workers", workers),
    ):
        _check_count(name, value)
    if (
        isinstance(shift, bool)
        or not isinstance(shift, (int, float))
        or not (math.isfinite(shift) and shift >= 0)
    ):
        raise OmudaError(f"shift must be a finite number >= 0, got {shift!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OmudaError(f"cannot write the benchmark to {out}: it is a file, not a folder")
    shift = float(shift)
    seed = int(seed)
    jobs = [_Job(out, seed, shift, "gta", "", i) for i in range(num_source)]
    jobs += [_Job(out, seed, shift, "cityscapes", "train", i) for i in range(num_target_train)]
    jobs += [_Job(out, seed, shift, "cityscapes", "val", i) for i in range(num_target_val)]
    jobs += [_Job(out, seed, shift, "synthia", "", i) for i in range(num_synthia)]
    try:
        out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=len(jobs), desc="synth", unit="frame", disable=not progress)
        with bar:
            if workers <= 1:
                for job in jobs:
                    _render_job(job)
                    bar.update()
            else:
                chunksize = max(1, len(jobs) // (workers * 8))
                with process_pool(workers, initializer=_init_worker) as pool:
                    for _ in pool.map(_render_job, jobs, chunksize=chunksize):
                        bar.update()
        counts = {
            "gta": num_source,
            "train": num_target_train,
            "val": num_target_val,
            "synthia": num_synthia,
        }
        io.atomic_write_bytes(out / "README.txt", _readme(seed, shift, counts).encode("utf-8"))
    except OSError as error:
        raise OmudaError(
            f"cannot write the benchmark to {out}: {error.strerror or error}"
        ) from error
