"""Keep masks for masked image consistency: MIC blocks, OMUDA's CAM, SimMIM patches, GridMask.

Every mask is (B,1,H,W) float with 1 = keep and 0 = masked; `apply_mask` zeroes the masked
pixels of a normalised image (0 there is the dataset mean colour), as MIC does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from omuda.adaptation._random import uniform

GRIDS: tuple[str, ...] = ("round", "ceil")


def _upsample_cells(cells: Tensor, cell_size: int, height: int, width: int) -> Tensor:
    """(B,1,h,w) -> (B,1,height,width): each cell repeated cell_size times, then cropped."""
    expanded = cells.repeat_interleave(cell_size, dim=2).repeat_interleave(cell_size, dim=3)
    return expanded[:, :, :height, :width]


def block_grid(height: int, width: int, block_size: int, grid: str = "round") -> tuple[int, int]:
    """Rows and columns of blocks over a height x width image.

    grid "round" (MIC): round(H/block) x round(W/block) (Python's round, at least 1), the
    blocks then stretched to the image by nearest resizing; "ceil": ceil(H/block) x
    ceil(W/block) blocks of exactly `block_size` pixels, cut at the border.
    """
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
    divide = round if grid == "round" else math.ceil
    return max(divide(height / block_size), 1), max(divide(width / block_size), 1)


def blocks_to_pixels(
    kept_blocks: Tensor, height: int, width: int, block_size: int, grid: str = "round"
) -> Tensor:
    """(B,1,h,w) block mask -> (B,1,height,width) pixel mask, as `block_grid` lays it out.

    "round": nearest resizing (mmseg's `resize`, i.e. F.interpolate mode "nearest");
    "ceil": each block repeated `block_size` times along both axes, then cropped.
    """
    if grid == "round":
        return F.interpolate(kept_blocks, size=(height, width), mode="nearest")
    return _upsample_cells(kept_blocks, block_size, height, width)


def block_mask(
    shape: tuple[int, int, int],
    block_size: int = 32,
    mask_ratio: float = 0.7,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    grid: str = "round",
) -> Tensor:
    """MIC's random block mask: each block is kept where U(0,1) > mask_ratio.

    shape (B,H,W) -> (B,1,H,W) float on `device`. Draws one (B,1,h,w) uniform tensor from
    `generator`, (h,w) = `block_grid(H, W, block_size, grid)`, thresholds it and lays the
    blocks out with `blocks_to_pixels`.
    """
    batch, height, width = shape
    rows, cols = block_grid(height, width, block_size, grid)
    kept_blocks = (uniform((batch, 1, rows, cols), generator, device) > mask_ratio).float()
    return blocks_to_pixels(kept_blocks, height, width, block_size, grid)


def context_aware_mask(
    y_pseudo: Tensor,
    foreground_classes: Sequence[int],
    fine_block: int = 16,
    coarse_block: int = 32,
    mask_ratio: float = 0.7,
    generator: torch.Generator | None = None,
    grid: str = "round",
) -> Tensor:
    """OMUDA's CAM (eqs. 6-7): fine blocks on foreground pixels, coarse blocks elsewhere.

    y_pseudo (B,H,W) long, the teacher's pseudo-label of the clean target -> (B,1,H,W) float
    on y_pseudo's device. A pixel whose pseudo-label is in `foreground_classes` takes the
    value of a `block_mask` with `fine_block`, every other pixel (ignore included) that of a
    `block_mask` with `coarse_block`, both with `mask_ratio` and `grid`. Draw order: the fine
    mask first, then the coarse one, from the same `generator`.
    """
    shape = tuple(y_pseudo.shape)
    device = y_pseudo.device
    fine = block_mask(shape, fine_block, mask_ratio, generator, device, grid)
    coarse = block_mask(shape, coarse_block, mask_ratio, generator, device, grid)
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
