"""Reading runs for `omuda report`: find run folders, read what training recorded, group the
seeds of one config.

A run folder holds `config.yaml` and `metrics.jsonl` (or checkpoints); an ablation folder
holds runs below it (`TABLE/ROW/seedN`, some of them links to the same run). Nothing is
re-computed here: per-class IoU comes from the "val" records (or `eval.json`), the curves
from every record of `metrics.jsonl`.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from omuda.data.labels import CLASS_NAMES, NUM_CLASSES
from omuda.errors import OmudaError

_SEED_FOLDER = re.compile(r"seed\d+")
_SKIPPED_FOLDERS = {"checkpoints", "tensorboard", "figures"}
_MAX_DEPTH = 6  # ablation folders are TABLE/ROW/seedN: deeper is not a run collection
# Settings that do not change what a run learns: seeds of one config differ only in these.
_NOT_THE_EXPERIMENT = {
    "data": ("root", "workers"),
    "train": (
        "seed", "threads", "device", "compile", "log_interval", "eval_interval",
        "checkpoint_interval",
    ),
    "eval": None,
}  # fmt: skip


@dataclass
class Run:
    """One training run as recorded in its work dir."""

    path: Path
    config: dict  # the resolved config.yaml, as plain data
    records: dict[str, dict[int, dict[str, float]]]  # group -> iteration -> values (NaN: null)
    final_iou: list[float] | None  # K per-class IoUs (NaN: absent) of the last evaluation
    skipped_lines: int = 0  # unreadable metrics.jsonl lines (e.g. one being written)

    @property
    def name(self) -> str:
        """The folder name, or its parent's for `.../ROW/seedN`."""
        return self.path.parent.name if _SEED_FOLDER.fullmatch(self.path.name) else self.path.name

    @property
    def seed(self) -> int:
        """train.seed of the run."""
        return int(self.config.get("train", {}).get("seed", 0))

    @property
    def source_kind(self) -> str:
        """data.source.kind: gta, synthia or cityscapes."""
        return str(self.config.get("data", {}).get("source", {}).get("kind", "gta"))

    @property
    def checkpoint(self) -> Path | None:
        """checkpoints/latest.pt when the run has one."""
        latest = self.path / "checkpoints" / "latest.pt"
        return latest if latest.is_file() else None

    @property
    def evaluated(self) -> bool:
        """Whether any evaluation gave per-class IoUs."""
        return self.final_iou is not None

    def series(self, group: str, key: str) -> dict[int, float]:
        """{iteration: value} of one recorded quantity, e.g. ("val", "IoU/road")."""
        return {
            iteration: values[key]
            for iteration, values in sorted(self.records.get(group, {}).items())
            if key in values
        }


@dataclass
class RunGroup:
    """The seeds of one config, shown as one column (mean ± std)."""

    label: str
    runs: list[Run] = field(default_factory=list)

    def iou_matrix(self) -> np.ndarray:
        """(seeds, K) final per-class IoUs in percent, NaN where a class is absent."""
        return 100.0 * np.array([run.final_iou for run in self.runs], dtype=np.float64)

    @property
    def seeds(self) -> list[int]:
        """The seeds of the group's runs, in order."""
        return [run.seed for run in self.runs]

    @property
    def first(self) -> Run:
        """The run of the lowest seed (its checkpoint feeds the inference figures)."""
        return self.runs[0]


def mean_std(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof 1; 0 for one value) over `axis`, NaN
    entries left out; NaN where nothing is left."""
    values = np.asarray(values, dtype=np.float64)
    present = (~np.isnan(values)).sum(axis=axis)
    total = np.nansum(values, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(present > 0, total / np.maximum(present, 1), np.nan)
        deviations = np.where(np.isnan(values), 0.0, values - np.expand_dims(mean, axis))
        variance = (deviations**2).sum(axis=axis) / np.maximum(present - 1, 1)
    std = np.where(present > 1, np.sqrt(variance), np.where(present == 1, 0.0, np.nan))
    return mean, std


def nan_mean(values: np.ndarray) -> float:
    """Mean of the entries that are not NaN; NaN when there are none (no warning)."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else math.nan


def is_run(folder: Path) -> bool:
    """A work dir of `omuda train`: config.yaml plus metrics.jsonl or checkpoints/."""
    has_record = (folder / "metrics.jsonl").is_file() or (folder / "checkpoints").is_dir()
    return (folder / "config.yaml").is_file() and has_record


def find_runs(inputs: list[Path]) -> list[Path]:
    """Run folders named by `inputs` (runs, or folders with runs below them), each once
    (links resolved), in the order given and then sorted by path."""
    found: list[Path] = []
    seen: set[Path] = set()
    for given in inputs:
        if not given.exists():
            raise OmudaError(f"{given} not found")
        if not given.is_dir():
            raise OmudaError(
                f"{given} is a file; give a run folder (config.yaml, metrics.jsonl) or a folder"
                " of runs such as an ablation work dir"
            )
        runs = [given] if is_run(given) else _runs_below(given)
        if not runs:
            raise OmudaError(
                f"{given} is not a run folder (no config.yaml with metrics.jsonl) and holds no"
                " runs below it"
            )
        for run in runs:
            if run.resolve() not in seen:
                seen.add(run.resolve())
                found.append(run)
    return found


