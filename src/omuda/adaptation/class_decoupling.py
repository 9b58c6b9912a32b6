"""OMUDA's CDM (paper III-D, SPEC section 5): class-decoupled, disagreement-weighted CE.

L_norm (eq. 13) averages the pixel loss within each pseudo-label class; beta_k (eq. 14) is a
running per-class rate of student/pseudo-label disagreement on target pixels; L_w_norm
(eq. 15) combines the class means with weights w_k from beta_k. The paper's equations give
w_k = beta_k ("difficulty"), its text w_k = 1 - beta_k ("reliability"); both are offered.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

DIRECTIONS = ("difficulty", "reliability")


def _per_class_totals(
    values: Tensor, labels: Tensor, num_classes: int, ignore_index: int
) -> tuple[Tensor, Tensor]:
    """Sum of `values` and pixel count per class of `labels`, ignore and out-of-range dropped.

    values (B,H,W) float, labels (B,H,W) long -> sums (K,), counts (K,), both float32.
    """
    valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
    # Invalid pixels go to an extra bin K that is dropped: no boolean indexing, no host sync.
    bins = torch.where(valid, labels, num_classes).reshape(-1)
    sums = torch.zeros(num_classes + 1, device=values.device, dtype=torch.float32)
    sums.index_add_(0, bins, torch.where(valid, values, 0.0).reshape(-1).float())
    counts = torch.zeros(num_classes + 1, device=values.device, dtype=torch.float32)
    counts.index_add_(0, bins, valid.reshape(-1).float())
    return sums[:num_classes], counts[:num_classes]


def class_balanced_cross_entropy(
    logits: Tensor,
    y_pseudo: Tensor,
    pixel_weight: Tensor,
    class_weight: Tensor,
    ignore_index: int = 255,
    balance: float = 1.0,
) -> Tensor:
    """Class-decoupled weighted cross-entropy L_w_norm (eqs. 13 and 15).

    logits (B,K,H,W) float; y_pseudo (B,H,W) long (`ignore_index` = ignore); pixel_weight
    (B,H,W) float (the confidence q, multiplied into each pixel's CE); class_weight (K,) float
    >= 0 -> scalar float32.

    S_k = sum over valid pixels with y_pseudo = k of pixel_weight * CE, n_k the number of those
    pixels (a zero-weight pixel still counts in n_k, as it counts in DAFormer's plain mean).
    Loss = sum_k w_k n_k^-g S_k / sum_k w_k n_k^(1-g) over present classes, g = `balance`:
    - g = 1 (eq. 13, the default): sum_k w_k mean_k / sum_k w_k, the weighted mean of the
      per-class means; uniform weights give the mean of the class means.
    - g = 0: the class weights on the plain pixel mean; uniform weights give plain CE.
    - in between, a class's share grows as n_k^(1-g): partial re-balancing.
    A single present class gives its plain weighted CE for any g; a class absent from the
    batch contributes nothing. No valid pixel -> exact 0.
    """
    num_classes = logits.shape[1]
    per_pixel = F.cross_entropy(
        logits.float(), y_pseudo, ignore_index=ignore_index, reduction="none"
    )
    sums, counts = _per_class_totals(per_pixel * pixel_weight, y_pseudo, num_classes, ignore_index)
    present_weight = torch.where(counts > 0, class_weight.float(), 0.0)
    safe_counts = counts.clamp(min=1.0)
    numerator = (present_weight * sums * safe_counts.pow(-balance)).sum()
    denominator = (present_weight * safe_counts.pow(1.0 - balance)).sum()
    return numerator / denominator.clamp(min=1e-12)


def class_weights(disagreement: Tensor, direction: str, min_weight: float = 0.05) -> Tensor:
    """Per-class weights w_k from the running disagreement rates beta_k.

    disagreement (K,) float in [0,1] -> (K,) float. "difficulty": w_k = beta_k (eqs. 14-15,
    more weight to classes the student disputes); "reliability": w_k = 1 - beta_k (the text:
    unreliable classes down-weighted). Both are floored at `min_weight` (0.05) so no class
    is silenced entirely, and capped at 1.
    """
    if direction == "difficulty":
        weights = disagreement
    elif direction == "reliability":
        weights = 1.0 - disagreement
    else:
        raise ValueError(f"unknown CDM direction {direction!r}; expected one of {DIRECTIONS}")
    return weights.clamp(min=min_weight, max=1.0)


def update_disagreement(
    running: Tensor,
    updates: Tensor,
    pred_student: Tensor,
    y_pseudo: Tensor,
    valid: Tensor,
    momentum: float = 0.99,
    reduce_sum: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """EMA of the per-class disagreement rate beta_k = d_k / n_k (eq. 14).

    running (K,) float; updates (K,) float, how many batches each class has been seen in;
    pred_student (B,H,W) long (detached student argmax); y_pseudo (B,H,W) long; valid (B,H,W)
    bool -> (new running (K,), new updates (K,)). On this batch n_k counts valid pixels with
    y_pseudo = k and d_k those where the student predicts another class; classes with
    n_k > 0 get momentum * running + (1 - momentum) * d_k / n_k, the others keep their value.
    `reduce_sum` (e.g. a sum over DDP ranks) is applied to the stacked (2,K) d_k and n_k, so
    every rank updates from the global batch and the statistic stays identical across ranks.
    Read the rates through `debiased_disagreement`: the EMA starts at 0.
    """
    num_classes = running.numel()
    labels = torch.where(valid, y_pseudo, -1)
    disagrees = (pred_student != y_pseudo).float()
    totals = torch.stack(_per_class_totals(disagrees, labels, num_classes, ignore_index=-1))
    if reduce_sum is not None:
        totals = reduce_sum(totals)
    disagreements, counts = totals[0], totals[1]
    batch_rate = disagreements / counts.clamp(min=1.0)
    updated = momentum * running + (1.0 - momentum) * batch_rate.to(running.dtype)
    seen = counts > 0
    return torch.where(seen, updated, running), updates + seen.to(updates.dtype)


def debiased_disagreement(running: Tensor, updates: Tensor, momentum: float = 0.99) -> Tensor:
    """Bias-corrected rates running / (1 - momentum^updates), as Adam corrects its moments.

    running, updates (K,) -> (K,). Without the correction a class seen in few batches keeps a
    rate near the initial 0 (after 20 updates only 18% of its true value at momentum 0.99):
    rare classes, the ones CDM is about, would never be weighted by their disagreement.
    Classes never seen get 0.
    """
    correction = 1.0 - momentum**updates
    return torch.where(updates > 0, running / correction.clamp(min=1e-12), 0.0)
