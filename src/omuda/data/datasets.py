"""Torch datasets over prepared data (train-id labels written by `omuda prepare`).

A `SegmentationDataset` is a list of (image path, train-id label path) pairs plus the
transform settings. The samplers in `omuda.data.sampling` yield `SampleRequest`s that carry
the index, the class a rare-class sampler asked for and the seed of every random choice,
so an item depends only on its request, never on the worker process that loads it.
The pair builders (`gta_pairs`, `synthia_pairs`, `cityscapes_pairs`) find the files in
each dataset's official layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from omuda.data import transforms
from omuda.data.io import read_image, read_label
from omuda.data.labels import IGNORE_INDEX, NUM_CLASSES
from omuda.data.prepare import STATS_FILE, TRAIN_IDS_SUFFIX, load_class_stats
from omuda.errors import OmudaError


@dataclass(frozen=True)
class SampleRequest:
    """One draw of a sampler: which sample, which class its crop must show, and the seed.

    required_class: a train id the crop should hold (rare-class / class-aware sampling),
    or None. seed: seeds `np.random.default_rng` for the crop and flip of this draw.
    """

    index: int
    required_class: int | None
    seed: int


class SegmentationDataset(Dataset):
    """Images and train-id labels, cropped for training or whole for evaluation.

    pairs: (image path, `*_labelTrainIds.png` path) per sample.
    scale: (width, height) of the keep-ratio resize (DAFormer: GTA (1280, 720),
    Cityscapes (1024, 512)).
    crop_size: (height, width) of training crops; None = evaluation mode.
    cat_max_ratio: mmseg's largest-class share limit for training crops (1.0 disables).
    flip: horizontal flip with probability 0.5 in training mode.
    min_class_pixels: a crop for a request with a required class is re-drawn until it holds
    more than this many pixels of the class (DAFormer: 3000 * 0.5 at 512 crops).
    name: the dataset's name, for messages.
    resized_copy: (dataset root, its pre-resized copy at `scale`) to read from instead of the
    full-size files (`omuda.data.resized`); evaluation still reads the full-size labels.

    Items are dicts: "image" uint8 (3,h,w) RGB, "label" int64 (h,w) with 255 = ignore,
    "name" the image file's stem. In training mode both are crop-sized, and "window"
    float32 (4,) is the crop's (top, left, bottom, right) as fractions of the resized
    image's height and width (beyond 1 where the crop was padded) and "flipped" a bool
    tensor, whether the crop was then mirrored (CAMix places its spatial prior with them).
    In evaluation mode the image is resized to `scale` and the label keeps its full size
    (the evaluator resizes logits to it, as DAFormer does).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        scale: tuple[int, int],
        crop_size: tuple[int, int] | None,
        cat_max_ratio: float = 0.75,
        flip: bool = True,
        min_class_pixels: int = 0,
        name: str = "",
        resized_copy: tuple[Path, Path] | None = None,
    ) -> None:
        if len(pairs) == 0:
            raise OmudaError(f"dataset {name or '(unnamed)'} has no samples")
        if crop_size is not None and min(crop_size) <= 0:
            raise OmudaError(f"crop size must be positive, got {tuple(crop_size)}")
        if min(scale) <= 0:
            raise OmudaError(f"resize scale must be positive, got {tuple(scale)}")
        self.pairs = [(Path(image), Path(label)) for image, label in pairs]
        self.scale = (int(scale[0]), int(scale[1]))
        self.crop_size = None if crop_size is None else (int(crop_size[0]), int(crop_size[1]))
        self.cat_max_ratio = cat_max_ratio
        self.flip = flip
        self.min_class_pixels = min_class_pixels
        self.name = name
        self.resized_copy = resized_copy

    def __len__(self) -> int:
        return len(self.pairs)

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        image_path, label_path = self.pairs[index]
        stem = image_path.stem
        if self.resized_copy is not None:
            root, copy = self.resized_copy
            image_path = copy / image_path.relative_to(root)
            if self.crop_size is not None:
                label_path = copy / label_path.relative_to(root)
        image = read_image(image_path)
        label = read_label(label_path)
        if label.dtype != np.uint8:
            raise OmudaError(
                f"{label_path} is not an 8-bit train-id label; run `omuda prepare` on its dataset"
            )
        if label.max(initial=0) >= NUM_CLASSES and np.any(
            (label >= NUM_CLASSES) & (label != IGNORE_INDEX)
        ):
            raise OmudaError(
                f"{label_path} holds ids outside the 19 train ids and 255: it is not a train-id"
                " label (delete it and run `omuda prepare` again)"
            )
        label_size = (label.shape[1], label.shape[0])
        expected = label_size  # evaluation on a resized copy: the image alone is resized
        if self.resized_copy is not None and self.crop_size is None:
            expected = transforms.keep_ratio_size(*label_size, self.scale)
        if (image.shape[1], image.shape[0]) != expected:
            raise OmudaError(
                f"{label_path} is {label_size[0]}x{label_size[1]} pixels but its image"
                f" {image_path} is {image.shape[1]}x{image.shape[0]}: a label must have the"
                " same size as its image (run `omuda prepare` again, or restore the label)"
            )
        return image, label, stem

    def __getitem__(self, request: SampleRequest | int) -> dict:
        """The sample for a sampler's request, or for a plain index.

        A plain int in training mode uses the index as the seed, so it is repeatable too.
        """
        if isinstance(request, SampleRequest):
            index, required_class, seed = request.index, request.required_class, request.seed
        else:
            index, required_class, seed = int(request), None, int(request)
        image, label, stem = self._read(index)
        crop_geometry = {}

        if self.crop_size is None:
            image = transforms.resize_image(image, self.scale)
        else:
            rng = np.random.default_rng(seed)
            image, label = transforms.resize(image, label, self.scale)
            height, width = label.shape
            top, left = transforms.random_crop_offset(
                label,
                self.crop_size,
                rng,
                cat_max_ratio=self.cat_max_ratio,
                required_class=required_class,
                min_class_pixels=self.min_class_pixels,
            )
            image, label = transforms.crop(image, label, top, left, self.crop_size)
            flipped = self.flip and transforms.draw_flip(rng)
            if flipped:
                image, label = image[:, ::-1], label[:, ::-1]
            bottom, right = top + self.crop_size[0], left + self.crop_size[1]
            window = (top / height, left / width, bottom / height, right / width)
            crop_geometry = {
                "window": torch.tensor(window, dtype=torch.float32),
                "flipped": torch.tensor(flipped),
            }

        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "label": torch.from_numpy(label.astype(np.int64)),
            "name": stem,
            **crop_geometry,
        }


