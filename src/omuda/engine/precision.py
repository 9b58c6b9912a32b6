"""Mixed precision: which autocast dtype a run uses, and the step's autocast contexts."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from omuda.config import Config


def amp_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA by default (`train.amp=auto`), never silently on CPU."""
    if cfg.train.amp == "bf16" or (cfg.train.amp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def autocast_factory(
    device: torch.device, dtype: torch.dtype | None
) -> Callable[[], contextlib.AbstractContextManager]:
    """A zero-argument context-manager factory for the step's forward passes."""
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)
