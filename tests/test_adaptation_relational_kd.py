"""FDM relational KD: against a slow loop, scale invariance, few cells, shared selection."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from omuda.adaptation.relational_kd import (
    foreground_cell_pairs,
    relational_kd_loss,
    rkd_angle_loss,
    rkd_distance_loss,
)


def _smooth_l1(value: float) -> float:
    return 0.5 * value**2 if abs(value) < 1 else abs(value) - 0.5


def _slow_distance_loss(student: list[list[float]], teacher: list[list[float]]) -> float:
    pairs = [(i, j) for i, j in itertools.product(range(len(student)), repeat=2) if i != j]

    def normalised(features):
        distances = {pair: math.dist(features[pair[0]], features[pair[1]]) for pair in pairs}
        mean = sum(distances.values()) / len(pairs)
        return {pair: value / mean for pair, value in distances.items()}

    student_d, teacher_d = normalised(student), normalised(teacher)
    return sum(_smooth_l1(student_d[p] - teacher_d[p]) for p in pairs) / len(pairs)


def _cosine_at(features, i, j, k) -> float:
    first = [a - b for a, b in zip(features[j], features[i], strict=True)]
    second = [a - b for a, b in zip(features[k], features[i], strict=True)]
    dot = sum(a * b for a, b in zip(first, second, strict=True))
    return dot / (math.hypot(*first) * math.hypot(*second))


def _slow_angle_loss(student, teacher) -> float:
    count = len(student)
    triplets = [t for t in itertools.product(range(count), repeat=3) if len(set(t)) == 3]
    total = sum(_smooth_l1(_cosine_at(student, *t) - _cosine_at(teacher, *t)) for t in triplets)
    return total / len(triplets)


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
