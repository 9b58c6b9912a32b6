"""Parity of the strong augmentation with DAFormer's `strong_transform` on kornia 0.5.8.

Golden vectors: `strong_transform` (README section 9): colour jitter (seeds 0-2), Gaussian
blur (seeds 4 and 7) and the mixing loop of `DACS.forward_train` (seeds 0 and 1).
"""

from __future__ import annotations

import pytest
import torch

from omuda.adaptation.augment import (
    AugmentParams,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    blur_kernel_size,
    gaussian_kernel_1d,
    sample_color_jitter,
    strong_augment,
)
from omuda.adaptation.classmix import classes_table, classmix
from omuda.data.transforms import IMAGENET_MEAN, IMAGENET_STD

JITTER_NORMALISED = {"atol": 2e-5, "rtol": 0.0}  # README: jitter outputs, normalised space
JITTER_01 = {"atol": 5e-6, "rtol": 0.0}  # README: jitter outputs, [0,1] space
BLUR = {"atol": 2e-6, "rtol": 0.0}  # README: blur outputs
FACTORS = ("brightness", "contrast", "saturation", "hue")
STEPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


@pytest.fixture(scope="module")
def recorded(golden):
    return golden.load("strong_transform")


def _mean_std(tensors: dict) -> tuple[torch.Tensor, torch.Tensor]:
    return tensors["mean"].flatten(), tensors["std"].flatten()


def _params(batch: int, jitter: bool, blur: bool, **fields: torch.Tensor) -> AugmentParams:
    params = AugmentParams.identity(batch)
    params.jitter = torch.full((batch,), jitter)
    params.blur = torch.full((batch,), blur)
    for name, value in fields.items():
        setattr(params, name, value)
    return params


def test_pixel_constants_are_dacs_img_norm_cfg(recorded):
    tensors, _ = recorded
    mean, std = _mean_std(tensors)
    torch.testing.assert_close(255 * torch.tensor(IMAGENET_MEAN), mean, atol=0, rtol=1e-7)
    torch.testing.assert_close(255 * torch.tensor(IMAGENET_STD), std, atol=0, rtol=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_color_jitter_draws_and_output(recorded, parity, seed):
    tensors, _ = recorded
    case = f"cj_s{seed}"
    *factors, order = sample_color_jitter(2, 0.2, torch.Generator().manual_seed(seed))
    for name, value in zip(FACTORS, factors, strict=True):
        assert torch.equal(value, tensors[f"{case}.{name}_factor"]), name
    assert torch.equal(order, tensors[f"{case}.order"])
    fields = dict(zip(FACTORS, factors, strict=True))
    params = _params(2, jitter=True, blur=False, order=order.expand(2, 4), **fields)
    mean, std = _mean_std(tensors)
    out = strong_augment(tensors["img"], mean, std, params)
    parity.close("augment.color_jitter", out, tensors[f"{case}.out"], **JITTER_NORMALISED)


def test_color_jitter_steps_in_unit_range(recorded, parity):
    tensors, _ = recorded
    mean, std = _mean_std(tensors)
    pixels = (tensors["img"] * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)) / 255.0
    assert torch.equal(pixels, tensors["img01"])
    names = [key for key in tensors if key.startswith("cj_s0.step")]
    for position, key in enumerate(sorted(names)):
        step = FACTORS.index(key.rsplit("_", 1)[1])
        assert step == tensors["cj_s0.order"][position]
        pixels = STEPS[step](pixels, tensors[f"cj_s0.{FACTORS[step]}_factor"])
        parity.close("augment.color_jitter_step_01", pixels, tensors[key], **JITTER_01)


@pytest.mark.parametrize("seed", [4, 7])
def test_gaussian_blur(recorded, parity, seed):
    tensors, meta = recorded
    case = f"blur_s{seed}"
    sigma = tensors[f"{case}.sigma"].view(1)
    kernel = gaussian_kernel_1d(sigma, 7, torch.float32)[0]
    parity.close(
        "augment.blur_kernel", torch.outer(kernel, kernel), tensors[f"{case}.kernel2d"], atol=2e-7
    )
    params = _params(2, jitter=False, blur=True, sigma=sigma.expand(2))
    mean, std = _mean_std(tensors)
    out = strong_augment(tensors["img"], mean, std, params)
    parity.close("augment.blur", out, tensors[f"{case}.out"], **BLUR)
    for size, expected in meta["gaussian_blur_kernel_size_for_HxW"].items():
        height, width = (int(side) for side in size.split("x"))
        assert [blur_kernel_size(height), blur_kernel_size(width)] == expected


@pytest.mark.parametrize("seed", [0, 1])
def test_strong_transform_of_mixed_images(recorded, parity, seed):
    tensors, meta = recorded
    case = f"st_s{seed}"
    recorded_case = meta["strong_transform"][seed]
    labels = tensors["st.gt"][:, 0].long()
    chosen = classes_table(recorded_case["pasted_source_classes"])
    x_mix, y_mix, w_mix, mask = classmix(
        tensors["img"],
        labels,
        tensors["st.img_trg"],
        tensors["st.pseudo_label"].long(),
        tensors["st.pseudo_weight"],
        chosen,
    )
    assert torch.equal(mask, tensors[f"{case}.mix_mask"].float())
    assert torch.equal(y_mix, tensors[f"{case}.mixed_lbl"][:, 0].long())
    assert torch.equal(w_mix, tensors[f"{case}.mixed_weight"])
    images = range(2)
    fields = {"sigma": torch.stack([tensors[f"{case}.img{i}.sigma"] for i in images])}
    if recorded_case["jitter_applied"]:
        for name in FACTORS:
            fields[name] = torch.cat([tensors[f"{case}.img{i}.{name}_factor"] for i in images])
        fields["order"] = torch.stack([tensors[f"{case}.img{i}.order"] for i in images])
    params = _params(2, recorded_case["jitter_applied"], recorded_case["blur_applied"], **fields)
    mean, std = _mean_std(tensors)
    out = strong_augment(x_mix, mean, std, params)
    parity.close("augment.strong_transform", out, tensors[f"{case}.mixed_img"], **JITTER_NORMALISED)
