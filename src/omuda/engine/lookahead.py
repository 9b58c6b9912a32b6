"""Look-ahead: take K virtual optimiser steps on a model, read the future model, put it back.

FST ("learning from the future") needs the student as it will be a few steps ahead on the
current batch. `look_ahead` runs those steps with the real optimiser (so they are exactly the
steps training would take), calls `readout` on the future weights, and then restores the
parameters, and unless told otherwise the buffers and the optimiser state, bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

T = TypeVar("T")

_OptimizerSnapshot = tuple[dict[Tensor, dict[str, object]], list[dict[str, object]]]


def look_ahead(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    compute_gradients: Callable[[int], object],
    steps: int,
    readout: Callable[[], T],
    before_step: Callable[[int], None] | None = None,
    restore_optimizer: bool = True,
    restore_buffers: bool = True,
) -> T:
    """Return `readout()` evaluated after `steps` virtual optimiser steps on `model`.

    For k in 0..steps-1: `before_step(k)` (e.g. an EMA teacher update from the current,
    virtual, student), zero the gradients, `compute_gradients(k)` (runs the forward passes
    and calls backward; averages gradients across ranks if needed), `optimizer.step()`.
    Then `readout()` sees the future weights (e.g. logits, or a last teacher update).

    On exit, also after an exception: parameters are restored bit for bit (same Parameter
    objects, so the optimiser still holds them), gradients are None, and with
    `restore_buffers` (BatchNorm statistics) and `restore_optimizer` (per-parameter state
    such as Adam's moments and step counts, and the groups' hyper-parameters) those too.
    FST's published code restores neither: its real step sees moments that include the
    virtual steps' gradients. `optimizer` must hold `model`'s parameters. Costs one copy of
    the parameters (plus buffers, plus the optimiser state when restored) and no host sync.
    """
    if steps < 0:
        raise ValueError(f"look-ahead steps must be >= 0, got {steps}")
    params = list(model.parameters())
    buffers = list(model.buffers()) if restore_buffers else []
    with torch.no_grad():
        saved_params = [param.detach().clone() for param in params]
        saved_buffers = [buffer.clone() for buffer in buffers]
    saved_optimizer = _snapshot_optimizer(optimizer) if restore_optimizer else None
    try:
        for k in range(steps):
            if before_step is not None:
                before_step(k)
            optimizer.zero_grad(set_to_none=True)
            compute_gradients(k)
            optimizer.step()
        return readout()
    finally:
        for param in params:
            param.grad = None
        with torch.no_grad():
            for tensor, saved in zip(params + buffers, saved_params + saved_buffers, strict=True):
                tensor.copy_(saved)
        if saved_optimizer is not None:
            _restore_optimizer(optimizer, saved_optimizer)


def _snapshot_optimizer(optimizer: torch.optim.Optimizer) -> _OptimizerSnapshot:
    """Copies of the per-parameter state and of every group's settings except its params."""
    state = {
        param: {
            key: value.clone() if isinstance(value, Tensor) else copy.deepcopy(value)
            for key, value in per_param.items()
        }
        for param, per_param in optimizer.state.items()
    }
    groups = [
        {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
        for group in optimizer.param_groups
    ]
    return state, groups


def _restore_optimizer(optimizer: torch.optim.Optimizer, snapshot: _OptimizerSnapshot) -> None:
    state, groups = snapshot
    # State created by the virtual steps (a parameter's first step) must go as well.
    optimizer.state.clear()
    optimizer.state.update(state)
    for group, saved in zip(optimizer.param_groups, groups, strict=True):
        group.update(saved)
