"""`omuda prepare`: convert dataset labels to train ids and write the samplers' class stats.

For each dataset kind the raw label files (Cityscapes label ids, or SYNTHIA class ids in
the R channel of a 16-bit PNG) are mapped to 19-class train ids and written beside the
source as `*_labelTrainIds.png` (uint8, 255 = ignore). Per-image class pixel counts go to
DAFormer's `sample_class_stats.json` and `samples_with_class.json`, which double as the
index of usable training samples: a sample with any problem is left out of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from omuda.data import io, labels
from omuda.data.workers import process_pool
from omuda.errors import OmudaError

STATS_FILE = "sample_class_stats.json"
SAMPLES_WITH_CLASS_FILE = "samples_with_class.json"
TRAIN_IDS_SUFFIX = "_labelTrainIds.png"

# Folders that start the dataset-relative part of a label path, used to re-root the
# "file" entries of stats written elsewhere (e.g. by DAFormer with absolute paths).
_LABEL_PATH_MARKERS = ("gtFine/", "GT/LABELS/", "labels/")


@dataclass(frozen=True)
class _DatasetKind:
    """How one dataset stores its labels."""

    name: str
    max_raw_id: int
    id_to_train_id: dict[int, int]
    read_raw_label: Callable[[Path], np.ndarray]


_KINDS: dict[str, _DatasetKind] = {
    "gta": _DatasetKind(
        "GTA5", labels.CITYSCAPES_MAX_ID, labels.GTA5_ID_TO_TRAIN_ID, io.read_label
    ),
    "synthia": _DatasetKind(
        "SYNTHIA", labels.SYNTHIA_MAX_ID, labels.SYNTHIA_ID_TO_TRAIN_ID, io.read_synthia_label
    ),
    "cityscapes": _DatasetKind(
        "Cityscapes", labels.CITYSCAPES_MAX_ID, labels.CITYSCAPES_ID_TO_TRAIN_ID, io.read_label
    ),
}


@dataclass
class PrepareReport:
    """Outcome of one `prepare_dataset` run.

    converted: labels written this run; skipped: labels whose train-id file was already up
    to date; problems: one line per faulty sample, naming the file.
    """

    converted: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the console, e.g. 'converted 10, skipped 2, 1 problem'."""
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        return f"converted {self.converted}, skipped {self.skipped}, {count} {noun}"


@dataclass(frozen=True)
class _Sample:
    """One image/label pair as found on disk; either side may be missing."""

    kind: str
    root: Path
    image_path: Path | None
    label_path: Path | None
    train_ids_path: Path | None
    in_stats: bool


@dataclass
class _SampleResult:
    """What processing one sample produced; counts is None when it is not usable."""

    stats_file: str | None
    counts: dict[int, int] | None
    converted: bool = False
    skipped: bool = False
    problems: list[str] = field(default_factory=list)


def _require_dir(path: Path, root: Path, dataset: str, layout: str) -> None:
    if not path.is_dir():
        what = "dataset folder" if path == root else "folder"
        raise OmudaError(f"{what} {path} is missing; expected the {dataset} layout {layout}")


def _visible_pngs(folder: Path, pattern: str) -> Iterator[Path]:
    """PNG files under `folder` matching `pattern`, without hidden files (e.g. macOS '._*')."""
    return (path for path in folder.glob(pattern) if not path.name.startswith("."))


def _pair_by_key(
    kind: str,
    root: Path,
    images: dict[str, Path],
    label_files: dict[str, Path],
    train_ids_name: Callable[[str], str],
    in_stats: Callable[[str], bool],
) -> list[_Sample]:
    """Join images and labels on their key; sorted by key so the output order is fixed.

    train_ids_name maps a source label's file name to its train-id file's name.
    """
    samples = []
    for key in sorted(images.keys() | label_files.keys()):
        label_path = label_files.get(key)
        train_ids_path = None
        if label_path is not None:
            train_ids_path = label_path.with_name(train_ids_name(label_path.name))
        samples.append(
            _Sample(kind, root, images.get(key), label_path, train_ids_path, in_stats(key))
        )
    return samples


def _discover_flat(kind: str, root: Path, image_dir: Path, label_dir: Path) -> list[_Sample]:
    """GTA5 and SYNTHIA: images and labels share a file name in two flat folders."""
    images = {path.stem: path for path in _visible_pngs(image_dir, "*.png")}
    label_files = {
        path.stem: path
        for path in _visible_pngs(label_dir, "*.png")
        if not path.name.endswith(TRAIN_IDS_SUFFIX)
    }
    return _pair_by_key(
        kind,
        root,
        images,
        label_files,
        train_ids_name=lambda name: name[: -len(".png")] + TRAIN_IDS_SUFFIX,
        in_stats=lambda key: True,
    )


