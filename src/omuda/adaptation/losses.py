"""Segmentation losses shared by the source, target and masked terms."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from omuda.data.labels import IGNORE_INDEX


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over labelled pixels; 0 (not NaN) when every pixel is ignored.

    logits (B,K,H,W) float, labels (B,H,W) long with 255 = ignore -> scalar.
    """
    per_pixel = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="none")
    valid = (labels != IGNORE_INDEX).sum()
    return per_pixel.sum() / valid.clamp(min=1)


def weighted_cross_entropy(logits: Tensor, labels: Tensor, pixel_weight: Tensor) -> Tensor:
    """DAFormer's target loss: mean over all pixels of weight * CE (ignored pixels add 0).

    logits (B,K,H,W), labels (B,H,W) long, pixel_weight (B,H,W) float -> scalar.
    """
    per_pixel = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="none")
    return (per_pixel * pixel_weight).mean()