def _runs_below(root: Path) -> list[Path]:
    runs = []
    visited: set[Path] = set()
    for folder, subfolders, _ in os.walk(root, followlinks=True):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        if here.resolve() in visited or depth > _MAX_DEPTH:
            subfolders.clear()
            continue
        visited.add(here.resolve())
        subfolders[:] = sorted(name for name in subfolders if name not in _SKIPPED_FOLDERS)
        if here != root and is_run(here):
            runs.append(here)
            subfolders.clear()
    return sorted(runs)


def read_run(path: Path) -> Run:
    """Everything `report` needs from one run folder; OmudaError when its config is not
    readable."""
    try:
        config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        config = None
    if not isinstance(config, dict):
        raise OmudaError(f"{path / 'config.yaml'} is not a readable run config")
    records, skipped = read_records(path / "metrics.jsonl")
    return Run(path, config, records, _final_iou(path, records), skipped)


def read_records(path: Path) -> tuple[dict[str, dict[int, dict[str, float]]], int]:
    """metrics.jsonl -> ({group: {iteration: values}}, unreadable lines). A resumed run logs
    some iterations twice: the later record wins. null becomes NaN."""
    records: dict[str, dict[int, dict[str, float]]] = {}
    skipped = 0
    if not path.is_file():
        return records, 0
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                iteration, group = int(record.pop("iter")), str(record.pop("group"))
            except (ValueError, KeyError, TypeError, AttributeError):
                skipped += 1
                continue
            values = {
                key: math.nan if value is None else float(value)
                for key, value in record.items()
                if value is None
                or (isinstance(value, (int, float)) and not isinstance(value, bool))
            }
            records.setdefault(group, {})[iteration] = values
    return records, skipped


def per_class_values(values: dict[str, float], prefix: str) -> list[float] | None:
    """The K values `<prefix>/<class>` of one record, or None when it has none of them."""
    keys = [f"{prefix}/{name}" for name in CLASS_NAMES]
    if not all(key in values for key in keys):
        return None
    return [values[key] for key in keys]


def _final_iou(path: Path, records: dict[str, dict[int, dict[str, float]]]) -> list[float] | None:
    val = records.get("val", {})
    for iteration in sorted(val, reverse=True):
        iou = per_class_values(val[iteration], "IoU")
        if iou is not None:
            return iou
    try:  # a run recorded before per-class logging: its final eval.json
        result = json.loads((path / "eval.json").read_text(encoding="utf-8"))
        iou = result.get("eval", result)["iou"]
        return [math.nan if value is None else float(value) for value in iou]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def experiment_key(config: dict) -> str:
    """What makes two runs seeds of one config: the config (its name included) without
    seed, data root, threads, intervals and evaluation settings."""
    config = json.loads(json.dumps(config))
    for section, keys in _NOT_THE_EXPERIMENT.items():
        if keys is None:
            config.pop(section, None)
        elif isinstance(config.get(section), dict):
            for key in keys:
                config[section].pop(key, None)
    return json.dumps(config, sort_keys=True)


def group_runs(runs: list[Run]) -> list[RunGroup]:
    """Runs of one config (see `experiment_key`) become one group, seeds sorted; groups keep
    the order of their first run. Labels: the runs' shared folder name, else the config's
    name; a label two groups share gets the parent folder in front."""
    by_key: dict[str, RunGroup] = {}
    for run in runs:
        by_key.setdefault(experiment_key(run.config), RunGroup("")).runs.append(run)
    groups = list(by_key.values())
    for group in groups:
        group.runs.sort(key=lambda run: run.seed)
        names = {run.name for run in group.runs}
        group.label = names.pop() if len(names) == 1 else str(group.first.config.get("name", "run"))
    labels = [group.label for group in groups]
    for group in groups:
        if labels.count(group.label) > 1:
            folder = group.first.path.parent
            folder = folder.parent if _SEED_FOLDER.fullmatch(group.first.path.name) else folder
            group.label = f"{folder.name}/{group.label}"
    for index, group in enumerate(groups):
        if [g.label for g in groups].count(group.label) > 1:
            group.label = f"{group.label} ({index + 1})"
    return groups


def label_set(run: Run) -> str:
    """The classes a run is scored on: SYNTHIA sources on 16, the others on all 19."""
    if len(run.final_iou or ()) not in (0, NUM_CLASSES):
        return f"{len(run.final_iou)} classes"
    return "16 classes (SYNTHIA source)" if run.source_kind == "synthia" else "19 classes"


def check_one_label_set(runs: list[Run]) -> None:
    """OmudaError unless every run is scored on the same classes."""
    first = runs[0]
    for run in runs[1:]:
        if label_set(run) != label_set(first):
            raise OmudaError(
                f"runs of different label sets: {first.path} is scored on {label_set(first)},"
                f" {run.path} on {label_set(run)}; report them separately"
            )


def is_synthetic(run: Run) -> bool:
    """True for the embedded synthetic benchmark (its configs' names, or its README at the
    data root); the paper's rows are shown beside real-data runs only."""
    if str(run.config.get("name", "")).startswith("synthetic"):
        return True
    root = Path(str(run.config.get("data", {}).get("root", "")))
    try:
        return (root / "README.txt").read_text(errors="replace").startswith("OMUDA synthetic")
    except OSError:
        return False