def _discover_cityscapes(root: Path) -> list[_Sample]:
    """Cityscapes: every split/city folder; only the train split feeds the samplers."""
    image_dir, label_dir = root / "leftImg8bit", root / "gtFine"
    images = {
        path.relative_to(image_dir).as_posix()[: -len("_leftImg8bit.png")]: path
        for path in _visible_pngs(image_dir, "*/*/*_leftImg8bit.png")
    }
    label_files = {
        path.relative_to(label_dir).as_posix()[: -len("_gtFine_labelIds.png")]: path
        for path in _visible_pngs(label_dir, "*/*/*_gtFine_labelIds.png")
    }
    return _pair_by_key(
        "cityscapes",
        root,
        images,
        label_files,
        train_ids_name=lambda name: name[: -len("labelIds.png")] + "labelTrainIds.png",
        in_stats=lambda key: key.split("/")[0] == "train",
    )


def _discover(kind: str, root: Path) -> list[_Sample]:
    if kind == "gta":
        layout = "ROOT/images/NNNNN.png and ROOT/labels/NNNNN.png"
        for folder in (root, root / "images", root / "labels"):
            _require_dir(folder, root, "GTA5", layout)
        return _discover_flat(kind, root, root / "images", root / "labels")
    if kind == "synthia":
        layout = "ROOT/RGB/NNNNNNN.png and ROOT/GT/LABELS/NNNNNNN.png"
        for folder in (root, root / "RGB", root / "GT" / "LABELS"):
            _require_dir(folder, root, "SYNTHIA", layout)
        return _discover_flat(kind, root, root / "RGB", root / "GT" / "LABELS")
    layout = (
        "ROOT/leftImg8bit/{split}/{city}/*_leftImg8bit.png and "
        "ROOT/gtFine/{split}/{city}/*_gtFine_labelIds.png"
    )
    for folder in (root, root / "leftImg8bit", root / "gtFine"):
        _require_dir(folder, root, "Cityscapes", layout)
    return _discover_cityscapes(root)


def _is_up_to_date(train_ids_path: Path, label_path: Path) -> bool:
    """True when the train-id file exists and is at least as new as its source label."""
    if not train_ids_path.is_file():
        return False
    return train_ids_path.stat().st_mtime_ns >= label_path.stat().st_mtime_ns


