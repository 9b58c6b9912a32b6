"""Uniform draws from an explicit generator, delivered on the device of the data."""

from __future__ import annotations

import torch
from torch import Tensor


def uniform(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str | None,
) -> Tensor:
    """U[0,1) float32 tensor of `shape` on `device`, drawn from `generator`.

    The draw happens on the generator's own device (so a CPU generator works for CUDA data
    and vice versa) and is then moved; without a generator torch's default RNG is used.
    """
    draw_device = generator.device if generator is not None else device
    values = torch.rand(shape, generator=generator, device=draw_device)
    return values.to(device) if device is not None else values
