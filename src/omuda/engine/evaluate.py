"""Test-time inference (whole image or sliding window) and dataset-wide mIoU evaluation.

Protocol (DAFormer): the network sees the target image at the test scale (1024x512 for
Cityscapes), its logits are resized bilinearly to the full label size (2048x1024), and
intersections and unions are summed over the whole split before the IoU is taken.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm import tqdm

from omuda.config import Config
from omuda.data.labels import CLASS_NAMES, NUM_CLASSES, SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES
from omuda.data.transforms import normalize
from omuda.engine.distributed import DistInfo, all_reduce_sum_
from omuda.engine.metrics import ConfusionMatrix
from omuda.engine.precision import autocast_factory
from omuda.errors import OmudaError

INFERENCE_MODES = ("whole", "slide")
# Sliding windows go through the network in groups of this many (one forward each).
_WINDOWS_PER_FORWARD = 4


def _forward_logits(model: nn.Module, images: Tensor, num_classes: int) -> Tensor:
    """images (N,3,h,w) float -> logits (N,K,h,w) float32, from a SegOutput or a bare tensor."""
    output = model(images)
    logits = output.logits if hasattr(output, "logits") else output
    if logits.shape[1] != num_classes:
        raise OmudaError(
            f"the model predicts {logits.shape[1]} classes but {num_classes} were expected"
        )
    return logits.float()


def _window_starts(length: int, crop: int, stride: int) -> list[int]:
    """Start offsets of windows of size `crop` covering 0..length (length >= crop).

    mmseg's grid: ceil((length - crop) / stride) + 1 windows, the last one shifted back so
    it ends exactly at the border.
    """
    num_windows = max(length - crop + stride - 1, 0) // stride + 1
    return [min(index * stride, length - crop) for index in range(num_windows)]


def _slide_logits(
    model: nn.Module,
    image: Tensor,
    crop_size: tuple[int, int],
    stride: tuple[int, int],
    num_classes: int,
) -> Tensor:
    """image (1,3,h,w) normalised -> (1,K,h,w) float32 logits averaged over overlapping
    windows of crop_size (height, width) placed every stride (height, width) pixels."""
    crop_height, crop_width = crop_size
    stride_height, stride_width = stride
    height, width = image.shape[2:]
    # An image smaller than the crop is zero-padded (the mean colour after normalisation) on
    # the bottom/right so every window has the crop size; the padding is cut off at the end.
    pad_bottom = max(crop_height - height, 0)
    pad_right = max(crop_width - width, 0)
    if pad_bottom or pad_right:
        image = F.pad(image, (0, pad_right, 0, pad_bottom))
    padded_height, padded_width = image.shape[2:]

    windows = [
        (top, left)
        for top in _window_starts(padded_height, crop_height, stride_height)
        for left in _window_starts(padded_width, crop_width, stride_width)
    ]
    logit_sum = image.new_zeros((1, num_classes, padded_height, padded_width), dtype=torch.float32)
    window_count = image.new_zeros((1, 1, padded_height, padded_width), dtype=torch.float32)
    for first in range(0, len(windows), _WINDOWS_PER_FORWARD):
        group = windows[first : first + _WINDOWS_PER_FORWARD]
        crops = torch.cat(
            [image[:, :, top : top + crop_height, left : left + crop_width] for top, left in group]
        )
        crop_logits = _forward_logits(model, crops, num_classes)
        for (top, left), logits in zip(group, crop_logits, strict=True):
            logit_sum[0, :, top : top + crop_height, left : left + crop_width] += logits
            window_count[:, :, top : top + crop_height, left : left + crop_width] += 1
    return (logit_sum / window_count)[:, :, :height, :width]


@torch.no_grad()
def infer_logits(
    model: nn.Module,
    image: Tensor,
    mode: str = "whole",
    crop_size: tuple[int, int] = (512, 512),
    stride: tuple[int, int] = (341, 341),
    num_classes: int = NUM_CLASSES,
) -> Tensor:
    """Logits of one image at its own resolution.

    image: (1,3,h,w) float, ImageNet-normalised. mode "whole" runs the network once;
    "slide" averages the logits of crop_size (height, width) windows every stride
    (height, width) pixels (mmseg slide_inference). Returns (1,K,h,w) float32.
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one image (1,3,h,w), got shape {tuple(image.shape)}")
    if mode == "whole":
        return _forward_logits(model, image, num_classes)
    if mode == "slide":
        if min(stride) < 1 or any(
            step > crop for step, crop in zip(stride, crop_size, strict=True)
        ):
            # A stride above the crop would leave pixels that no window covers.
            raise OmudaError(f"slide inference needs 1 <= stride {stride} <= crop {crop_size}")
        return _slide_logits(model, image, crop_size, stride, num_classes)
    raise OmudaError(f"unknown inference mode {mode!r}; valid: {', '.join(INFERENCE_MODES)}")


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _nanmean(values: list[float]) -> float:
    present = [value for value in values if not math.isnan(value)]
    return sum(present) / len(present) if present else math.nan


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.2f}"


