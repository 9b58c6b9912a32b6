"""DAFormer FD: majority downscaling, 75% rule, thing mask, masked mean, empty mask."""

from __future__ import annotations

import pytest
import torch

from omuda.adaptation.feature_distance import (
    downscale_label_majority,
    feature_distance_loss,
    thing_cell_mask,
)


def test_majority_rule_on_4x4():
    y = torch.tensor(
        [
            [1, 1, 2, 2],
            [1, 3, 2, 2],  # top-left 3/4 class 1; top-right 4/4 class 2
            [4, 4, 255, 255],
            [5, 5, 255, 5],  # bottom-left 2/4 + 2/4 -> ignore; bottom-right 3/4 ignore
        ]
    ).unsqueeze(0)
    cells = downscale_label_majority(y, 2, num_classes=19, min_ratio=0.75)
    assert cells.tolist() == [[[1, 2], [255, 255]]]
    strict = downscale_label_majority(y, 2, num_classes=19, min_ratio=0.8)
    assert strict.tolist() == [[[255, 2], [255, 255]]]


def test_cells_cut_by_the_border_use_their_own_pixels():
    y = torch.tensor([[0, 0, 0, 7, 7], [0, 0, 0, 7, 3], [6, 6, 6, 6, 6]]).unsqueeze(0)
    cells = downscale_label_majority(y, 3, num_classes=19, min_ratio=0.75)
    # Left cell: class 0 holds 6/9. Right cell, cut to 2 columns: class 7 holds 3 of its 6
    # pixels (1/2, not 3/9 as it would if the missing column counted).
    assert cells.shape == (1, 1, 2)
    assert cells.tolist() == [[[255, 255]]]
    cells_low = downscale_label_majority(y, 3, num_classes=19, min_ratio=0.5)
    assert cells_low.tolist() == [[[0, 7]]]


def test_thing_cell_mask():
    cells = torch.tensor([[[11, 0], [255, 13]]])
    assert thing_cell_mask(cells, (11, 13)).tolist() == [[[True, False], [False, True]]]


def test_value_by_hand():
    y_src = torch.tensor([[11, 11, 0, 0], [11, 11, 0, 0]]).unsqueeze(0)  # cells: thing, stuff
    feat_imnet = torch.zeros(1, 2, 1, 2)
    feat_student = torch.tensor([[[[3.0, 10.0]], [[4.0, 10.0]]]], requires_grad=True)
    loss = feature_distance_loss(feat_student, feat_imnet, y_src, (11,))
    assert loss.item() == pytest.approx(5.0)  # only the thing cell: |(3,4)| = 5
    loss.backward()
    torch.testing.assert_close(feat_student.grad[0, :, 0, 0], torch.tensor([0.6, 0.8]))
    assert torch.all(feat_student.grad[0, :, 0, 1] == 0)


def test_no_thing_cell_gives_differentiable_zero():
    y_src = torch.zeros(2, 64, 64, dtype=torch.long)
    feat_student = torch.randn(2, 8, 2, 2, requires_grad=True)
    loss = feature_distance_loss(feat_student, torch.randn(2, 8, 2, 2), y_src, (11, 13))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(torch.isfinite(feat_student.grad)) and torch.all(feat_student.grad == 0)


def test_identical_features_have_finite_gradient():
    y_src = torch.full((1, 64, 64), 13)
    feat = torch.randn(1, 8, 2, 2)
    feat_student = feat.clone().requires_grad_(True)
    loss = feature_distance_loss(feat_student, feat, y_src, (13,))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(torch.isfinite(feat_student.grad))


def test_grid_mismatch_is_reported():
    with pytest.raises(ValueError, match="feature grid"):
        feature_distance_loss(
            torch.randn(1, 4, 3, 3),
            torch.randn(1, 4, 3, 3),
            torch.zeros(1, 64, 32, dtype=torch.long),
            (11,),
        )


def test_no_host_reads():
    # Meta tensors have no data: any .item(), nonzero() or Python branch on values would fail.
    feat_student = torch.empty(2, 8, 2, 2, device="meta", requires_grad=True)
    y_src = torch.empty(2, 64, 64, dtype=torch.long, device="meta")
    loss = feature_distance_loss(feat_student, torch.empty(2, 8, 2, 2, device="meta"), y_src, (11,))
    loss.backward()