def _read_existing_train_ids(train_ids_path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The existing train-id file if it decodes to the expected shape, else None."""
    try:
        train_ids = io.read_label(train_ids_path)
    except OmudaError:
        return None
    if train_ids.shape != shape or train_ids.dtype != np.uint8:
        return None
    return train_ids


def _class_counts(train_ids: np.ndarray) -> dict[int, int]:
    """Pixels per train id present in (H,W) uint8 train ids; ignore (255) is not counted."""
    histogram = np.bincount(train_ids.ravel(), minlength=256)[: labels.NUM_CLASSES]
    return {class_id: int(pixels) for class_id, pixels in enumerate(histogram) if pixels > 0}


def _process_sample(sample: _Sample) -> _SampleResult:
    """Validate one sample, write its train-id label unless up to date, count its classes."""
    dataset = _KINDS[sample.kind]
    result = _SampleResult(stats_file=None, counts=None)
    if sample.label_path is None or sample.train_ids_path is None:
        result.problems.append(f"{sample.image_path}: image without label")
        return result
    result.stats_file = sample.train_ids_path.relative_to(sample.root).as_posix()

    image_size = None
    if sample.image_path is None:
        result.problems.append(f"{sample.label_path}: label without image")
    else:
        try:
            image_size = io.verify_image(sample.image_path)
        except OmudaError as error:
            result.problems.append(str(error))

    try:
        raw_ids = dataset.read_raw_label(sample.label_path)
    except OmudaError as error:
        result.problems.append(str(error))
        return result

    height, width = raw_ids.shape
    if image_size is not None and image_size != (width, height):
        result.problems.append(
            f"{sample.label_path}: label size {width}x{height} differs from image size "
            f"{image_size[0]}x{image_size[1]}"
        )
    out_of_range = np.unique(raw_ids[raw_ids > dataset.max_raw_id])
    if out_of_range.size:
        shown = ", ".join(str(int(value)) for value in out_of_range[:5])
        more = ", ..." if out_of_range.size > 5 else ""
        result.problems.append(
            f"{sample.label_path}: label ids outside {dataset.name}'s range "
            f"0..{dataset.max_raw_id} ({shown}{more}); converted them to ignore (255)"
        )

    train_ids = None
    if _is_up_to_date(sample.train_ids_path, sample.label_path):
        train_ids = _read_existing_train_ids(sample.train_ids_path, raw_ids.shape)
    if train_ids is not None:
        result.skipped = True
    else:
        train_ids = labels.to_train_ids(raw_ids, dataset.id_to_train_id)
        try:
            io.write_label(sample.train_ids_path, train_ids)
        except OSError as error:
            result.problems.append(
                f"{sample.train_ids_path}: cannot be written ({error.strerror or error})"
            )
            return result
        result.converted = True

    if not result.problems and sample.in_stats:
        result.counts = _class_counts(train_ids)
    return result


def _map_samples(samples: list[_Sample], workers: int) -> Iterable[_SampleResult]:
    """Process samples in order, in-process or across `workers` processes."""
    if workers <= 1:
        return map(_process_sample, samples)
    chunksize = max(1, len(samples) // (workers * 16))
    executor = process_pool(workers)

    def ordered_results() -> Iterator[_SampleResult]:
        with executor:
            yield from executor.map(_process_sample, samples, chunksize=chunksize)

    return ordered_results()


def _write_json(path: Path, payload: object) -> None:
    io.atomic_write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))


def prepare_dataset(
    kind: str,
    root: Path,
    out_dir: Path | None = None,
    workers: int = 0,
    progress: bool = True,
) -> PrepareReport:
    """Convert a dataset's labels to train ids and write the samplers' class statistics.

    kind: "gta", "synthia" or "cityscapes"; root: the dataset folder in its official
    layout; out_dir: where the two JSON files go (default root); workers: processes
    (0 or 1 = in-process). Faulty samples are reported in `problems`, never raised; a
    missing root or sub-folder and an unknown kind raise OmudaError.
    """
    if kind not in _KINDS:
        raise OmudaError(f"unknown dataset kind {kind!r}; valid kinds: {', '.join(sorted(_KINDS))}")
    if workers < 0:
        raise OmudaError(f"workers must be 0 or more, got {workers}")
    root = Path(root)
    samples = _discover(kind, root)
    if not samples:
        raise OmudaError(f"no samples found in {root}: its image and label folders are empty")
    out_dir = root if out_dir is None else Path(out_dir)

    report = PrepareReport()
    sample_class_stats: list[dict[str, int | str]] = []
    results = _map_samples(samples, workers)
    for result in tqdm(
        results, total=len(samples), desc=f"prepare {kind}", unit="label", disable=not progress
    ):
        report.converted += result.converted
        report.skipped += result.skipped
        report.problems.extend(result.problems)
        if result.counts is not None and result.stats_file is not None:
            entry: dict[str, int | str] = {str(c): n for c, n in result.counts.items()}
            entry["file"] = result.stats_file
            sample_class_stats.append(entry)

    samples_with_class: dict[str, list[list[str | int]]] = {}
    for class_id in range(labels.NUM_CLASSES):
        holders = [
            [entry["file"], entry[str(class_id)]]
            for entry in sample_class_stats
            if str(class_id) in entry
        ]
        if holders:
            samples_with_class[str(class_id)] = holders

    _write_json(out_dir / STATS_FILE, sample_class_stats)
    _write_json(out_dir / SAMPLES_WITH_CLASS_FILE, samples_with_class)
    return report


def _relative_label_path(file: str) -> str:
    """Re-root a stats "file" entry: keep it from the last 'gtFine/', 'GT/LABELS/' or
    'labels/' folder on, so absolute or differently-rooted DAFormer paths become
    dataset-relative posix paths."""
    posix = file.replace("\\", "/")
    best_start = -1
    for marker in _LABEL_PATH_MARKERS:
        start = posix.rfind(marker)
        while start > 0 and posix[start - 1] != "/":
            start = posix.rfind(marker, 0, start)
        best_start = max(best_start, start)
    if best_start >= 0:
        return posix[best_start:]
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise ValueError(f"cannot locate a labels folder in {file!r}")
    return posix


def load_class_stats(stats_dir: Path) -> list[dict]:
    """Read `sample_class_stats.json` from `stats_dir` (ours or DAFormer's).

    Returns one dict per usable sample: {"file": label path relative to the dataset root
    (posix), "counts": {train_id (int): pixels (int)}}.
    """
    stats_path = Path(stats_dir) / STATS_FILE
    hint = f"run `omuda prepare` on the dataset to (re)create {stats_path}"
    if not stats_path.is_file():
        raise OmudaError(f"{stats_path} is missing; {hint}")
    try:
        raw_entries = json.loads(stats_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OmudaError(f"{stats_path} cannot be read as JSON ({error}); {hint}") from error
    if not isinstance(raw_entries, list):
        raise OmudaError(f"{stats_path} must hold a list of per-image entries; {hint}")

    samples = []
    for index, raw_entry in enumerate(raw_entries):
        try:
            if not isinstance(raw_entry, dict) or not isinstance(raw_entry.get("file"), str):
                raise ValueError("entry has no 'file' string")
            counts = {}
            for key, pixels in raw_entry.items():
                if key == "file":
                    continue
                class_id = int(key)
                if not 0 <= class_id < labels.NUM_CLASSES:
                    raise ValueError(f"train id {key} is outside 0..{labels.NUM_CLASSES - 1}")
                if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 0:
                    raise ValueError(f"pixel count {pixels!r} is not a non-negative integer")
                counts[class_id] = pixels
            samples.append(
                {
                    "file": _relative_label_path(raw_entry["file"]),
                    "counts": dict(sorted(counts.items())),
                }
            )
        except ValueError as error:
            raise OmudaError(
                f"{stats_path} entry {index} is malformed ({error}); {hint}"
            ) from error
    return samples
