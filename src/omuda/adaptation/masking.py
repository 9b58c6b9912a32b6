"""Keep masks for masked image consistency: MIC blocks, OMUDA's CAM, SimMIM patches, GridMask.

Every mask is (B,1,H,W) float with 1 = keep and 0 = masked; `apply_mask` zeroes the masked
pixels of a normalised image (0 there is the dataset mean colour), as MIC does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from omuda.adaptation._random import uniform


def _upsample_cells(cells: Tensor, cell_size: int, height: int, width: int) -> Tensor:
    """(B,1,h,w) -> (B,1,height,width): each cell repeated cell_size times, then cropped."""
    expanded = cells.repeat_interleave(cell_size, dim=2).repeat_interleave(cell_size, dim=3)
    return expanded[:, :, :height, :width]


def block_mask(
    shape: tuple[int, int, int],
    block_size: int = 32,
    mask_ratio: float = 0.7,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """MIC's random block mask: each block is kept where U(0,1) > mask_ratio.

    shape (B,H,W) -> (B,1,H,W) float on `device`. The grid has ceil(H/block) x ceil(W/block)
    blocks; blocks are nearest-upsampled and cropped, so sides need not divide by the block.
    Draws one (B,1,ceil(H/block),ceil(W/block)) uniform tensor from `generator`.
    """
    batch, height, width = shape
    grid = (batch, 1, math.ceil(height / block_size), math.ceil(width / block_size))
    kept_blocks = (uniform(grid, generator, device) > mask_ratio).float()
    return _upsample_cells(kept_blocks, block_size, height, width)


def context_aware_mask(
    y_pseudo: Tensor,
    foreground_classes: Sequence[int],
    fine_block: int = 16,
    coarse_block: int = 32,
    mask_ratio: float = 0.7,
    generator: torch.Generator | None = None,
) -> Tensor:
    """OMUDA's CAM (eqs. 6-7): fine blocks on foreground pixels, coarse blocks elsewhere.

    y_pseudo (B,H,W) long, the teacher's pseudo-label of the clean target -> (B,1,H,W) float
    on y_pseudo's device. A pixel whose pseudo-label is in `foreground_classes` takes the
    value of a `block_mask` with `fine_block`, every other pixel (ignore included) that of a
    `block_mask` with `coarse_block`, both with `mask_ratio`. Draw order: the fine mask first,
    then the coarse one, from the same `generator`.
    """
    shape = tuple(y_pseudo.shape)
    device = y_pseudo.device
    fine = block_mask(shape, fine_block, mask_ratio, generator, device)
    coarse = block_mask(shape, coarse_block, mask_ratio, generator, device)
    foreground_ids = torch.as_tensor(list(foreground_classes), dtype=y_pseudo.dtype, device=device)
    is_foreground = torch.isin(y_pseudo, foreground_ids).unsqueeze(1)
    return torch.where(is_foreground, fine, coarse)


def random_patch_mask(
    shape: tuple[int, int, int],
    patch_size: int = 32,
    mask_ratio: float = 0.7,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """SimMIM-style random patch mask: a fixed number of patches masked in every image.

    shape (B,H,W) -> (B,1,H,W) float. Of the n = ceil(H/p) * ceil(W/p) patches of each image,
    exactly ceil(mask_ratio * n) (SimMIM's count) are masked, chosen uniformly without
    replacement (the lowest random scores); patches are cropped at the image border.
    """
    batch, height, width = shape
    rows, cols = math.ceil(height / patch_size), math.ceil(width / patch_size)
    num_patches = rows * cols
    num_masked = math.ceil(mask_ratio * num_patches)
    scores = uniform((batch, num_patches), generator, device)
    rank = scores.argsort(dim=1).argsort(dim=1)
    kept_patches = (rank >= num_masked).float().view(batch, 1, rows, cols)
    return _upsample_cells(kept_patches, patch_size, height, width)


def grid_mask(
    shape: tuple[int, int, int],
    unit: int = 64,
    mask_ratio: float = 0.7,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """GridMask (Chen et al., 2020): a regular grid of masked squares with a random offset.

    shape (B,H,W) -> (B,1,H,W) float. Each `unit` x `unit` grid cell masks one square of side
    round(sqrt(mask_ratio) * unit) at its top-left; the grid is shifted per image by an offset
    drawn uniformly in [0, unit) along each axis, and not rotated. GridMask's own defaults
    (unit d random in [96, 224] on ImageNet, kept edge ratio r = 0.6, i.e. 16% masked) are a
    classification setting; here `mask_ratio` is the masked pixel fraction (exact when the
    sides divide by `unit`), 0.7 by default like the other masks, so the masking ablation
    compares patterns at equal masked area.
    """
    batch, height, width = shape
    side = round(math.sqrt(mask_ratio) * unit)
    offsets = torch.floor(uniform((batch, 2), generator, device) * unit).long()
    rows = torch.arange(height, device=offsets.device).view(1, height, 1)
    cols = torch.arange(width, device=offsets.device).view(1, 1, width)
    in_row_band = (rows - offsets[:, 0].view(-1, 1, 1)).remainder(unit) < side
    in_col_band = (cols - offsets[:, 1].view(-1, 1, 1)).remainder(unit) < side
    masked = in_row_band & in_col_band
    return (~masked).float().unsqueeze(1)


def apply_mask(x: Tensor, keep: Tensor) -> Tensor:
    """Masked image: x (B,3,H,W) normalised, keep (B,1,H,W) in {0,1} -> x * keep."""
    return x * keep