# The SYNTHIA -> Cityscapes protocols score 16 classes (SYNTHIA has no terrain, truck or
# train) and 13 (also without wall, fence and pole); their rows say so by name.
SYNTHIA_16_LABEL = "mIoU (16, SYNTHIA)"
SYNTHIA_13_LABEL = "mIoU (13, SYNTHIA)"
PROTOCOL_NOTE = (
    "(16, SYNTHIA), (13, SYNTHIA): the SYNTHIA->Cityscapes protocols (16: no terrain, truck,"
    " train; 13: also no wall, fence, pole)"
)


def iou_rows(columns: dict[str, list[float | None]]) -> list[tuple[str, list[float]]]:
    """(label, one value per column) rows of a per-class IoU table: one row per class, then
    the mIoU rows (all K classes; with K = 19 also the SYNTHIA 16- and 13-class means).

    columns maps a name to K per-class IoUs as fractions (None or NaN = absent class, kept
    as NaN).
    """
    if not columns:
        raise ValueError("iou_table needs at least one column")
    columns = {
        name: [math.nan if value is None else float(value) for value in values]
        for name, values in columns.items()
    }
    num_classes = len(next(iter(columns.values())))
    for name, values in columns.items():
        if len(values) != num_classes:
            raise ValueError(f"column {name!r} has {len(values)} values, expected {num_classes}")

    names = CLASS_NAMES if num_classes == NUM_CLASSES else tuple(map(str, range(num_classes)))
    rows = [
        (name, [values[index] for values in columns.values()]) for index, name in enumerate(names)
    ]
    summaries: list[tuple[str, list[int]]] = [(f"mIoU ({num_classes})", list(range(num_classes)))]
    if num_classes == NUM_CLASSES:
        summaries += [
            (SYNTHIA_16_LABEL, list(SYNTHIA_16_CLASSES)),
            (SYNTHIA_13_LABEL, list(SYNTHIA_13_CLASSES)),
        ]
    return rows + [
        (label, [_nanmean([values[c] for c in subset]) for values in columns.values()])
        for label, subset in summaries
    ]


def format_text_table(
    header: list[str], rows: list[tuple[str, list[str]]], summary_from: int
) -> str:
    """A plain-text table: `header` (first cell = the label column's title), one line per
    row of already formatted cells, a rule before row index `summary_from`."""
    name_width = max(len(label) for label in [header[0], *(label for label, _ in rows)])
    widths = [max(len(name), 6) for name in header[1:]]
    line = header[0].ljust(name_width) + "".join(
        f"  {name:>{width}}" for name, width in zip(header[1:], widths, strict=True)
    )
    rule = "-" * len(line)

    def format_row(label: str, cells: list[str]) -> str:
        return label.ljust(name_width) + "".join(
            f"  {cell:>{width}}" for cell, width in zip(cells, widths, strict=True)
        )

    lines = [line, rule]
    lines += [format_row(label, cells) for label, cells in rows[:summary_from]]
    lines.append(rule)
    lines += [format_row(label, cells) for label, cells in rows[summary_from:]]
    return "\n".join(lines)


