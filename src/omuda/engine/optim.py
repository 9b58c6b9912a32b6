"""AdamW with DAFormer's parameter groups and its warmup + poly learning-rate schedule."""

from __future__ import annotations

import torch
from torch import nn

_NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


def parameter_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    head_lr_mult: float,
    head_norm_decay: bool = True,
) -> list[dict]:
    """Split parameters into backbone/head x decay/no-decay groups.

    The decode head learns `head_lr_mult` times faster (DAFormer: x10) and normalisation
    layers get no weight decay (DAFormer's `norm` decay_mult 0). With `head_norm_decay`
    the head's normalisation layers are decayed like the rest of the head, as in DAFormer:
    mmcv matches the custom key `head` before `norm`, and the head's BatchNorms are named
    `bn`. Each group carries its `base_lr`, which the schedule scales.
    """
    no_decay_ids = {
        id(p)
        for module in model.modules()
        if isinstance(module, _NORM_TYPES)
        for p in module.parameters(recurse=False)
    }
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_head = name.startswith("decode_head.") or ".decode_head." in name
        no_decay = id(param) in no_decay_ids and not (is_head and head_norm_decay)
        groups.setdefault((is_head, no_decay), []).append(param)
    result = []
    for (is_head, no_decay), params in sorted(groups.items()):
        base_lr = lr * (head_lr_mult if is_head else 1.0)
        result.append(
            {
                "params": params,
                "lr": base_lr,
                "base_lr": base_lr,
                "weight_decay": 0.0 if no_decay else weight_decay,
                "name": f"{'head' if is_head else 'backbone'}{'_no_decay' if no_decay else ''}",
            }
        )
    return result


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    head_lr_mult: float,
    betas: tuple[float, float],
    head_norm_decay: bool = True,
) -> torch.optim.AdamW:
    """AdamW over `parameter_groups`; fused kernels on CUDA, foreach elsewhere."""
    on_cuda = next(model.parameters()).is_cuda
    return torch.optim.AdamW(
        parameter_groups(model, lr, weight_decay, head_lr_mult, head_norm_decay),
        lr=lr,
        betas=betas,
        weight_decay=weight_decay,
        fused=on_cuda or None,
        foreach=None if on_cuda else True,
    )


def lr_factor(
    iteration: int, max_iters: int, warmup_iters: int, warmup_ratio: float, power: float
) -> float:
    """Multiplier of the base learning rate at `iteration` (mmcv's poly + linear warmup).

    poly = (1 - it/max)^power; during warmup the factor is poly * (1 - k) with
    k = (1 - it/warmup) * (1 - warmup_ratio), so it rises linearly from warmup_ratio.
    """
    poly = (1.0 - min(iteration, max_iters) / max_iters) ** power
    if iteration < warmup_iters:
        k = (1.0 - iteration / warmup_iters) * (1.0 - warmup_ratio)
        return poly * (1.0 - k)
    return poly


def set_learning_rate(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Stateless schedule: every group's lr = base_lr * factor (resume needs no state)."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
