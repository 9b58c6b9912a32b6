"""FDM relational KD: hand-computed readings, scale invariance, few rows, shared selection."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from omuda.adaptation.relational_kd import (
    REDUCTIONS,
    SAMPLES,
    foreground_cell_pairs,
    foreground_rows,
    masked_image_rows,
    relational_kd_loss,
    rkd_angle_loss,
    rkd_distance_loss,
)


def _smooth_l1(value: float) -> float:
    return 0.5 * value**2 if abs(value) < 1 else abs(value) - 0.5


def _reduce(values: list[float], reduction: str) -> float:
    return sum(values) if reduction == "sum" else sum(values) / len(values)


def _slow_distance_loss(student, teacher, reduction: str = "mean") -> float:
    pairs = [(i, j) for i, j in itertools.product(range(len(student)), repeat=2) if i != j]

    def normalised(features):
        distances = {pair: math.dist(features[pair[0]], features[pair[1]]) for pair in pairs}
        normaliser = _reduce(list(distances.values()), reduction)
        return {pair: value / normaliser for pair, value in distances.items()}

    student_d, teacher_d = normalised(student), normalised(teacher)
    return _reduce([_smooth_l1(student_d[p] - teacher_d[p]) for p in pairs], reduction)


def _cosine_at(features, i, j, k) -> float:
    first = [a - b for a, b in zip(features[j], features[i], strict=True)]
    second = [a - b for a, b in zip(features[k], features[i], strict=True)]
    dot = sum(a * b for a, b in zip(first, second, strict=True))
    return dot / (math.hypot(*first) * math.hypot(*second))


def _slow_angle_loss(student, teacher, reduction: str = "mean") -> float:
    count = len(student)
    triplets = [t for t in itertools.product(range(count), repeat=3) if len(set(t)) == 3]
    per_triplet = [_smooth_l1(_cosine_at(student, *t) - _cosine_at(teacher, *t)) for t in triplets]
    return _reduce(per_triplet, reduction)


def _random_sets(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(5, 6, generator=generator, dtype=torch.float64)
    teacher = torch.randn(5, 3, generator=generator, dtype=torch.float64) * 4
    return student, teacher


def test_against_slow_loop():
    student, teacher = _random_sets()
    expected_distance = _slow_distance_loss(student.tolist(), teacher.tolist())
    expected_angle = _slow_angle_loss(student.tolist(), teacher.tolist())
    assert rkd_distance_loss(student, teacher).item() == pytest.approx(expected_distance, rel=1e-5)
    assert rkd_angle_loss(student, teacher).item() == pytest.approx(expected_angle, rel=1e-5)
    total = relational_kd_loss(student, teacher).item()
    assert total == pytest.approx(expected_distance + expected_angle, rel=1e-5)


def test_invalid_rows_are_left_out():
    student, teacher = _random_sets(1)
    valid = torch.tensor([True, False, True, True, True])
    kept = valid.nonzero()[:, 0]
    torch.testing.assert_close(
        relational_kd_loss(student, teacher, valid),
        relational_kd_loss(student[kept], teacher[kept]),
    )


def test_invariant_to_uniform_scaling():
    student, teacher = _random_sets(2)
    reference = relational_kd_loss(student, teacher)
    torch.testing.assert_close(relational_kd_loss(student * 7.5, teacher), reference)
    torch.testing.assert_close(relational_kd_loss(student, teacher * 0.01), reference)
    assert reference.item() > 0


def test_fewer_than_three_cells_give_zero_with_finite_gradient():
    for count in (0, 1, 2):
        student = torch.randn(count, 4, requires_grad=True)
        loss = relational_kd_loss(student, torch.randn(count, 8))
        assert loss.item() == 0.0
        loss.backward()
        assert torch.all(torch.isfinite(student.grad))
    student = torch.randn(6, 4, requires_grad=True)
    loss = relational_kd_loss(student, torch.randn(6, 8), torch.tensor([1, 0, 0, 1, 0, 0]).bool())
    loss.backward()
    assert loss.item() == 0.0 and torch.all(student.grad == 0)


def test_gradient_finite_with_duplicate_cells_and_teacher_detached():
    student = torch.randn(6, 4)
    student[3] = student[1]
    student.requires_grad_(True)
    teacher = torch.randn(6, 8, requires_grad=True)
    loss = relational_kd_loss(student, teacher)
    loss.backward()
    assert torch.isfinite(loss) and torch.all(torch.isfinite(student.grad))
    assert teacher.grad is None


def test_same_cells_in_student_and_teacher():
    cell_mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    cell_mask[0, 1:3, 1:3] = True
    cell_mask[1, 0, :] = True  # 8 foreground cells of 32
    index_map = torch.arange(32.0).view(2, 1, 4, 4)
    feat_student = torch.cat([index_map, -index_map], dim=1)  # (2,2,4,4): channel 0 = cell id
    feat_teacher = index_map.expand(-1, 3, -1, -1) * 10  # (2,3,4,4)
    foreground_ids = set((cell_mask.view(-1).nonzero()[:, 0]).tolist())

    f_student, f_teacher, valid = foreground_cell_pairs(
        feat_student, feat_teacher, cell_mask, 5, torch.Generator().manual_seed(0)
    )
    assert f_student.shape == (5, 2) and f_teacher.shape == (5, 3) and valid.all()
    assert torch.equal(f_teacher[:, 0], f_student[:, 0] * 10)
    assert set(f_student[:, 0].long().tolist()) <= foreground_ids

    f_student, f_teacher, valid = foreground_cell_pairs(
        feat_student, feat_teacher, cell_mask, 12, torch.Generator().manual_seed(0)
    )
    assert valid.sum() == 8
    assert set(f_student[valid, 0].long().tolist()) == foreground_ids
    assert not set(f_student[~valid, 0].long().tolist()) & foreground_ids


def test_subset_is_random_across_draws():
    cell_mask = torch.ones(1, 8, 8, dtype=torch.bool)
    features = torch.arange(64.0).view(1, 1, 8, 8)
    generator = torch.Generator().manual_seed(1)
    subsets = {
        frozenset(
            foreground_cell_pairs(features, features, cell_mask, 4, generator)[0][:, 0].tolist()
        )
        for _ in range(5)
    }
    assert len(subsets) > 1


def test_no_host_reads():
    # Meta tensors have no data: any .item(), nonzero() or Python branch on values would fail.
    feat_student = torch.empty(2, 8, 3, 3, device="meta", requires_grad=True)
    feat_teacher = torch.empty(2, 5, 3, 3, device="meta")
    cell_mask = torch.empty(2, 3, 3, dtype=torch.bool, device="meta")
    f_student, f_teacher, valid = foreground_cell_pairs(feat_student, feat_teacher, cell_mask, 10)
    assert f_student.shape == (10, 8) and f_teacher.shape == (10, 5) and valid.shape == (10,)
    relational_kd_loss(f_student, f_teacher, valid).backward()


# A batch of 3 images on a 2x2 cell grid: 2, 1 and 3 foreground cells.
_MASK = [[[1, 0], [0, 1]], [[0, 0], [1, 0]], [[1, 1], [0, 1]]]


def _batch(seed: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    feat_student = torch.randn(3, 2, 2, 2, generator=generator, dtype=torch.float64)
    feat_teacher = torch.randn(3, 3, 2, 2, generator=generator, dtype=torch.float64) * 3
    return feat_student, feat_teacher, torch.tensor(_MASK, dtype=torch.bool)


def _slow_cell_rows(feat, mask) -> list[list[float]]:
    channels = range(len(feat[0]))
    return [
        [feat[b][c][y][x] for c in channels]
        for b in range(len(mask))
        for y in range(2)
        for x in range(2)
        if mask[b][y][x]
    ]


def _masked_row(feat, mask, b) -> list[float]:
    channels = range(len(feat[0]))
    return [feat[b][c][y][x] * mask[b][y][x] for c in channels for y in range(2) for x in range(2)]


def _slow_image_rows(feat, mask) -> list[list[float]]:
    with_foreground = [b for b in range(len(mask)) if any(any(row) for row in mask[b])]
    return [_masked_row(feat, mask, b) for b in with_foreground]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("samples", SAMPLES)
def test_each_reading_against_hand_loops(samples, reduction):
    feat_student, feat_teacher, cell_mask = _batch()
    slow_rows = _slow_cell_rows if samples == "cells" else _slow_image_rows
    student = slow_rows(feat_student.tolist(), _MASK)
    teacher = slow_rows(feat_teacher.tolist(), _MASK)
    assert len(student) == (6 if samples == "cells" else 3)
    expected = _slow_distance_loss(student, teacher, reduction)
    expected += _slow_angle_loss(student, teacher, reduction)

    f_student, f_teacher, valid = foreground_rows(
        feat_student, feat_teacher, cell_mask, samples, 12, torch.Generator().manual_seed(0)
    )
    loss = relational_kd_loss(f_student, f_teacher, valid, reduction=reduction)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert expected > 1e-3


@pytest.mark.parametrize("samples", SAMPLES)
def test_gradient_reaches_student_foreground_not_teacher(samples):
    feat_student, feat_teacher, cell_mask = _batch()
    feat_student.requires_grad_(True)
    feat_teacher.requires_grad_(True)
    f_student, f_teacher, valid = foreground_rows(feat_student, feat_teacher, cell_mask, samples)
    relational_kd_loss(f_student, f_teacher, valid, reduction="sum").backward()
    assert feat_teacher.grad is None
    cell_grad = feat_student.grad.abs().sum(dim=1)
    assert torch.all(cell_grad[cell_mask] > 0)
    assert torch.all(cell_grad[~cell_mask] == 0)


def test_image_rows_are_masked_and_flattened():
    feat_student, feat_teacher, cell_mask = _batch()
    cell_mask[1] = False
    rows_student, rows_teacher, valid = masked_image_rows(feat_student, feat_teacher, cell_mask)
    assert rows_student.shape == (3, 8) and rows_teacher.shape == (3, 12)
    assert valid.tolist() == [True, False, True]
    expected = [_masked_row(feat_student.tolist(), cell_mask.tolist(), b) for b in range(3)]
    assert rows_student.tolist() == expected and expected[1] == [0.0] * 8


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_image_without_foreground_is_left_out(reduction):
    feat_student, feat_teacher, cell_mask = _batch()
    extra_student, extra_teacher, _ = _batch(seed=4)
    # A fourth image, second in the batch, with features but no foreground cell.
    feat_student = torch.cat([feat_student[:1], extra_student[:1], feat_student[1:]])
    feat_teacher = torch.cat([feat_teacher[:1], extra_teacher[:1], feat_teacher[1:]])
    no_foreground = torch.zeros(1, 2, 2, dtype=torch.bool)
    four_mask = torch.cat([cell_mask[:1], no_foreground, cell_mask[1:]])
    four = relational_kd_loss(*masked_image_rows(feat_student, feat_teacher, four_mask), reduction)
    kept = [0, 2, 3]
    three = relational_kd_loss(
        *masked_image_rows(feat_student[kept], feat_teacher[kept], cell_mask), reduction
    )
    torch.testing.assert_close(four, three)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("num_with_foreground", [0, 1, 2])
def test_fewer_than_three_valid_images_give_exact_zero(reduction, num_with_foreground):
    feat_student, feat_teacher, cell_mask = _batch()
    cell_mask[num_with_foreground:] = False
    feat_student.requires_grad_(True)
    rows = masked_image_rows(feat_student, feat_teacher, cell_mask)
    loss = relational_kd_loss(*rows, reduction=reduction)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(feat_student.grad == 0)
    assert rkd_angle_loss(*rows, reduction=reduction).item() == 0.0
    if num_with_foreground < 2:
        assert rkd_distance_loss(*rows, reduction=reduction).item() == 0.0


def test_sum_and_mean_differ_by_pair_and_triplet_counts():
    student, teacher = _random_sets(5)
    valid = torch.tensor([True, True, False, True, True])  # 4 rows: 12 pairs, 24 triplets
    angle_sum = rkd_angle_loss(student, teacher, valid, reduction="sum")
    angle_mean = rkd_angle_loss(student, teacher, valid, reduction="mean")
    torch.testing.assert_close(angle_sum, 24 * angle_mean)
    # Sum-normalised distances are the mean-normalised ones / 12; while every smooth-L1 is in
    # its quadratic part (true for this draw) the summed loss is the mean loss / 12.
    distance_sum = rkd_distance_loss(student, teacher, valid, reduction="sum")
    distance_mean = rkd_distance_loss(student, teacher, valid, reduction="mean")
    torch.testing.assert_close(distance_sum, distance_mean / 12)
    assert angle_mean > 0 and distance_mean > 0


def test_unknown_reading_is_rejected():
    feat_student, feat_teacher, cell_mask = _batch()
    with pytest.raises(ValueError, match="samples"):
        foreground_rows(feat_student, feat_teacher, cell_mask, "pixels")
    with pytest.raises(ValueError, match="reduction"):
        relational_kd_loss(feat_student[:, :, 0, 0], feat_teacher[:, :, 0, 0], reduction="max")


def test_image_rows_have_no_host_reads():
    feat_student = torch.empty(3, 8, 3, 3, device="meta", requires_grad=True)
    feat_teacher = torch.empty(3, 5, 3, 3, device="meta")
    cell_mask = torch.empty(3, 3, 3, dtype=torch.bool, device="meta")
    f_student, f_teacher, valid = foreground_rows(feat_student, feat_teacher, cell_mask, "images")
    assert f_student.shape == (3, 72) and f_teacher.shape == (3, 45) and valid.shape == (3,)
    relational_kd_loss(f_student, f_teacher, valid, reduction="sum").backward()
