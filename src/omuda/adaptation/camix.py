"""CAMix (Zhou et al., TCSVT 2022): context-aware mixing from a spatial prior, and its
significance-reweighted consistency loss.

After a warm-up with plain ClassMix, CAMix cuts from the *target* image and pastes onto the
source one (the reverse of ClassMix):

1. a class-wise spatial prior P(class | image position) is accumulated over label maps
   (the authors' code: over the source labels, once, in the target image's frame);
2. the teacher's target softmax times the prior, cropped to the target crop's window,
   gives a "spatial pseudo-label" (its argmax);
3. half of that map's classes are chosen at random and closed under contextual relations
   (pole with traffic light / sign, rider with motorcycle / bicycle): the contextual mask;
4. image, labels (source ground truth, teacher pseudo-labels) and weights are mixed by it;
5. a significance mask (teacher entropy under a ramped threshold on target pixels, 1 on
   source pixels), mixed by the same mask, reweights the cross-entropy.

Every function is a pure tensor function; none synchronises with the host.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from omuda.adaptation._random import uniform
from omuda.adaptation.classmix import mix
from omuda.data.labels import IGNORE_INDEX

_LABEL_BINS = 256  # train ids are < 255 and 255 is ignore, so every label value has a bin

# Contextual relations of the authors' code on Cityscapes train ids, applied in this order:
# when any anchor class is chosen, every partner class present in the image is chosen too.
CONTEXT_RULES: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((6, 7), (5,)),  # a chosen traffic light or sign brings its pole
    ((5,), (6, 7)),  # a chosen pole brings the traffic lights and signs
    ((12,), (17, 18)),  # a chosen rider brings the motorcycles and bicycles
)


def accumulate_spatial_counts(
    counts: Tensor, labels: Tensor, decay: float = 1.0, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Add a batch of label maps to per-class spatial counts on a fixed small grid.

    counts (K,h,w) float; labels (B,H,W) long with values in [0, K) or `ignore_index`, each
    covering the frame the prior describes (e.g. a whole source label map) -> new counts
    (K,h,w) = decay * counts + the batch's counts. A grid cell adds, per class, the fraction
    of its pixels labelled with that class (ignored pixels add nothing), so an image adds at
    most 1 to a cell. decay < 1 gives a running (exponentially decaying) prior.
    """
    num_classes, height, width = counts.shape
    valid = labels != ignore_index
    one_hot = torch.zeros(
        labels.shape[0], num_classes, *labels.shape[1:], device=labels.device, dtype=counts.dtype
    )
    one_hot.scatter_(
        1, torch.where(valid, labels, 0).unsqueeze(1), valid.unsqueeze(1).to(counts.dtype)
    )
    fractions = F.adaptive_avg_pool2d(one_hot, (height, width))
    return counts * decay + fractions.sum(dim=0)


def spatial_prior(counts: Tensor) -> Tensor:
    """P(class | grid cell) from spatial counts: (K,h,w) float -> (K,h,w) float.

    Each cell's counts divided by its total; a cell that never saw a labelled pixel gets
    1/K for every class, so it leaves the teacher's ranking of classes unchanged there.
    """
    total = counts.sum(dim=0, keepdim=True)
    uniform_prior = torch.full_like(counts, 1.0 / counts.shape[0])
    return torch.where(
        total > 0, counts / total.clamp(min=torch.finfo(counts.dtype).tiny), uniform_prior
    )


def prior_for_crops(
    prior: Tensor, windows: Tensor, size: tuple[int, int], flipped: Tensor | None = None
) -> Tensor:
    """The prior seen through each training crop, sampled bilinearly at the crop's pixels.

    prior (K,h,w) over the whole image; windows (B,4) float (top, left, bottom, right) of each
    crop as fractions of the whole image's height and width; size (H,W) of the crop;
    flipped (B,) bool: the crop was mirrored left-right after cropping -> (B,K,H,W).
    Pixel centres follow `align_corners=False`; outside the prior the border value is used.
    With windows (0, 0, 1, 1) this equals `F.interpolate(..., mode="bilinear")`.
    """
    batch = windows.shape[0]
    top, left, bottom, right = windows.to(prior.dtype).unbind(dim=1)
    scale_x = right - left
    if flipped is not None:
        scale_x = torch.where(flipped, -scale_x, scale_x)
    zeros = torch.zeros_like(top)
    # Output coordinate u in [-1, 1] maps to input (right - left) * u + (left + right - 1).
    theta = torch.stack(
        [
            torch.stack([scale_x, zeros, left + right - 1.0], dim=1),
            torch.stack([zeros, bottom - top, top + bottom - 1.0], dim=1),
        ],
        dim=1,
    )
    shape = (batch, prior.shape[0], size[0], size[1])
    grid = F.affine_grid(theta, list(shape), align_corners=False)
    return F.grid_sample(
        prior.unsqueeze(0).expand(batch, -1, -1, -1),
        grid,
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )


def contextual_labels(probs_tgt: Tensor, prior_crops: Tensor) -> Tensor:
    """The spatial pseudo-label: argmax over classes of prior * teacher softmax.

    probs_tgt (B,K,H,W) softmax of the teacher on the target crop, prior_crops (B,K,H,W)
    -> (B,H,W) long. Ties go to the lowest class index. It only decides the mixing region;
    the pasted labels stay the teacher's own pseudo-labels.
    """
    return (probs_tgt * prior_crops).argmax(dim=1)


def contextual_class_mask(
    labels: Tensor,
    generator: torch.Generator | None = None,
    rules: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = CONTEXT_RULES,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """The contextual mask: half of each image's classes plus their contextual partners.

    labels (B,H,W) long (a spatial pseudo-label, or any label map; `ignore_index` is never
    chosen) -> (B,1,H,W) float in {0,1}, 1 on the pixels of the chosen classes.

    Per image, ceil(n/2) of its n classes are drawn uniformly without replacement (as
    ClassMix), then each rule (anchors, partners) in order adds every partner present in the
    image when any anchor is chosen. Sync-free: random scores ranked on the device.
    """
    batch = labels.shape[0]
    labels_flat = labels.reshape(batch, -1).clamp(0, _LABEL_BINS - 1)
    present = torch.zeros(batch, _LABEL_BINS, dtype=torch.bool, device=labels.device)
    present.scatter_(1, labels_flat, True)
    present[:, ignore_index] = False
    num_chosen = (present.sum(dim=1, keepdim=True) + 1) // 2
    scores = torch.where(present, uniform((batch, _LABEL_BINS), generator, labels.device), -1.0)
    rank = scores.argsort(dim=1, descending=True).argsort(dim=1)
    chosen = present & (rank < num_chosen)
    for anchors, partners in rules:
        triggered = chosen[:, list(anchors)].any(dim=1, keepdim=True)
        chosen[:, list(partners)] |= triggered & present[:, list(partners)]
    pasted = chosen.gather(1, labels_flat)
    return pasted.view_as(labels).unsqueeze(1).float()


def camix(
    x_src: Tensor,
    y_src: Tensor,
    x_tgt: Tensor,
    y_pseudo: Tensor,
    w_pseudo: Tensor,
    target_mask: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Paste the masked target pixels onto the source image, with labels and weights.

    x_src, x_tgt (B,3,H,W) float; y_src (B,H,W) long (255 = ignore); y_pseudo (B,H,W) long;
    w_pseudo (B,H,W) float; target_mask (B,1,H,W) in {0,1} (1 = target pixel kept) ->
    x_mix (B,3,H,W), y_mix (B,H,W) long, w_mix (B,H,W) float (w_pseudo on target pixels, 1
    on source pixels), source_region (B,1,H,W) float (1 = source pixel, as ClassMix's mask).
    """
    x_mix = mix(target_mask, x_tgt, x_src)
    y_mix = mix(target_mask, y_pseudo, y_src)
    w_mix = mix(target_mask, w_pseudo, torch.ones_like(w_pseudo))
    return x_mix, y_mix, w_mix, 1.0 - target_mask


def significance_threshold(
    iteration: int, rampup_iters: int, num_classes: int, start: float = 0.75
) -> float:
    """Entropy threshold of the significance mask at `iteration` (UA-MT's ramp).

    (start + (1 - start) * ramp) * ln(num_classes), ramp = exp(-5 (1 - t/T)^2) for t < T
    and 1 afterwards (T = rampup_iters; T = 0 means no ramp).
    """
    if rampup_iters <= 0 or iteration >= rampup_iters:
        ramp = 1.0
    else:
        ramp = math.exp(-5.0 * (1.0 - iteration / rampup_iters) ** 2)
    return (start + (1.0 - start) * ramp) * math.log(num_classes)


def significance_mask(probs_tgt: Tensor, threshold: float) -> Tensor:
    """1 where the teacher's prediction entropy -sum_k p ln p (nats) is below `threshold`.

    probs_tgt (B,K,H,W) softmax -> (B,H,W) float in {0,1}. p = 0 contributes 0.
    """
    entropy = torch.special.entr(probs_tgt.float()).sum(dim=1)
    return (entropy < threshold).float()


def significance_weighted_cross_entropy(
    logits: Tensor, labels: Tensor, pixel_weight: Tensor, significance: Tensor
) -> Tensor:
    """The significance-reweighted consistency loss of the CAMix paper.

    logits (B,K,H,W), labels (B,H,W) long (255 = ignore), pixel_weight (B,H,W) float,
    significance (B,H,W) in {0,1} -> scalar sum(significance * pixel_weight * CE) /
    sum(significance); 0 when no pixel is significant.

    The authors' public code averages pixel_weight * CE over all pixels before multiplying
    by the mask, so there the mask cancels and the loss equals `weighted_cross_entropy`
    whenever any pixel is significant.
    """
    per_pixel = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="none")
    weighted = per_pixel * pixel_weight * significance
    return weighted.sum() / significance.sum().clamp(min=1.0)