def iou_table(columns: dict[str, list[float | None]]) -> str:
    """Side-by-side per-class IoU table in percent: one column per name, each holding K
    per-class IoUs as fractions (None or NaN = absent class, printed "-"), followed by the
    mIoU rows (all K classes; with K = 19 also the SYNTHIA 16- and 13-class means, named
    as such, and a line explaining them)."""
    rows = iou_rows(columns)
    num_classes = len(next(iter(columns.values())))
    cells = [(label, [_percent(value) for value in values]) for label, values in rows]
    table = format_text_table(["class", *columns], cells, num_classes)
    return table + ("\n" + PROTOCOL_NOTE if num_classes == NUM_CLASSES else "")


def comparison_table(results: dict[str, dict]) -> str:
    """Per-class IoU of several runs side by side, e.g. {"source-only": ..., "omuda": ...},
    each value an `EvalResult.to_dict()` (as saved in eval.json)."""
    if not results:
        raise OmudaError("nothing to compare: no evaluation results given")
    columns = {}
    for name, result in results.items():
        if not isinstance(result, dict) or not isinstance(result.get("iou"), list):
            raise OmudaError(f"evaluation {name!r} holds no per-class 'iou' list")
        columns[name] = result["iou"]
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise OmudaError(f"the evaluations score different numbers of classes: {sorted(lengths)}")
    return iou_table(columns)


def check_result_path(out: Path, checkpoint: Path, input_folders: Sequence[Path]) -> None:
    """OmudaError unless `out` may receive an evaluation result: a .json file outside every
    input folder that does not exist yet or holds an earlier result. A checkpoint (or its
    hard link), a config or a dataset file is never replaced."""
    out = Path(out)
    if out.suffix.lower() != ".json" or out.is_dir():
        raise OmudaError(
            f"--out {out} must name a .json file: evaluation never replaces a checkpoint, a"
            " config or a data file"
        )
    if out.exists() and out.samefile(checkpoint):
        raise OmudaError(f"--out {out} is the checkpoint itself; it is left as it is")
    for folder in input_folders:
        if out.resolve().is_relative_to(Path(folder).resolve()):
            raise OmudaError(f"--out {out} lies in the dataset folder {folder}: choose another")
    if out.exists() and not _holds_result(out):
        raise OmudaError(f"--out {out} exists and is not an evaluation result; it is left as it is")


def _holds_result(path: Path) -> bool:
    """True for a JSON file written by `omuda evaluate` or `omuda train` (eval.json)."""
    try:
        if path.stat().st_size > 1 << 20:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and ("iou" in data or "eval" in data)


