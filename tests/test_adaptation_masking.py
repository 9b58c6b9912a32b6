"""Keep masks: block, context-aware, random patch, grid."""

from __future__ import annotations

import pytest
import torch

from omuda.adaptation.masking import (
    apply_mask,
    block_grid,
    block_mask,
    context_aware_mask,
    grid_mask,
    random_patch_mask,
)


def test_block_mask_grid_rounds_like_mic():
    # MIC: round(50/16) x round(70/16) = 3 x 4 blocks, nearest-resized to 50 x 70.
    assert block_grid(50, 70, 16) == (3, 4)
    assert block_grid(40, 40, 16) == (2, 2)  # Python's round: 2.5 -> 2
    assert block_grid(50, 70, 16, "ceil") == (4, 5)
    keep = block_mask((3, 50, 70), 16, 0.7, torch.Generator().manual_seed(0))
    draws = torch.rand(3, 1, 3, 4, generator=torch.Generator().manual_seed(0))
    rows = torch.arange(50) * 3 // 50  # nearest: source index floor(i * in / out)
    cols = torch.arange(70) * 4 // 70
    expected = (draws > 0.7).float()[:, :, rows][:, :, :, cols]
    assert torch.equal(keep, expected)


def test_block_mask_ceil_grid_shape_blocks_and_ratio():
    keep = block_mask((3, 50, 70), 16, 0.7, torch.Generator().manual_seed(0), grid="ceil")
    assert keep.shape == (3, 1, 50, 70) and keep.dtype == torch.float32
    assert set(keep.unique().tolist()) <= {0.0, 1.0}
    # Constant within each 16x16 block, including the cut blocks at the border.
    assert torch.equal(keep[..., :16, :16], keep[..., :1, :1].expand(-1, -1, 16, 16))
    assert torch.equal(keep[..., 48:, 64:], keep[..., 48:49, 64:65].expand(-1, -1, 2, 6))
    many = block_mask((64, 64, 64), 8, 0.7, torch.Generator().manual_seed(1))
    assert 1 - many.mean().item() == pytest.approx(0.7, abs=0.01)


def test_block_mask_is_the_thresholded_draw():
    keep = block_mask((2, 8, 8), 4, 0.5, torch.Generator().manual_seed(2))
    draws = torch.rand(2, 1, 2, 2, generator=torch.Generator().manual_seed(2))
    expected = (draws > 0.5).float().repeat_interleave(4, 2).repeat_interleave(4, 3)
    assert torch.equal(keep, expected)


def test_context_aware_mask_takes_fine_on_foreground_coarse_elsewhere():
    y_pseudo = torch.randint(0, 19, (2, 40, 36), generator=torch.Generator().manual_seed(3))
    y_pseudo[0, :4] = 255
    foreground = (11, 13)
    keep = context_aware_mask(y_pseudo, foreground, 4, 12, 0.6, torch.Generator().manual_seed(4))
    replay = torch.Generator().manual_seed(4)
    fine = block_mask((2, 40, 36), 4, 0.6, replay)
    coarse = block_mask((2, 40, 36), 12, 0.6, replay)
    is_foreground = ((y_pseudo == 11) | (y_pseudo == 13)).unsqueeze(1)
    assert is_foreground.any() and (~is_foreground).any()
    assert torch.equal(keep[is_foreground], fine[is_foreground])
    assert torch.equal(keep[~is_foreground], coarse[~is_foreground])


def test_random_patch_mask_exact_count():
    keep = random_patch_mask((5, 64, 96), 16, 0.7, torch.Generator().manual_seed(5))
    patches = keep[:, 0, ::16, ::16]
    assert patches.shape == (5, 4, 6)
    masked_per_image = (patches == 0).flatten(1).sum(dim=1)
    assert masked_per_image.tolist() == [17] * 5  # ceil(0.7 * 24)
    assert keep.mean().item() == pytest.approx(7 / 24)
    cut = random_patch_mask((2, 40, 40), 16, 0.5, torch.Generator().manual_seed(6))
    assert cut.shape == (2, 1, 40, 40)
    assert (cut[:, 0, ::16, ::16] == 0).flatten(1).sum(dim=1).tolist() == [5, 5]


def test_grid_mask_ratio_period_and_offsets():
    keep = grid_mask((6, 128, 192), 32, 0.25, torch.Generator().manual_seed(7))
    assert keep.shape == (6, 1, 128, 192)
    # Masked squares of side 16 in every 32x32 cell: exactly 25% masked.
    assert (1 - keep.flatten(1).mean(dim=1)).tolist() == pytest.approx([0.25] * 6)
    assert torch.equal(keep[..., 32:, :], keep[..., :-32, :])
    assert torch.equal(keep[..., 32:], keep[..., :-32])
    assert len({tuple(image.flatten().tolist()) for image in keep}) > 1  # random offsets
    default = grid_mask((4, 128, 128), generator=torch.Generator().manual_seed(8))
    assert 1 - default.mean().item() == pytest.approx(54**2 / 64**2)


def test_apply_mask_zeroes_masked_pixels():
    x = torch.randn(2, 3, 8, 8)
    keep = block_mask((2, 8, 8), 4, 0.5, torch.Generator().manual_seed(9))
    masked = apply_mask(x, keep)
    assert torch.equal(masked, x * keep)
    assert torch.all(masked.permute(1, 0, 2, 3)[:, keep[:, 0] == 0] == 0)


def test_no_host_reads():
    # Meta tensors have no data: any .item(), nonzero() or Python branch on values would fail.
    y_pseudo = torch.empty(2, 40, 40, dtype=torch.long, device="meta")
    assert context_aware_mask(y_pseudo, (11, 13)).shape == (2, 1, 40, 40)
    for make_mask in (block_mask, random_patch_mask, grid_mask):
        assert make_mask((2, 40, 40), 16, 0.7, None, "meta").device.type == "meta"
