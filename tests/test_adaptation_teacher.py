"""EMA teacher: alpha schedule, one EMA step by hand, frozen by construction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from omuda.adaptation.teacher import ema_alpha, make_teacher, update_teacher


class DropPath(nn.Module):
    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = (torch.rand(x.shape[0], 1) > self.drop_prob).float()
        return x * keep / (1 - self.drop_prob)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.norm = nn.BatchNorm1d(4)
        self.dropout = nn.Dropout(0.5)
        self.drop_path = DropPath(0.5)

    def forward(self, x):
        return self.drop_path(self.dropout(self.norm(self.linear(x))))


def test_alpha_schedule():
    assert ema_alpha(0) == 0.0
    assert ema_alpha(1) == pytest.approx(0.5)
    assert ema_alpha(9) == pytest.approx(0.9)
    assert ema_alpha(100_000) == 0.999
    assert ema_alpha(5, alpha_max=0.6) == 0.6


def test_teacher_is_frozen_and_stays_in_eval():
    student = TinyNet()
    teacher = make_teacher(student)
    assert all(not param.requires_grad for param in teacher.parameters())
    assert all(param.requires_grad for param in student.parameters())
    assert teacher.dropout.p == 0.0 and teacher.drop_path.drop_prob == 0.0
    assert student.dropout.p == 0.5 and student.drop_path.drop_prob == 0.5
    assert not teacher.training
    teacher.train()
    assert not any(module.training for module in teacher.modules())
    parent = nn.ModuleDict({"teacher": teacher, "head": nn.Linear(2, 2)}).train()
    assert parent["head"].training and not teacher.training
    assert isinstance(teacher, TinyNet)
    assert teacher.state_dict().keys() == student.state_dict().keys()
    # Even a child forced into train mode is deterministic: dropout and drop-path are 0.
    teacher.dropout.train()
    teacher.drop_path.train()
    x = torch.randn(3, 4)
    assert torch.equal(teacher(x), teacher(x))
    assert not teacher(x).requires_grad


def test_ema_update_by_hand():
    student = TinyNet()
    teacher = make_teacher(student)
    with torch.no_grad():
        for param in student.parameters():
            param.add_(1.0)
        student.norm.running_mean.fill_(3.0)
    old_teacher = [param.clone() for param in teacher.parameters()]
    update_teacher(teacher, student, alpha=0.9)
    for before, after, current in zip(
        old_teacher, teacher.parameters(), student.parameters(), strict=True
    ):
        torch.testing.assert_close(after, 0.9 * before + 0.1 * current)
    # Buffers are copied, not averaged.
    assert torch.equal(teacher.norm.running_mean, torch.full((4,), 3.0))
    assert all(param.grad is None for param in teacher.parameters())


def test_update_is_daformers_arithmetic():
    student, teacher = TinyNet(), make_teacher(TinyNet())
    before = [param.clone() for param in teacher.parameters()]
    update_teacher(teacher, student, alpha=0.9)
    for old, new, current in zip(before, teacher.parameters(), student.parameters(), strict=True):
        assert torch.equal(new, old * 0.9 + current * (1 - 0.9))


def test_alpha_zero_copies_the_student_exactly():
    student = TinyNet()
    teacher = make_teacher(TinyNet())
    update_teacher(teacher, student, ema_alpha(0))
    for mine, theirs in zip(teacher.parameters(), student.parameters(), strict=True):
        assert torch.equal(mine, theirs)


def test_architecture_mismatch_is_reported():
    with pytest.raises(ValueError, match="architecture"):
        update_teacher(make_teacher(TinyNet()), nn.Linear(4, 4), 0.5)


def test_no_host_reads():
    # Meta tensors have no data: any .item() or Python branch on values would fail.
    student = TinyNet().to("meta")
    teacher = make_teacher(student)
    update_teacher(teacher, student, 0.5)
    assert next(teacher.parameters()).device.type == "meta"