def collate(batch: list[dict]) -> dict:
    """Stack items into a batch: "image" uint8 (B,3,h,w), "label" int64 (B,h,w), names as list.

    Tensors of differing shapes (full-size evaluation labels of mixed sizes) and non-tensor
    values are returned as lists.
    """
    collated: dict = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        same_shape_tensors = all(torch.is_tensor(value) for value in values) and all(
            value.shape == values[0].shape for value in values
        )
        collated[key] = torch.stack(values) if same_shape_tensors else values
    return collated


def _require_folder(folder: Path, kind: str) -> None:
    if not folder.is_dir():
        raise OmudaError(
            f"{folder} is missing; generate data with `omuda synth` or point the config at "
            f"a {kind} folder and run `omuda prepare {kind} ROOT`"
        )


def _require_train_ids(label_path: Path, kind: str, root: Path) -> None:
    if not label_path.is_file():
        raise OmudaError(
            f"{label_path} is missing; run `omuda prepare {kind} {root}` to write the "
            "train-id labels"
        )


def _pairs_from_stats(
    root: Path, kind: str, image_of_label: Callable[[Path], Path], label_prefix: str = ""
) -> list[tuple[Path, Path]]:
    """Pairs in the order of `sample_class_stats.json` (its usable samples only)."""
    pairs = []
    for entry in load_class_stats(root):
        if not entry["file"].startswith(label_prefix):
            continue
        label_path = root / entry["file"]
        _require_train_ids(label_path, kind, root)
        image_path = image_of_label(label_path)
        if not image_path.is_file():
            raise OmudaError(
                f"{image_path} is missing although {root / STATS_FILE} lists it; "
                f"run `omuda prepare {kind} {root}` again"
            )
        pairs.append((image_path, label_path))
    return pairs


def _flat_pairs(root: Path, kind: str, image_dir: Path, label_dir: Path) -> list[tuple[Path, Path]]:
    """GTA5 / SYNTHIA: `image_dir/STEM.png` with `label_dir/STEM_labelTrainIds.png`."""
    _require_folder(root, kind)
    _require_folder(image_dir, kind)
    if (root / STATS_FILE).is_file():
        pairs = _pairs_from_stats(
            root,
            kind,
            lambda label: image_dir / (label.name[: -len(TRAIN_IDS_SUFFIX)] + ".png"),
        )
    else:
        pairs = []
        for image_path in sorted(image_dir.glob("*.png")):
            if image_path.name.startswith("."):
                continue
            label_path = label_dir / (image_path.stem + TRAIN_IDS_SUFFIX)
            _require_train_ids(label_path, kind, root)
            pairs.append((image_path, label_path))
    if not pairs:
        raise OmudaError(
            f"no samples found in {root}; generate data with `omuda synth` or run "
            f"`omuda prepare {kind} {root}`"
        )
    return pairs


