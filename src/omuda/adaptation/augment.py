"""DACS/DAFormer strong augmentation: kornia 0.5.8 colour jitter, then a Gaussian blur.

`sample_augment_params` draws everything random (on/off, jitter factors, the order of the
four jitter steps, blur sigma) into an `AugmentParams`; `strong_augment` applies it. The
two are separate so that recorded parameters can be replayed exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from omuda.adaptation._random import uniform

JITTER_STEPS: tuple[str, ...] = ("brightness", "contrast", "saturation", "hue")  # ids 0..3
FORMULAS: tuple[str, ...] = ("kornia", "torchvision")
DECISIONS: tuple[str, ...] = ("batch", "image")
SIGMA_RANGE = (0.15, 1.15)  # DACS: np.random.uniform(0.15, 1.15)
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma (torchvision's formulas)


@dataclass
class AugmentParams:
    """Parameters of one strong augmentation of B images (tensors on the images' device)."""

    jitter: Tensor  # (B,) bool: colour jitter on
    brightness: Tensor  # (B,) factor, 1 = unchanged
    contrast: Tensor  # (B,) factor, 1 = unchanged
    saturation: Tensor  # (B,) factor, 1 = unchanged
    hue: Tensor  # (B,) shift in turns, 0 = unchanged
    order: Tensor  # (B,4) long: JITTER_STEPS ids in the order they are applied
    blur: Tensor  # (B,) bool: Gaussian blur on
    sigma: Tensor  # (B,) blur standard deviation in pixels

    @classmethod
    def identity(cls, batch: int, device: torch.device | str | None = None) -> AugmentParams:
        """Parameters that leave every image unchanged (no jitter, no blur)."""
        off = torch.zeros(batch, dtype=torch.bool, device=device)
        ones = torch.ones(batch, device=device)
        order = torch.arange(4, device=device).expand(batch, 4)
        return cls(off, ones, ones, ones, ones - 1, order, off, ones)


def blur_kernel_size(size: int) -> int:
    """DACS's odd kernel size for an image side of `size` pixels: about 10% of it.

    The largest odd integer <= ceil(0.1 * size), at least 1 (51 for 512, 103 for 1024).
    """
    rounded_up = math.ceil(0.1 * size)
    odd = rounded_up if rounded_up % 2 == 1 else rounded_up - 1
    return max(odd, 1)


def gaussian_kernel_1d(sigma: Tensor, size: int, dtype: torch.dtype | None = None) -> Tensor:
    """Normalised 1-D Gaussian kernels, one per sigma (kornia's `gaussian`).

    sigma (B,) > 0 -> (B,size) in `dtype` (default sigma's): exp(-t^2 / (2 sigma^2)) over
    t = -(size//2)..size//2, each row summing to 1. 2 sigma^2 is formed in float64, as
    kornia does with a Python float sigma.
    """
    dtype = dtype or sigma.dtype
    offsets = torch.arange(size, device=sigma.device, dtype=dtype) - size // 2
    denominator = (2 * sigma.double() ** 2).to(dtype).view(-1, 1)
    weights = torch.exp(-(offsets**2) / denominator)
    return weights / weights.sum(dim=1, keepdim=True)


def gaussian_blur(images: Tensor, sigma: Tensor, kernel_size: tuple[int, int]) -> Tensor:
    """Separable Gaussian blur with one sigma per image and reflect padding (kornia's default).

    images (B,C,H,W) float, sigma (B,) float > 0, kernel_size (height, width) odd, each
    smaller than twice the matching image side -> (B,C,H,W).
    """
    batch, channels, height, width = images.shape
    groups = batch * channels
    sigma = sigma.to(images.device)
    rows_kernel = gaussian_kernel_1d(sigma, kernel_size[0], images.dtype)
    cols_kernel = gaussian_kernel_1d(sigma, kernel_size[1], images.dtype)
    rows_kernel = rows_kernel.repeat_interleave(channels, dim=0)
    cols_kernel = cols_kernel.repeat_interleave(channels, dim=0)
    # One depth-wise convolution over B*C groups applies each image's own kernel.
    grouped = images.reshape(1, groups, height, width)
    pad_rows, pad_cols = kernel_size[0] // 2, kernel_size[1] // 2
    grouped = F.pad(grouped, (0, 0, pad_rows, pad_rows), mode="reflect")
    grouped = F.conv2d(grouped, rows_kernel.view(groups, 1, -1, 1), groups=groups)
    grouped = F.pad(grouped, (pad_cols, pad_cols, 0, 0), mode="reflect")
    grouped = F.conv2d(grouped, cols_kernel.view(groups, 1, 1, -1), groups=groups)
    return grouped.view(batch, channels, height, width)


def rgb_to_hsv(images: Tensor, eps: float = 1e-6) -> Tensor:
    """kornia 0.5.8 `rgb_to_hsv`: (B,3,H,W) RGB in [0,1] -> (B,3,H,W) (H in radians [0, 2pi),
    S = delta / (V + eps), V = max); grey pixels get hue 0; ties take the first maximum."""
    maxc = images.amax(dim=1)
    is_max = images == maxc.unsqueeze(1)
    first_max = ((is_max.cumsum(dim=1) == 1) & is_max).int().argmax(dim=1, keepdim=True)
    minc = images.amin(dim=1)
    delta = maxc - minc
    saturation = delta / (maxc + eps)
    delta = torch.where(delta == 0, torch.ones_like(delta), delta)
    rc, gc, bc = (maxc.unsqueeze(1) - images).unbind(1)
    candidates = torch.stack([bc - gc, 2.0 * delta + rc - bc, 4.0 * delta + gc - rc], dim=1)
    hue = candidates.gather(1, first_max).squeeze(1) / delta
    hue = 2 * math.pi * ((hue / 6.0) % 1.0)
    return torch.stack([hue, saturation, maxc], dim=1)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """kornia 0.5.8 `hsv_to_rgb`: (B,3,H,W) HSV (H in radians) -> (B,3,H,W) RGB."""
    hue = hsv[:, 0] / (2 * math.pi)
    saturation, value = hsv[:, 1], hsv[:, 2]
    sector = torch.floor(hue * 6) % 6
    fraction = ((hue * 6) % 6) - sector
    p = value * (1.0 - saturation)
    q = value * (1.0 - fraction * saturation)
    t = value * (1.0 - (1.0 - fraction) * saturation)
    sector = sector.long()
    indices = torch.stack([sector, sector + 6, sector + 12], dim=1)
    table = torch.stack(
        (value, q, p, p, t, value, t, value, value, q, p, p, p, p, t, value, value, q), dim=1
    )
    return table.gather(1, indices)


def _per_image(factor: Tensor) -> Tensor:
    return factor.view(-1, 1, 1, 1)


def adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    """kornia: additive, clamp(x + (factor - 1), 0, 1). images (B,C,H,W), factor (B,)."""
    return (images + _per_image(factor - 1)).clamp(0.0, 1.0)


def adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    """kornia: multiplicative, no mean, clamp(factor * x, 0, 1). images (B,C,H,W), factor (B,)."""
    return (images * _per_image(factor)).clamp(0.0, 1.0)


def _saturate_hsv(hsv: Tensor, factor: Tensor) -> Tensor:
    saturation = (hsv[:, 1:2] * _per_image(factor)).clamp(0.0, 1.0)
    return hsv_to_rgb(torch.cat([hsv[:, :1], saturation, hsv[:, 2:]], dim=1))


def _rotate_hue_hsv(hsv: Tensor, turns: Tensor) -> Tensor:
    # kornia: hue_factor * 2 * pi (float32), fmod keeps negative angles (hsv_to_rgb wraps them)
    hue = torch.fmod(hsv[:, :1] + _per_image(turns * 2 * math.pi), 2 * math.pi)
    return hsv_to_rgb(torch.cat([hue, hsv[:, 1:]], dim=1))


def adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """kornia: S <- clamp(factor * S, 0, 1) in HSV. images (B,3,H,W) in [0,1], factor (B,)."""
    return _saturate_hsv(rgb_to_hsv(images), factor)


def adjust_hue(images: Tensor, turns: Tensor) -> Tensor:
    """kornia: H <- fmod(H + 2 pi turns, 2 pi) in HSV. images (B,3,H,W) in [0,1], turns (B,)."""
    return _rotate_hue_hsv(rgb_to_hsv(images), turns)


def color_jitter(
    images: Tensor,
    brightness: Tensor,
    contrast: Tensor,
    saturation: Tensor,
    hue: Tensor,
    order: Tensor,
) -> Tensor:
    """kornia 0.5.8 `ColorJitter` with given parameters, each image in its own step order.

    images (B,3,H,W) in [0,1]; brightness, contrast, saturation (B,) factors (1 =
    unchanged); hue (B,) shift in turns; order (B,4) long, JITTER_STEPS ids in application
    order -> (B,3,H,W) in [0,1]. With `order` on the CPU (free to read) each image runs its
    own four steps; elsewhere, sync-free, every step is computed at each position and each
    image keeps the one its order names. Both give the same values.
    """
    if order.device.type == "cpu" and images.device.type == "cpu":
        factors = (brightness, contrast, saturation, hue)
        steps = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
        jittered = []
        for index, image_order in enumerate(order.tolist()):
            image = images[index : index + 1]
            for step in image_order:
                image = steps[step](image, factors[step][index : index + 1])
            jittered.append(image)
        return torch.cat(jittered)
    return _color_jitter_selected(images, brightness, contrast, saturation, hue, order)


def _color_jitter_selected(
    images: Tensor,
    brightness: Tensor,
    contrast: Tensor,
    saturation: Tensor,
    hue: Tensor,
    order: Tensor,
) -> Tensor:
    """`color_jitter` without reading `order`: each position computes all four steps."""
    out = images
    for position in range(4):
        step = _per_image(order[:, position].to(images.device))
        hsv = rgb_to_hsv(out)
        out = torch.where(
            step == 0,
            adjust_brightness(out, brightness),
            torch.where(
                step == 1,
                adjust_contrast(out, contrast),
                torch.where(step == 2, _saturate_hsv(hsv, saturation), _rotate_hue_hsv(hsv, hue)),
            ),
        )
    return out


def color_jitter_torchvision(
    images: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor, hue: Tensor
) -> Tensor:
    """torchvision's ColorJitter formulas with one factor per image, in a fixed order.

    images (B,3,H,W) in [0,1]; brightness, contrast, saturation (B,) multiplicative factors;
    hue (B,) shift in turns -> (B,3,H,W) in [0,1]. Order brightness -> contrast (blend with
    the grey mean) -> saturation (blend with grey) -> hue; each step clamps to [0,1].
    """
    gray_weights = torch.tensor(_GRAY_WEIGHTS, device=images.device, dtype=images.dtype)
    gray_weights = gray_weights.view(1, 3, 1, 1)
    out = (images * _per_image(brightness)).clamp(0.0, 1.0)
    gray_mean = (out * gray_weights).sum(dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    contrast = _per_image(contrast)
    out = (contrast * out + (1.0 - contrast) * gray_mean).clamp(0.0, 1.0)
    gray = (out * gray_weights).sum(dim=1, keepdim=True)
    saturation = _per_image(saturation)
    out = (saturation * out + (1.0 - saturation) * gray).clamp(0.0, 1.0)
    return shift_hue(out, hue).clamp(0.0, 1.0)


def shift_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate the HSV hue of each image by `shift` turns (torchvision-style, S = chroma / V).

    images (B,3,H,W) in [0,1], shift (B,) in turns -> (B,3,H,W) in [0,1]; saturation and
    value are unchanged, grey pixels stay grey.
    """
    red, green, blue = images.unbind(1)
    value = images.amax(dim=1)
    chroma = value - images.amin(dim=1)
    saturation = chroma / value.clamp_min(1e-8)
    safe_chroma = chroma.clamp_min(1e-8)
    hue = torch.where(
        value == red,
        (green - blue) / safe_chroma,
        torch.where(
            value == green, 2.0 + (blue - red) / safe_chroma, 4.0 + (red - green) / safe_chroma
        ),
    )
    hue = torch.where(chroma > 0, hue / 6.0, 0.0)
    hue = torch.remainder(hue + shift.view(-1, 1, 1), 1.0)
    # HSV -> RGB: each channel is v - v*s*clamp(min(k, 4-k), 0, 1) with k = (n + 6h) mod 6.
    offsets = torch.tensor((5.0, 3.0, 1.0), device=images.device, dtype=images.dtype)
    k = torch.remainder(offsets.view(1, 3, 1, 1) + 6.0 * hue.unsqueeze(1), 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return value.unsqueeze(1) * (1.0 - saturation.unsqueeze(1) * ramp)


def sample_color_jitter(
    batch: int,
    strength: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One kornia 0.5.8 `ColorJitter(s, s, s, s)` draw for `batch` images.

    -> brightness, contrast, saturation, hue (B,) float32 and order (4,) long. Factors are
    U(1-s, 1+s) (brightness within [0,2]), hue U(-s, s) turns (within [-0.5, 0.5]), drawn in
    kornia's sequence: brightness, contrast, hue, saturation, then one permutation of the
    four steps shared by the call. A CPU generator seeded like `torch.manual_seed(k)`
    reproduces kornia's draws bit for bit.
    """
    signs = torch.tensor([-1.0, 1.0])
    scaled = torch.tensor(strength, dtype=torch.float32) * signs
    bounds = {
        "brightness": (scaled + 1.0).clamp(0.0, 2.0),
        "contrast": (scaled + 1.0).clamp(min=0.0),
        "saturation": (scaled + 1.0).clamp(min=0.0),
        "hue": scaled.clamp(-0.5, 0.5),
    }
    factors = {}
    for name in ("brightness", "contrast", "hue", "saturation"):
        low, high = bounds[name].to(device)
        factors[name] = low + uniform((batch,), generator, device) * (high - low)
    draw_device = generator.device if generator is not None else device
    order = torch.randperm(4, generator=generator, device=draw_device).to(device)
    return (
        factors["brightness"],
        factors["contrast"],
        factors["saturation"],
        factors["hue"],
        order,
    )


def sample_augment_params(
    batch: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    strength: float = 0.2,
    jitter_p: float = 0.8,
    blur_p: float = 0.5,
    decision: str = "batch",
    one_call: bool = False,
) -> AugmentParams:
    """Draw the parameters of a DACS strong augmentation of `batch` images.

    decision "batch" (DACS: one draw each for jitter and blur per iteration): jitter is on
    for all images with probability `jitter_p`, blur with `blur_p`; "image": each image
    decides on its own. Then per kornia call, one per image (one_call=False: DACS's mixed
    images, each its own `strong_transform`) or one for the batch (one_call=True: MIC's
    masked target batch): `sample_color_jitter`, then sigma ~ U(0.15, 1.15).
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    deciders = 1 if decision == "batch" else batch
    coins = uniform((deciders, 2), generator, device)
    jitter = (coins[:, 0] < jitter_p).expand(batch)
    blur = (coins[:, 1] < blur_p).expand(batch)
    calls = [batch] if one_call else [1] * batch
    drawn = []
    for size in calls:
        *factors, order = sample_color_jitter(size, strength, generator, device)
        sigma = SIGMA_RANGE[0] + uniform((1,), generator, device) * (
            SIGMA_RANGE[1] - SIGMA_RANGE[0]
        )
        drawn.append((*factors, order.expand(size, 4), sigma.expand(size)))
    brightness, contrast, saturation, hue, order, sigma = (
        torch.cat(parts) for parts in zip(*drawn, strict=True)
    )
    return AugmentParams(jitter, brightness, contrast, saturation, hue, order, blur, sigma)


def strong_augment(
    x: Tensor, mean: Tensor, std: Tensor, params: AugmentParams, formulas: str = "kornia"
) -> Tensor:
    """DACS's `color_jitter` then `gaussian_blur` on normalised images.

    x (B,3,H,W) float, x = (pixels - mean) / std; mean, std (3,) in pixel units 0..255 ->
    (B,3,H,W) normalised. Where `params.jitter`: x -> [0,1] as (x * std + mean) / 255 (no
    clamp), `color_jitter` (formulas "kornia") or `color_jitter_torchvision` (input clamped
    to [0,1]), back with (y * 255 - mean) / std. Where `params.blur`: a Gaussian blur of
    the normalised image with the image's sigma and a kernel of about 10% of each side
    (`blur_kernel_size`). Images with neither are returned bit for bit.
    """
    if formulas not in FORMULAS:
        raise ValueError(f"formulas must be one of {FORMULAS}, got {formulas!r}")
    _, _, height, width = x.shape
    mean = mean.to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = std.to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    pixels = (x * std + mean) / 255.0
    factors = (params.brightness, params.contrast, params.saturation, params.hue)
    if formulas == "kornia":
        jittered = color_jitter(pixels, *factors, params.order)
    else:
        jittered = color_jitter_torchvision(pixels.clamp(0.0, 1.0), *factors)
    x = torch.where(_per_image(params.jitter), (jittered * 255.0 - mean) / std, x)
    kernel_size = (blur_kernel_size(height), blur_kernel_size(width))
    blurred = gaussian_blur(x, params.sigma, kernel_size)
    return torch.where(_per_image(params.blur), blurred, x)
