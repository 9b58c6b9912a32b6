"""DAFormer's ImageNet feature distance (FD) on thing-class cells, plus its label downscaling."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def downscale_label_majority(
    y: Tensor,
    scale: int,
    num_classes: int,
    min_ratio: float = 0.75,
    ignore_index: int = 255,
) -> Tensor:
    """Label of each scale x scale cell: its majority class if that holds >= min_ratio.

    y (B,H,W) long, train ids in [0, num_classes), anything else = ignore ->
    (B, ceil(H/scale), ceil(W/scale)) long with `ignore_index` for cells without such a
    majority. As in DAFormer's `downscale_label_ratio`, ignore pixels count as one more class
    (a cell mostly ignore is ignore) and the share is over all the cell's pixels; cells cut by
    the image border use the pixels they do hold.
    """
    batch, height, width = y.shape
    cells_high, cells_wide = math.ceil(height / scale), math.ceil(width / scale)
    num_bins = num_classes + 1  # bin num_classes collects ignore and out-of-range ids
    bins = torch.where((y >= 0) & (y < num_classes), y, num_classes)
    rows = torch.arange(height, device=y.device) // scale
    cols = torch.arange(width, device=y.device) // scale
    cell_index = (rows.view(height, 1) * cells_wide + cols.view(1, width)).view(1, -1)
    # Histogram per (cell, class) with one scatter_add instead of a (B,K,H,W) one-hot tensor.
    slot = cell_index * num_bins + bins.reshape(batch, -1)
    counts = torch.zeros(batch, cells_high * cells_wide * num_bins, device=y.device)
    counts.scatter_add_(1, slot, torch.ones_like(slot, dtype=counts.dtype))
    counts = counts.view(batch, cells_high, cells_wide, num_bins)
    majority_count, majority = counts.max(dim=-1)
    share = majority_count / counts.sum(dim=-1)
    keep = (share >= min_ratio) & (majority < num_classes)
    return torch.where(keep, majority, ignore_index)


def thing_cell_mask(y_cells: Tensor, thing_classes: Sequence[int]) -> Tensor:
    """Cells whose label is a thing class: y_cells (B,h,w) long -> (B,h,w) bool."""
    thing_ids = torch.as_tensor(list(thing_classes), dtype=y_cells.dtype, device=y_cells.device)
    return torch.isin(y_cells, thing_ids)


def feature_distance_loss(
    feat_student: Tensor,
    feat_imnet: Tensor,
    y_src: Tensor,
    thing_classes: Sequence[int],
    num_classes: int = 19,
    min_ratio: float = 0.75,
    ignore_index: int = 255,
) -> Tensor:
    """Mean L2 distance between student and frozen ImageNet features over thing cells.

    feat_student, feat_imnet (B,C,h,w) float (feat_imnet is detached here); y_src (B,H,W)
    long -> scalar float32. The label is downscaled by `downscale_label_majority` with
    scale = ceil(H/h), which must give the (h,w) grid. Per cell, torch.norm over channels of
    the difference; the mean runs over cells whose label is in `thing_classes`. With no
    such cell the result is an exact, differentiable 0 (DAFormer's mean of an empty set is NaN).
    """
    height, width = y_src.shape[-2:]
    cells_high, cells_wide = feat_student.shape[-2:]
    if feat_imnet.shape[-2:] != feat_student.shape[-2:]:
        raise ValueError(
            f"feature grids differ: student {tuple(feat_student.shape[-2:])}, "
            f"ImageNet {tuple(feat_imnet.shape[-2:])}"
        )
    scale = math.ceil(height / cells_high)
    if (math.ceil(height / scale), math.ceil(width / scale)) != (cells_high, cells_wide):
        raise ValueError(
            f"labels {height}x{width} do not map onto the {cells_high}x{cells_wide} feature grid"
        )
    y_cells = downscale_label_majority(y_src, scale, num_classes, min_ratio, ignore_index)
    thing_cells = thing_cell_mask(y_cells, thing_classes).float()
    difference = feat_student.float() - feat_imnet.detach().float()
    distance = torch.linalg.vector_norm(difference, dim=1)
    return (distance * thing_cells).sum() / thing_cells.sum().clamp(min=1.0)
