"""Segmentation losses shared by the source, target and masked terms."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from omuda.data.labels import IGNORE_INDEX

AVERAGES: tuple[str, ...] = ("all", "labelled")


def cross_entropy(logits: Tensor, labels: Tensor, average: str = "all") -> Tensor:
    """Mean pixel cross-entropy; ignored pixels (255) add 0 to the sum.

    logits (B,K,H,W) float, labels (B,H,W) long -> scalar float32.
    average "all": the sum divided by all B*H*W pixels, ignored ones included (mmseg's
    decode-head loss, as DAFormer and MIC compute it); "labelled": divided by the labelled
    pixels only (0, not NaN, when every pixel is ignored).
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    per_pixel = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="none")
    if average == "all":
        return per_pixel.mean()
    valid = (labels != IGNORE_INDEX).sum()
    return per_pixel.sum() / valid.clamp(min=1)


def weighted_cross_entropy(logits: Tensor, labels: Tensor, pixel_weight: Tensor) -> Tensor:
    """DAFormer's target loss: mean over all pixels of weight * CE (ignored pixels add 0).

    logits (B,K,H,W), labels (B,H,W) long, pixel_weight (B,H,W) float -> scalar.
    """
    per_pixel = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="none")
    return (per_pixel * pixel_weight).mean()