@dataclass
class EvalResult:
    """Scores of one evaluation; IoUs are fractions in 0..1, NaN where a class is absent
    from both labels and predictions."""

    iou: list[float]  # per class, K values
    miou: float  # mean over all K classes (19 for Cityscapes)
    miou16: float  # SYNTHIA protocol: 19 minus terrain, truck, train
    miou13: float  # SYNTHIA protocol: 16 minus wall, fence, pole
    pixel_accuracy: float
    num_images: int

    def table(self, extra_columns: dict[str, list[float]] | None = None, title: str = "IoU") -> str:
        """Per-class IoU table in percent, one row per class plus the mIoU rows.

        extra_columns maps a column name to K per-class IoUs (fractions, like `self.iou`),
        e.g. {"source-only": other.iou}, printed beside this result's column `title`.
        """
        columns = {title: list(self.iou), **(extra_columns or {})}
        accuracy = f"pixel accuracy {_percent(self.pixel_accuracy)}, {self.num_images} images"
        return iou_table(columns) + "\n" + accuracy

    def to_dict(self) -> dict:
        """JSON-ready copy of the fields; NaN becomes None. `classes` names the `iou`
        entries in order; `miou16` / `miou13` are the SYNTHIA protocols' means."""
        names = CLASS_NAMES if len(self.iou) == NUM_CLASSES else range(len(self.iou))
        return {
            "classes": [str(name) for name in names],
            "iou": [_nan_to_none(value) for value in self.iou],
            "miou": _nan_to_none(self.miou),
            "miou16": _nan_to_none(self.miou16),
            "miou13": _nan_to_none(self.miou13),
            "pixel_accuracy": _nan_to_none(self.pixel_accuracy),
            "num_images": self.num_images,
        }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    device: torch.device,
    mode: str = "whole",
    crop_size: tuple[int, int] = (512, 512),
    stride: tuple[int, int] = (341, 341),
    num_classes: int = NUM_CLASSES,
    amp_dtype: torch.dtype | None = None,
    progress: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> EvalResult:
    """mIoU of `model` on `dataset`, each rank scoring items rank, rank+world_size, ...

    Dataset items: {"image": uint8 (3,h,w) at the test scale, "label": int64 (H,W) at full
    size, 255 = ignore}. Logits are resized bilinearly to (H,W) before the argmax. All
    ranks must call this; the counts are summed across ranks, so every rank gets the same
    result. The model's train/eval mode is restored afterwards.
    """
    if mode not in INFERENCE_MODES:
        raise OmudaError(f"unknown inference mode {mode!r}; valid: {', '.join(INFERENCE_MODES)}")
    device = torch.device(device)
    confusion = ConfusionMatrix(num_classes, device)
    indices = range(rank, len(dataset), world_size)
    autocast = autocast_factory(device, amp_dtype)
    was_training = model.training
    model.eval()
    try:
        for index in tqdm(indices, desc="eval", disable=not progress, dynamic_ncols=True):
            item = dataset[index]
            image = normalize(item["image"].unsqueeze(0).to(device, non_blocking=True))
            label = item["label"].to(device, non_blocking=True).long()
            with autocast():
                logits = infer_logits(model, image, mode, crop_size, stride, num_classes)
            logits = F.interpolate(
                logits.float(), size=label.shape[-2:], mode="bilinear", align_corners=False
            )
            confusion.update(logits.argmax(dim=1), label.unsqueeze(0))
    finally:
        model.train(was_training)

    confusion.reduce_across_ranks()
    num_images = all_reduce_sum_(torch.tensor([len(indices)], device=device))
    per_class = confusion.iou().tolist()
    has_synthia_classes = num_classes == NUM_CLASSES
    return EvalResult(
        iou=per_class,
        miou=confusion.mean_iou(),
        miou16=confusion.mean_iou(SYNTHIA_16_CLASSES) if has_synthia_classes else math.nan,
        miou13=confusion.mean_iou(SYNTHIA_13_CLASSES) if has_synthia_classes else math.nan,
        pixel_accuracy=confusion.pixel_accuracy(),
        num_images=int(num_images.item()),
    )


def evaluate_as_configured(
    model: nn.Module,
    dataset: Dataset,
    cfg: Config,
    dist_info: DistInfo,
    amp_dtype: torch.dtype | None,
    progress: bool,
) -> EvalResult:
    """`evaluate` with the config's inference settings (eval.mode, eval.crop_size,
    eval.stride, model.num_classes), this process's share of the ranks of `dist_info`."""
    return evaluate(
        model,
        dataset,
        dist_info.device,
        mode=cfg.eval.mode,
        crop_size=cfg.eval.crop_size,
        stride=cfg.eval.stride,
        num_classes=cfg.model.num_classes,
        amp_dtype=amp_dtype,
        progress=progress,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
    )
