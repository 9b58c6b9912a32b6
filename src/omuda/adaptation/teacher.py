"""EMA teacher of mean-teacher self-training (paper eq. 2, DAFormer's `_update_ema`).

The teacher is frozen by construction: a deep copy of the student with every parameter's
`requires_grad` off, every dropout probability and drop-path rate set to 0, and a `train()`
that always leaves it in eval mode. Contract for drop-path: a stochastic-depth module exposes
its rate as a `drop_prob` attribute (as timm's and SegFormer's `DropPath` do).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

_FROZEN_CLASSES: dict[type, type] = {}


class _AlwaysEval:
    """Mixin whose `train(mode)` ignores `mode`: the module and its children stay in eval.

    BatchNorm layers marked `_teacher_batch_statistics` stay in train mode with momentum 0:
    they normalise with the current batch's statistics and never change their buffers.
    """

    def train(self, mode: bool = True) -> nn.Module:
        # `mode` is ignored on purpose: a parent's train() must not switch the teacher.
        super().train(False)
        for module in self.modules():
            if getattr(module, "_teacher_batch_statistics", False):
                module.training = True
        return self


def _frozen_class(model_class: type) -> type:
    # A subclass (not a wrapper) keeps the student's attributes, methods and state_dict keys.
    if model_class not in _FROZEN_CLASSES:
        _FROZEN_CLASSES[model_class] = type(
            f"Teacher{model_class.__name__}", (_AlwaysEval, model_class), {}
        )
    return _FROZEN_CLASSES[model_class]


def ema_alpha(iteration: int, alpha_max: float = 0.999) -> float:
    """EMA decay at `iteration` (0-based): min(1 - 1/(iteration+1), alpha_max).

    At iteration 0 it is 0, so the first update makes the teacher an exact copy of the student.
    """
    return min(1.0 - 1.0 / (iteration + 1), alpha_max)


def make_teacher(student: nn.Module, batchnorm_batch_statistics: bool = False) -> nn.Module:
    """A frozen deep copy of `student`: no gradients, eval mode, dropout and drop-path off.

    With `batchnorm_batch_statistics`, BatchNorm normalises each teacher forward with that
    batch's own statistics, as DAFormer's EMA model (kept in train mode) does: on a new
    domain the clean target batch's statistics beat the student's running averages, which
    mix source, mixed and masked images. Otherwise BatchNorm uses the running statistics.

    The returned module is an instance of a subclass of the student's class whose `train()`
    keeps it in eval mode (BatchNorm uses running statistics, nothing random runs). Every
    `nn.Dropout*` gets p=0 and every module with a `drop_prob` attribute (DropPath) gets 0, so
    even a child switched to train mode directly stays deterministic. Save and load it through
    `state_dict()`; its keys equal the student's.
    """
    teacher = copy.deepcopy(student)
    for module in teacher.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
        if hasattr(module, "drop_prob"):
            module.drop_prob = 0.0
        if batchnorm_batch_statistics and isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.0  # buffers stay as copied from the student
            module._teacher_batch_statistics = True
    teacher.requires_grad_(False)
    for param in teacher.parameters():
        param.grad = None
    teacher.__class__ = _frozen_class(type(student))
    teacher.eval()
    return teacher


@torch.no_grad()
def update_teacher(teacher: nn.Module, student: nn.Module, alpha: float) -> None:
    """In place: teacher_params <- alpha * teacher_params + (1 - alpha) * student_params.

    Only parameters are averaged, as in DAFormer; buffers (BatchNorm running statistics and
    counters) are copied from the student (DAFormer's EMA model keeps its own, which its
    batch-statistics forwards never read; copies stay identical across ranks without
    SyncBatchNorm). Both modules must have the same architecture.
    """
    teacher_params = list(teacher.parameters())
    student_params = [param.detach() for param in student.parameters()]
    teacher_buffers = list(teacher.buffers())
    student_buffers = list(student.buffers())
    if len(teacher_params) != len(student_params) or len(teacher_buffers) != len(student_buffers):
        raise ValueError(
            "teacher and student differ in architecture: "
            f"{len(teacher_params)} vs {len(student_params)} parameters, "
            f"{len(teacher_buffers)} vs {len(student_buffers)} buffers"
        )
    if teacher_params and alpha == 0.0:
        torch._foreach_copy_(teacher_params, student_params)  # DAFormer's `_init_ema_weights`
    elif teacher_params:
        # DAFormer's arithmetic, alpha * t + (1 - alpha) * s: a lerp rounds differently, enough
        # to move a pseudo-label weight by a pixel.
        torch._foreach_mul_(teacher_params, alpha)
        torch._foreach_add_(teacher_params, student_params, alpha=1.0 - alpha)
    for teacher_buffer, student_buffer in zip(teacher_buffers, student_buffers, strict=True):
        teacher_buffer.copy_(student_buffer)
