"""Allowed ranges of the numeric config fields, checked as each value is set.

`CHOICES` in `omuda.config` lists the values of the string fields; `RANGES` here bounds the
numbers, with upper bounds where a value sizes memory (crops, channels, batch) so that a
typo fails at load, not as an out-of-memory kill. A float field without a range must still
be finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omuda.errors import OmudaError, shorten
from omuda.limits import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE


@dataclass(frozen=True)
class Range:
    """The interval [low, high], open at either end when asked (always at infinity)."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open or self.high == math.inf else value <= self.high
        return above and below

    def __str__(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open or self.high == math.inf else "]"
        return f"{left}{_number(self.low)}, {_number(self.high)}{right}"


def _number(value: float) -> str:
    """Whole numbers as integers (4294967295, not 4.29497e+09), others as %g, inf as inf."""
    return str(int(value)) if math.isfinite(value) and value == int(value) else f"{value:g}"


_UNIT = Range(0, 1)
_POSITIVE = Range(0, low_open=True)
_NON_NEGATIVE = Range(0)
_FRACTION_BELOW_ONE = Range(0, 1, high_open=True)
_PIXELS = Range(1, MAX_IMAGE_SIDE)

RANGES: dict[str, Range] = {
    "data.source.scale": Range(16, MAX_IMAGE_SIDE),
    "data.target.scale": Range(16, MAX_IMAGE_SIDE),
    "data.val.scale": Range(16, MAX_IMAGE_SIDE),
    "data.crop_size": Range(32, MAX_IMAGE_SIDE),
    "data.cat_max_ratio": Range(0, 1, low_open=True),
    "data.batch_size": Range(1, 1024),
    "data.workers": Range(0, 256),
    "data.sampling.rcs_temperature": _POSITIVE,
    "data.sampling.min_pixels": Range(0, MAX_IMAGE_PIXELS),
    "data.sampling.min_crop_ratio": _UNIT,
    "data.sampling.cam_temperature_foreground": _POSITIVE,
    "data.sampling.cam_temperature_background": _POSITIVE,
    "data.sampling.foreground_probability": _UNIT,
    "model.decoder_channels": Range(1, 4096),
    "model.drop_path_rate": _FRACTION_BELOW_ONE,
    "model.dropout": _FRACTION_BELOW_ONE,
    "adaptation.pseudo_threshold": _UNIT,
    "adaptation.pseudo_ignore_top": Range(0, MAX_IMAGE_SIDE),
    "adaptation.pseudo_ignore_bottom": Range(0, MAX_IMAGE_SIDE),
    "adaptation.color_jitter_strength": _NON_NEGATIVE,
    "adaptation.color_jitter_p": _UNIT,
    "adaptation.blur_p": _UNIT,
    "adaptation.fd_lambda": _NON_NEGATIVE,
    "adaptation.fd_min_ratio": _UNIT,
    "adaptation.kd_lambda": _NON_NEGATIVE,
    "adaptation.kd_max_cells": Range(1, 4096),
    "adaptation.mask_block_size": _PIXELS,
    "adaptation.cam_fine_block": _PIXELS,
    "adaptation.cam_coarse_block": _PIXELS,
    "adaptation.mask_loss_weight": _NON_NEGATIVE,
    "adaptation.cdm_momentum": _UNIT,
    "adaptation.lookahead_steps": Range(0, 64),
    "adaptation.camix_warmup_iters": _NON_NEGATIVE,
    "adaptation.camix_prior_size": Range(1, 4096),
    "adaptation.camix_significance_rampup_iters": _NON_NEGATIVE,
    "adaptation.camix_significance_start": _UNIT,
    "train.seed": Range(0, 2**32 - 1),
    "train.lr": Range(0, 1, low_open=True),
    "train.head_lr_mult": _NON_NEGATIVE,
    "train.weight_decay": _NON_NEGATIVE,
    "train.betas": _FRACTION_BELOW_ONE,
    "train.warmup_iters": _NON_NEGATIVE,
    "train.warmup_ratio": _UNIT,
    "train.poly_power": _NON_NEGATIVE,
    "train.threads": Range(0, 1024),
    "eval.crop_size": _PIXELS,
    "eval.stride": _PIXELS,
}


def check_range(dotted: str, value: Any) -> None:
    """OmudaError unless every number in `value` (a number, or a tuple of them) lies in the
    range of field `dotted`; a float without a range must be finite."""
    allowed = RANGES.get(dotted)
    for number in value if isinstance(value, tuple) else (value,):
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            continue
        if allowed is not None and number not in allowed:
            raise OmudaError(f"{dotted} must lie in {allowed}, got {shorten(value)}")
        if isinstance(number, float) and not math.isfinite(number):
            raise OmudaError(f"{dotted} must be a finite number, got {number}")
