"""Teacher pseudo-labels with DAFormer's confidence weight (SPEC section 4, step 4)."""

from __future__ import annotations

import torch
from torch import Tensor


def pseudo_labels(
    logits_tgt: Tensor,
    threshold: float = 0.968,
    ignore_top: int = 15,
    ignore_bottom: int = 120,
    per_image: bool = True,
) -> tuple[Tensor, Tensor]:
    """Hard pseudo-labels and their confidence weights from teacher logits.

    logits_tgt (B,K,H,W) float (detached here) -> y_pseudo (B,H,W) long (argmax of the
    softmax), w_pseudo (B,H,W) float32.

    The weight q is the fraction of pixels whose max softmax probability is >= `threshold`,
    broadcast to every pixel; rows [0, ignore_top) and the last `ignore_bottom` rows get 0
    (they show the ego vehicle / image border in Cityscapes; the values are in pixels of the
    crop, so the caller scales them for other crop heights).

    per_image=True (default) gives each image its own q, shape (B,): an image's weight then
    depends only on its own prediction, not on which other image shares the batch, and does
    not change with the batch size. per_image=False reproduces DAFormer: one q over the batch.
    """
    probs = torch.softmax(logits_tgt.detach().float(), dim=1)
    max_prob, y_pseudo = probs.max(dim=1)
    confident = (max_prob >= threshold).float()
    if per_image:
        confidence = confident.mean(dim=(1, 2)).view(-1, 1, 1)
    else:
        confidence = confident.mean().view(1, 1, 1)
    height = logits_tgt.shape[-2]
    rows = torch.arange(height, device=logits_tgt.device)
    # Comparing row indices (not slicing [-ignore_bottom:]) keeps ignore_bottom=0 meaning "none".
    row_kept = (rows >= ignore_top) & (rows < height - ignore_bottom)
    w_pseudo = confidence * row_kept.float().view(1, height, 1)
    w_pseudo = w_pseudo.expand_as(max_prob).contiguous()
    return y_pseudo, w_pseudo
