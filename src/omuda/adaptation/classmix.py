"""ClassMix as DACS uses it: paste half of the source classes onto a target image.

The classes are a (B,256) bool table, one row per image (column c = label value c), so the
drawing (`sample_mix_classes`) and the mixing (`class_mask`, `classmix`) are separate and a
recorded choice can be replayed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from omuda.adaptation._random import uniform

LABEL_BINS = 256  # train ids are < 255 and 255 is ignore, so every label value has a bin
SCOPES: tuple[str, ...] = ("batch", "image")


def candidate_classes(y_src: Tensor, scope: str = "batch", ignore_index: int = 255) -> Tensor:
    """The label values each image may paste: y_src (B,H,W) long in [0,255] -> (B,256) bool.

    scope "batch" (DACS's `get_class_masks`): every row holds the values of the whole batch,
    `ignore_index` included (`torch.unique(labels)`); "image": each image's own values,
    without `ignore_index`.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    batch = y_src.shape[0]
    labels_flat = y_src.reshape(batch, -1).clamp(0, LABEL_BINS - 1)
    present = torch.zeros(batch, LABEL_BINS, dtype=torch.bool, device=y_src.device)
    present.scatter_(1, labels_flat, True)
    if scope == "batch":
        return present.any(dim=0, keepdim=True).expand(batch, -1).clone()
    present[:, ignore_index] = False
    return present


def sample_mix_classes(
    y_src: Tensor,
    generator: torch.Generator | None = None,
    scope: str = "batch",
    ignore_index: int = 255,
) -> Tensor:
    """Draw the pasted classes: y_src (B,H,W) long -> (B,256) bool, True = pasted.

    Of the n candidates of an image (`candidate_classes`), (n + n % 2) // 2 = ceil(n/2) are
    chosen uniformly without replacement, as DACS does; no candidate gives an empty row.
    Sync-free: candidates are ranked by random scores on the device.
    """
    candidates = candidate_classes(y_src, scope, ignore_index)
    batch = y_src.shape[0]
    num_chosen = (candidates.sum(dim=1, keepdim=True) + 1) // 2
    # Non-candidates score -1 so the random ranking puts every candidate first.
    scores = torch.where(candidates, uniform((batch, LABEL_BINS), generator, y_src.device), -1.0)
    rank = scores.argsort(dim=1, descending=True).argsort(dim=1)
    return candidates & (rank < num_chosen)


def classes_table(classes: list[list[int]], device: torch.device | str | None = None) -> Tensor:
    """(B,256) bool table from per-image lists of label values (e.g. recorded choices)."""
    table = torch.zeros(len(classes), LABEL_BINS, dtype=torch.bool, device=device)
    for row, values in enumerate(classes):
        table[row, list(values)] = True
    return table


def class_mask(y_src: Tensor, chosen: Tensor) -> Tensor:
    """Pixels whose label is chosen: y_src (B,H,W) long, chosen (B,256) bool -> (B,1,H,W)
    float in {0,1} (DACS's `generate_class_mask`; a chosen value absent from the image adds
    nothing, a chosen 255 pastes the ignored pixels)."""
    labels_flat = y_src.reshape(y_src.shape[0], -1).clamp(0, LABEL_BINS - 1)
    pasted = chosen.gather(1, labels_flat)
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
    chosen: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mixed image, labels and weights of DACS ClassMix (`one_mix`) for the chosen classes.

    x_src, x_tgt (B,3,H,W) float; y_src (B,H,W) long (255 = ignore); y_pseudo (B,H,W) long;
    w_pseudo (B,H,W) float; chosen (B,256) bool (`sample_mix_classes`) -> x_mix (B,3,H,W),
    y_mix (B,H,W) long, w_mix (B,H,W) float (1 on pasted source pixels, w_pseudo
    elsewhere), mix_mask (B,1,H,W) float (1 = pasted).
    """
    mix_mask = class_mask(y_src, chosen)
    x_mix = mix(mix_mask, x_src, x_tgt)
    y_mix = mix(mix_mask, y_src, y_pseudo)
    w_mix = mix(mix_mask, torch.ones_like(w_pseudo), w_pseudo)
    return x_mix, y_mix, w_mix, mix_mask
