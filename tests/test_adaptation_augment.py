"""Strong augmentation: exact identity at p=0, seeded determinism, blur by hand, valid range."""

from __future__ import annotations

import math

import pytest
import torch

from omuda.adaptation.augment import blur_kernel_size, color_jitter, gaussian_blur, strong_augment

MEAN = torch.tensor([0.485, 0.456, 0.406])
STD = torch.tensor([0.229, 0.224, 0.225])


def _normalised_images(batch: int = 3, size: int = 24) -> torch.Tensor:
    pixels = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(7))
    return (pixels - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1)


def test_zero_probabilities_are_exact_identity():
    x = _normalised_images()
    out = strong_augment(x, MEAN, STD, torch.Generator().manual_seed(0), jitter_p=0.0, blur_p=0.0)
    assert torch.equal(out, x)


def test_same_seed_same_output_and_range():
    x = _normalised_images(batch=4)
    first = strong_augment(x, MEAN, STD, torch.Generator().manual_seed(3), 1.0, 1.0)
    second = strong_augment(x, MEAN, STD, torch.Generator().manual_seed(3), 1.0, 1.0)
    other = strong_augment(x, MEAN, STD, torch.Generator().manual_seed(4), 1.0, 1.0)
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert not torch.allclose(first, x)
    pixels = first * STD.view(1, 3, 1, 1) + MEAN.view(1, 3, 1, 1)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


def test_kernel_size_is_odd_and_about_ten_percent():
    assert blur_kernel_size(512) == 51
    assert blur_kernel_size(1024) == 103
    assert blur_kernel_size(30) == 3
    assert blur_kernel_size(8) == 1


def _reflect(index: int, size: int) -> int:
    if index < 0:
        return -index
    if index >= size:
        return 2 * (size - 1) - index
    return index


def test_blur_matches_hand_built_separable_gaussian():
    image = torch.rand(1, 1, 7, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sigma = 0.8
    size = 5
    taps = [math.exp(-(t**2) / (2 * sigma**2)) for t in range(-2, 3)]
    taps = [tap / sum(taps) for tap in taps]
    expected = torch.zeros_like(image)
    for row in range(7):
        for col in range(9):
            total = 0.0
            for dy in range(size):
                for dx in range(size):
                    source_row = _reflect(row + dy - 2, 7)
                    source_col = _reflect(col + dx - 2, 9)
                    total += taps[dy] * taps[dx] * image[0, 0, source_row, source_col].item()
            expected[0, 0, row, col] = total
    blurred = gaussian_blur(image, torch.tensor([sigma], dtype=torch.float64), (size, size))
    torch.testing.assert_close(blurred, expected)


def test_blur_uses_each_images_sigma():
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    both = gaussian_blur(images, torch.tensor([0.3, 1.1]), (5, 5))
    alone = gaussian_blur(images[1:], torch.tensor([1.1]), (5, 5))
    torch.testing.assert_close(both[1:], alone)


def test_neutral_jitter_is_identity_and_brightness_scales():
    pixels = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(3)) * 0.5
    ones = torch.ones(2)
    neutral = color_jitter(pixels, ones, ones, ones, torch.zeros(2))
    torch.testing.assert_close(neutral, pixels, atol=1e-5, rtol=0)
    brighter = color_jitter(pixels, torch.tensor([1.2, 1.0]), ones, ones, torch.zeros(2))
    torch.testing.assert_close(brighter[0], pixels[0] * 1.2, atol=1e-5, rtol=0)


def test_blur_only_follows_the_documented_draw():
    x = _normalised_images(batch=2, size=30)
    out = strong_augment(x, MEAN, STD, torch.Generator().manual_seed(9), jitter_p=0.0, blur_p=1.0)
    draws = torch.rand(2, 7, generator=torch.Generator().manual_seed(9))
    pixels = (x * STD.view(1, 3, 1, 1) + MEAN.view(1, 3, 1, 1)).clamp(0, 1)
    expected = gaussian_blur(pixels, 0.15 + draws[:, 6], (3, 3)).clamp(0, 1)
    expected = (expected - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1)
    torch.testing.assert_close(out, expected)


def test_no_host_reads():
    # Meta tensors have no data: any .item(), nonzero() or Python branch on values would fail.
    x = torch.empty(2, 3, 32, 32, device="meta")
    out = strong_augment(x, MEAN.to("meta"), STD.to("meta"), generator=None)
    assert out.shape == x.shape


def test_shift_hue_by_hand_and_against_kornia():
    from omuda.adaptation.augment import shift_hue

    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    # a third of a turn takes pure red to pure green, two thirds to blue; grey stays grey
    assert torch.allclose(
        shift_hue(red, torch.tensor([1 / 3])).flatten(), torch.tensor([0.0, 1, 0]), atol=1e-6
    )
    assert torch.allclose(
        shift_hue(red, torch.tensor([2 / 3])).flatten(), torch.tensor([0.0, 0, 1]), atol=1e-6
    )
    grey = torch.full((1, 3, 2, 2), 0.4)
    assert torch.equal(shift_hue(grey, torch.tensor([0.25])), grey)
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(shift_hue(images, torch.zeros(3)), images, atol=1e-6)
    kornia = pytest.importorskip("kornia")
    shift = torch.tensor([0.1, -0.2, 0.45])
    expected = kornia.enhance.adjust_hue(images, shift * 2 * math.pi)
    assert torch.allclose(shift_hue(images, shift), expected, atol=1e-4)
