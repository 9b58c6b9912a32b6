"""DACS/DAFormer strong augmentation: colour jitter and Gaussian blur in [0,1] pixel space."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from omuda.adaptation._random import uniform

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision and kornia use


def blur_kernel_size(size: int) -> int:
    """DACS's odd kernel size for an image side of `size` pixels: about 10% of it.

    The largest odd integer <= ceil(0.1 * size), at least 1 (51 for 512, 103 for 1024).
    """
    rounded_up = math.ceil(0.1 * size)
    odd = rounded_up if rounded_up % 2 == 1 else rounded_up - 1
    return max(odd, 1)


def gaussian_kernel_1d(sigma: Tensor, size: int) -> Tensor:
    """Normalised 1-D Gaussian kernels, one per sigma.

    sigma (B,) float > 0 -> (B,size): exp(-t^2 / (2 sigma^2)) over t = -(size//2)..size//2,
    each row summing to 1.
    """
    offsets = torch.arange(size, device=sigma.device, dtype=sigma.dtype) - size // 2
    weights = torch.exp(-(offsets**2) / (2.0 * sigma.view(-1, 1) ** 2))
    return weights / weights.sum(dim=1, keepdim=True)


def gaussian_blur(images: Tensor, sigma: Tensor, kernel_size: tuple[int, int]) -> Tensor:
    """Separable Gaussian blur with one sigma per image and reflect padding (kornia's default).

    images (B,C,H,W) float, sigma (B,) float > 0, kernel_size (height, width) odd, each
    smaller than twice the matching image side -> (B,C,H,W).
    """
    batch, channels, height, width = images.shape
    groups = batch * channels
    sigma = sigma.to(device=images.device, dtype=images.dtype)
    rows_kernel = gaussian_kernel_1d(sigma, kernel_size[0]).repeat_interleave(channels, dim=0)
    cols_kernel = gaussian_kernel_1d(sigma, kernel_size[1]).repeat_interleave(channels, dim=0)
    # One depth-wise convolution over B*C groups applies each image's own kernel.
    grouped = images.reshape(1, groups, height, width)
    pad_rows, pad_cols = kernel_size[0] // 2, kernel_size[1] // 2
    grouped = F.pad(grouped, (0, 0, pad_rows, pad_rows), mode="reflect")
    grouped = F.conv2d(grouped, rows_kernel.view(groups, 1, -1, 1), groups=groups)
    grouped = F.pad(grouped, (pad_cols, pad_cols, 0, 0), mode="reflect")
    grouped = F.conv2d(grouped, cols_kernel.view(groups, 1, 1, -1), groups=groups)
    return grouped.view(batch, channels, height, width)


def color_jitter(
    images: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor, hue: Tensor
) -> Tensor:
    """torchvision's ColorJitter formulas with one factor per image, in a fixed order.

    images (B,3,H,W) in [0,1]; brightness, contrast, saturation (B,) multiplicative factors
    (1 = unchanged); hue (B,) shift in turns, [-0.5, 0.5] (0 = unchanged) -> (B,3,H,W) in
    [0,1]. Order brightness -> contrast -> saturation -> hue (a fixed order avoids reading a
    random permutation back to the host); each step clamps to [0,1] as torchvision does.
    """
    gray_weights = torch.tensor(_GRAY_WEIGHTS, device=images.device, dtype=images.dtype)
    gray_weights = gray_weights.view(1, 3, 1, 1)
    out = (images * brightness.view(-1, 1, 1, 1)).clamp(0.0, 1.0)
    gray_mean = (out * gray_weights).sum(dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    contrast = contrast.view(-1, 1, 1, 1)
    out = (contrast * out + (1.0 - contrast) * gray_mean).clamp(0.0, 1.0)
    gray = (out * gray_weights).sum(dim=1, keepdim=True)
    saturation = saturation.view(-1, 1, 1, 1)
    out = (saturation * out + (1.0 - saturation) * gray).clamp(0.0, 1.0)
    out = shift_hue(out, hue)
    return out.clamp(0.0, 1.0)


def shift_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate the HSV hue of each image by `shift` turns (plain torch, no host sync).

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


def strong_augment(
    x: Tensor,
    mean: Tensor,
    std: Tensor,
    generator: torch.Generator | None = None,
    jitter_p: float = 0.8,
    blur_p: float = 0.5,
    strength: float = 0.2,
) -> Tensor:
    """DACS strong augmentation of normalised images, each image drawn independently.

    x (B,3,H,W) float, ImageNet-normalised; mean, std (3,) the normalisation -> (B,3,H,W)
    normalised. Per image: with probability `jitter_p` colour jitter (brightness, contrast,
    saturation factors ~ U(1-strength, 1+strength), hue shift ~ U(-strength, strength) turns),
    then with probability `blur_p` a Gaussian blur, sigma ~ U(0.15, 1.15), kernel ~10% of the
    side (`blur_kernel_size`). Work happens in [0,1] pixel space, clamped, then re-normalised.
    Images that draw neither are returned bit for bit. All randomness comes from `generator`
    (one (B,7) uniform draw), so the same generator state gives the same output.
    """
    batch, _, height, width = x.shape
    mean = mean.to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = std.to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    draws = uniform((batch, 7), generator, x.device).to(x.dtype)
    jitter_on = draws[:, 0] < jitter_p
    # Images without jitter get the neutral factors; where() below discards them anyway.
    factors = torch.where(
        jitter_on.unsqueeze(1), 1.0 - strength + 2.0 * strength * draws[:, 1:4], 1.0
    )
    hue = torch.where(jitter_on, strength * (2.0 * draws[:, 4] - 1.0), 0.0)
    blur_on = draws[:, 5] < blur_p
    sigma = 0.15 + draws[:, 6]

    pixels = (x * std + mean).clamp(0.0, 1.0)
    jittered = color_jitter(pixels, factors[:, 0], factors[:, 1], factors[:, 2], hue)
    pixels = torch.where(jitter_on.view(-1, 1, 1, 1), jittered, pixels)
    kernel_size = (blur_kernel_size(height), blur_kernel_size(width))
    blurred = gaussian_blur(pixels, sigma, kernel_size)
    pixels = torch.where(blur_on.view(-1, 1, 1, 1), blurred, pixels).clamp(0.0, 1.0)
    augmented = (pixels - mean) / std
    changed = (jitter_on | blur_on).view(-1, 1, 1, 1)
    return torch.where(changed, augmented, x)
