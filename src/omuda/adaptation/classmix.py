"""ClassMix as DACS uses it: paste half of a source image's classes onto a target image."""

from __future__ import annotations

import torch
from torch import Tensor

from omuda.adaptation._random import uniform

_LABEL_BINS = 256  # train ids are < 255 and 255 is ignore, so every label value has a bin


def classmix_masks(
    y_src: Tensor, generator: torch.Generator | None = None, ignore_index: int = 255
) -> Tensor:
    """Per image, a mask of the pixels of half of the classes in its source label.

    y_src (B,H,W) long, values in [0, 255], `ignore_index` = ignore -> (B,1,H,W) float in {0,1}.

    With n classes present (ignore excluded), (n + n % 2) // 2 = ceil(n/2) of them are chosen
    uniformly without replacement, as DACS does; an image with no labelled pixel gets an empty
    mask. Unlike DAFormer's code, the classes come from each image alone, not from the batch.
    Sync-free: classes are ranked by random scores on the device, no Python loop over images.
    """
    batch = y_src.shape[0]
    labels_flat = y_src.reshape(batch, -1)
    present = torch.zeros(batch, _LABEL_BINS, dtype=torch.bool, device=y_src.device)
    present.scatter_(1, labels_flat.clamp(0, _LABEL_BINS - 1), True)
    present[:, ignore_index] = False
    num_present = present.sum(dim=1, keepdim=True)
    num_chosen = (num_present + 1) // 2
    # Absent classes score -1 so the random ranking puts every present class first.
    scores = torch.where(present, uniform((batch, _LABEL_BINS), generator, y_src.device), -1.0)
    rank = scores.argsort(dim=1, descending=True).argsort(dim=1)
    chosen = present & (rank < num_chosen)
    pasted = chosen.gather(1, labels_flat.clamp(0, _LABEL_BINS - 1))
    return pasted.view_as(y_src).unsqueeze(1).float()


def mix(mask: Tensor, src: Tensor, tgt: Tensor) -> Tensor:
    """mask * src + (1 - mask) * tgt for images, labels or weights; keeps src's dtype.

    mask (B,1,H,W) in {0,1}; src and tgt both (B,C,H,W) or both (B,H,W), any dtype.
    """
    selector = mask.bool()
    if src.dim() == 3:
        selector = selector[:, 0]
    return torch.where(selector, src, tgt)


def classmix(
    x_src: Tensor,
    y_src: Tensor,
    x_tgt: Tensor,
    y_pseudo: Tensor,
    w_pseudo: Tensor,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mixed image, labels and weights of DACS ClassMix.

    x_src, x_tgt (B,3,H,W) float; y_src (B,H,W) long (255 = ignore); y_pseudo (B,H,W) long;
    w_pseudo (B,H,W) float -> x_mix (B,3,H,W), y_mix (B,H,W) long, w_mix (B,H,W) float
    (1 on pasted source pixels, w_pseudo elsewhere), mix_mask (B,1,H,W) float (1 = pasted).
    """
    mix_mask = classmix_masks(y_src, generator)
    x_mix = mix(mix_mask, x_src, x_tgt)
    y_mix = mix(mix_mask, y_src, y_pseudo)
    w_mix = mix(mix_mask, torch.ones_like(w_pseudo), w_pseudo)
    return x_mix, y_mix, w_mix, mix_mask