def gta_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image, train-id label) pairs of a prepared GTA5 folder.

    `images/NNNNN.png` with `labels/NNNNN_labelTrainIds.png`; when `sample_class_stats.json`
    exists its usable samples are taken, in its order (faulty frames are skipped).
    """
    root = Path(root)
    return _flat_pairs(root, "gta", root / "images", root / "labels")


def synthia_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image, train-id label) pairs of a prepared SYNTHIA-RAND-CITYSCAPES folder.

    `RGB/NNNNNNN.png` with `GT/LABELS/NNNNNNN_labelTrainIds.png`; usable samples from
    `sample_class_stats.json` when it exists.
    """
    root = Path(root)
    return _flat_pairs(root, "synthia", root / "RGB", root / "GT" / "LABELS")


def cityscapes_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, train-id label) pairs of one Cityscapes split, sorted by city and file name.

    `leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png` with
    `gtFine/{split}/{city}/{stem}_gtFine_labelTrainIds.png`. For the train split the usable
    samples of `sample_class_stats.json` are taken when it exists.
    """
    root = Path(root)
    image_dir = root / "leftImg8bit" / split
    _require_folder(root, "cityscapes")
    _require_folder(image_dir, "cityscapes")

    def label_of_image(image_path: Path) -> Path:
        stem = image_path.name[: -len("_leftImg8bit.png")]
        city_dir = root / "gtFine" / split / image_path.parent.name
        return city_dir / f"{stem}_gtFine_labelTrainIds.png"

    def image_of_label(label_path: Path) -> Path:
        stem = label_path.name[: -len("_gtFine_labelTrainIds.png")]
        return image_dir / label_path.parent.name / f"{stem}_leftImg8bit.png"

    if split == "train" and (root / STATS_FILE).is_file():
        pairs = _pairs_from_stats(root, "cityscapes", image_of_label, f"gtFine/{split}/")
    else:
        pairs = []
        for image_path in sorted(image_dir.glob("*/*_leftImg8bit.png")):
            if image_path.name.startswith("."):
                continue
            label_path = label_of_image(image_path)
            _require_train_ids(label_path, "cityscapes", root)
            pairs.append((image_path, label_path))
    if not pairs:
        raise OmudaError(
            f"no {split} samples found in {root}; generate data with `omuda synth` or run "
            f"`omuda prepare cityscapes {root}`"
        )
    return pairs


def class_pixel_counts(
    stats: list[dict],
    pairs: Sequence[tuple[Path, Path]] | None = None,
    root: Path | None = None,
) -> np.ndarray:
    """Per-sample class pixel counts (N,19) int64 from `load_class_stats` output.

    Without pairs the rows follow the stats order. With pairs (and the dataset root the
    stats' relative "file" paths start from) row i belongs to pairs[i]; a pair whose label
    has no stats entry raises OmudaError.
    """
    counts_by_file = {entry["file"]: entry["counts"] for entry in stats}
    if pairs is None:
        ordered_counts = [entry["counts"] for entry in stats]
    else:
        if root is None:
            raise ValueError("class_pixel_counts needs the dataset root to match pairs")
        ordered_counts = []
        for _, label_path in pairs:
            relative = Path(label_path).relative_to(root).as_posix()
            if relative not in counts_by_file:
                raise OmudaError(
                    f"{label_path} has no entry in {Path(root) / STATS_FILE}; run `omuda prepare` "
                    "on the dataset again"
                )
            ordered_counts.append(counts_by_file[relative])
    class_pixels = np.zeros((len(ordered_counts), NUM_CLASSES), dtype=np.int64)
    for row, counts in enumerate(ordered_counts):
        for class_id, pixels in counts.items():
            class_pixels[row, int(class_id)] = pixels
    return class_pixels


def pairs_of(kind: str, root: Path, split: str = "train") -> list[tuple[Path, Path]]:
    """(image, train-id label) pairs of a prepared dataset in its own layout; `split` only
    matters for Cityscapes."""
    root = Path(root)
    if kind == "gta":
        return gta_pairs(root)
    if kind == "synthia":
        return synthia_pairs(root)
    return cityscapes_pairs(root, split)


def all_pairs(kind: str, root: Path) -> list[tuple[Path, Path]]:
    """Every (image, train-id label) pair of a prepared dataset: both Cityscapes splits."""
    root = Path(root)
    splits = ["train"]
    if kind == "cityscapes":
        splits = [s for s in ("train", "val") if (root / "leftImg8bit" / s).is_dir()]
    return [pair for split in splits for pair in pairs_of(kind, root, split)]
