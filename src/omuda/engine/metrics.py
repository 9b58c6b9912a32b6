"""Dataset-wide confusion matrix and the IoU / accuracy scores read from it.

mIoU follows the Cityscapes / mmseg protocol: intersections and unions are summed over the
whole dataset first, the per-class IoU is taken once at the end, and classes that occur
neither in the predictions nor in the labels are NaN and left out of the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from omuda.data.labels import NUM_CLASSES


class ConfusionMatrix:
    """Accumulates a (K,K) int64 confusion matrix on the device: rows = label, cols = prediction.

    Pixels whose label is outside 0..K-1 (the ignore value 255 in particular) are skipped.
    Updates stay on the device (no host sync); reading a score copies K*K counts to the host.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, device: torch.device | str = "cpu") -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def reset(self) -> None:
        """Set every count back to zero."""
        self.matrix.zero_()

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add one batch. pred (B,H,W) long class ids 0..K-1; target (B,H,W) long, 255 = ignore.

        Any shape works as long as both match; both must be on the matrix's device.
        """
        if pred.shape != target.shape:
            raise ValueError(
                f"prediction shape {tuple(pred.shape)} != label shape {tuple(target.shape)}"
            )
        num_classes = self.num_classes
        target = target.reshape(-1).long()
        pred = pred.reshape(-1).long()
        valid = (target >= 0) & (target < num_classes)
        # One flat index per (label, prediction) pair, counted in a single bincount.
        pair_index = target[valid] * num_classes + pred[valid]
        counts = torch.bincount(pair_index, minlength=num_classes * num_classes)
        self.matrix += counts.reshape(num_classes, num_classes)

    def reduce_across_ranks(self) -> None:
        """Sum the matrix over all ranks with one all_reduce (no-op in a single process)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.matrix)

    def iou(self) -> Tensor:
        """Per-class IoU (K,) float64 on the CPU; NaN for classes absent from labels and
        predictions alike."""
        matrix = self.matrix.double().cpu()
        intersection = matrix.diag()
        union = matrix.sum(dim=0) + matrix.sum(dim=1) - intersection
        return torch.where(union > 0, intersection / union.clamp(min=1), torch.nan)

    def mean_iou(self, classes: Sequence[int] | None = None) -> float:
        """Mean IoU over `classes` (all K when None), skipping NaN classes; NaN if all are."""
        per_class = self.iou()
        if classes is not None:
            per_class = per_class[list(classes)]
        return float(torch.nanmean(per_class))

    def pixel_accuracy(self) -> float:
        """Fraction of labelled pixels predicted correctly; NaN before any labelled pixel."""
        matrix = self.matrix.double().cpu()
        total = matrix.sum()
        if total == 0:
            return float("nan")
        return float(matrix.diag().sum() / total)
