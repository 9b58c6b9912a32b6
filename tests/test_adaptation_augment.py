"""Strong augmentation: kornia formulas by hand, DACS draw structure, blur by hand, identity."""

from __future__ import annotations

import math

import pytest
import torch

from omuda.adaptation.augment import (
    AugmentParams,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    blur_kernel_size,
    color_jitter,
    color_jitter_torchvision,
    gaussian_blur,
    hsv_to_rgb,
    rgb_to_hsv,
    sample_augment_params,
    sample_color_jitter,
    strong_augment,
)

MEAN = 255 * torch.tensor([0.485, 0.456, 0.406])  # pixel units, as DACS passes them
STD = 255 * torch.tensor([0.229, 0.224, 0.225])


def _normalised_images(batch: int = 3, size: int = 24) -> torch.Tensor:
    pixels = 255 * torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(7))
    return (pixels - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1)


def _sample(batch: int, seed: int, **options) -> AugmentParams:
    return sample_augment_params(batch, torch.Generator().manual_seed(seed), **options)


def test_zero_probabilities_are_exact_identity():
    x = _normalised_images()
    params = _sample(3, 0, jitter_p=0.0, blur_p=0.0)
    assert not params.jitter.any() and not params.blur.any()
    assert torch.equal(strong_augment(x, MEAN, STD, params), x)
    assert torch.equal(strong_augment(x, MEAN, STD, AugmentParams.identity(3)), x)


def test_same_seed_same_output_and_range():
    x = _normalised_images(batch=4)
    options = {"jitter_p": 1.0, "blur_p": 1.0}
    first = strong_augment(x, MEAN, STD, _sample(4, 3, **options))
    second = strong_augment(x, MEAN, STD, _sample(4, 3, **options))
    other = strong_augment(x, MEAN, STD, _sample(4, 4, **options))
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert not torch.allclose(first, x)
    pixels = (first * STD.view(1, 3, 1, 1) + MEAN.view(1, 3, 1, 1)) / 255
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


def test_batch_decision_switches_all_images_together():
    jitter_on, blur_on = [], []
    for seed in range(200):
        params = _sample(3, seed, decision="batch")
        assert params.jitter.all() or not params.jitter.any()
        assert params.blur.all() or not params.blur.any()
        jitter_on.append(params.jitter[0].item())
        blur_on.append(params.blur[0].item())
    # DACS: jitter when U(0,1) > 0.2 (80% of the batches), blur when U(0,1) > 0.5
    assert sum(jitter_on) / 200 == pytest.approx(0.8, abs=0.08)
    assert sum(blur_on) / 200 == pytest.approx(0.5, abs=0.1)
    mixed = [_sample(3, seed, decision="image").jitter for seed in range(20)]
    assert any(0 < int(on.sum()) < 3 for on in mixed)


def test_kornia_call_structure_one_per_image_or_one_per_batch():
    # DACS's mixed images: one kornia call each, so each image has its own order and sigma.
    per_image = _sample(4, 5, one_call=False)
    assert per_image.order.shape == (4, 4) and per_image.sigma.shape == (4,)
    assert len({tuple(row) for row in per_image.order.tolist()}) > 1
    assert len(set(per_image.sigma.tolist())) == 4
    # MIC's masked batch: one call, one order and one sigma, factors still per image.
    batch_call = _sample(4, 5, one_call=True)
    assert len({tuple(row) for row in batch_call.order.tolist()}) == 1
    assert len(set(batch_call.sigma.tolist())) == 1
    assert len(set(batch_call.brightness.tolist())) == 4
    for row in per_image.order.tolist() + batch_call.order.tolist():
        assert sorted(row) == [0, 1, 2, 3]
    for params in (per_image, batch_call):
        for factor in (params.brightness, params.contrast, params.saturation):
            assert factor.min() >= 0.8 - 1e-6 and factor.max() <= 1.2 + 1e-6
        assert params.hue.abs().max() <= 0.2 + 1e-6
        assert params.sigma.min() >= 0.15 and params.sigma.max() <= 1.15


def test_sample_color_jitter_follows_kornias_draw_sequence():
    # brightness, contrast, hue (before saturation), saturation, then randperm(4)
    brightness, contrast, saturation, hue, order = sample_color_jitter(
        3, 0.2, torch.Generator().manual_seed(11)
    )
    replay = torch.Generator().manual_seed(11)
    low, high = torch.tensor(0.8), torch.tensor(1.2)
    expected = [low + torch.rand(3, generator=replay) * (high - low) for _ in range(2)]
    expected_hue = -torch.tensor(0.2) + torch.rand(3, generator=replay) * torch.tensor(0.4)
    expected_saturation = low + torch.rand(3, generator=replay) * (high - low)
    expected_order = torch.randperm(4, generator=replay)
    assert torch.equal(brightness, expected[0]) and torch.equal(contrast, expected[1])
    assert torch.equal(hue, expected_hue) and torch.equal(saturation, expected_saturation)
    assert torch.equal(order, expected_order)


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


def test_torchvision_jitter_neutral_is_identity_and_brightness_scales():
    pixels = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(3)) * 0.5
    ones = torch.ones(2)
    neutral = color_jitter_torchvision(pixels, ones, ones, ones, torch.zeros(2))
    torch.testing.assert_close(neutral, pixels, atol=1e-5, rtol=0)
    brighter = color_jitter_torchvision(
        pixels, torch.tensor([1.2, 1.0]), ones, ones, torch.zeros(2)
    )
    torch.testing.assert_close(brighter[0], pixels[0] * 1.2, atol=1e-5, rtol=0)


def test_kornia_formulas_by_hand():
    pixels = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(3)) * 0.5
    # brightness adds factor - 1, contrast multiplies (no mean), both clamp to [0, 1]
    brighter = adjust_brightness(pixels, torch.tensor([1.2, 0.9]))
    torch.testing.assert_close(brighter[0], pixels[0] + 0.2)
    torch.testing.assert_close(brighter[1], (pixels[1] - 0.1).clamp(min=0))
    assert torch.equal(
        adjust_contrast(pixels, torch.tensor([3.0, 1.0]))[0], (3 * pixels[0]).clamp(max=1)
    )
    # HSV with S = delta / (V + 1e-6); pure red has hue 0, pure green 2 pi / 3
    hsv = rgb_to_hsv(torch.tensor([[1.0, 0.5], [0.0, 0.5], [0.0, 0.5]]).view(1, 3, 1, 2))
    torch.testing.assert_close(hsv[0, :, 0, 0], torch.tensor([0.0, 1 / (1 + 1e-6), 1.0]))
    torch.testing.assert_close(hsv[0, :, 0, 1], torch.tensor([0.0, 0.0, 0.5]))  # grey
    green = rgb_to_hsv(torch.tensor([0.0, 0.8, 0.0]).view(1, 3, 1, 1))
    torch.testing.assert_close(green[0, 0, 0, 0], torch.tensor(2 * math.pi / 3))
    images = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(images)), images, atol=1e-5, rtol=0)
    # a third of a turn takes red to green; saturation 0 gives grey
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(
        adjust_hue(red, torch.tensor([1 / 3])).flatten(),
        torch.tensor([0.0, 1, 0]),
        atol=1e-5,
        rtol=0,
    )
    grey = adjust_saturation(images, torch.zeros(2))
    assert torch.allclose(grey, grey.amax(dim=1, keepdim=True).expand_as(grey))


def test_color_jitter_applies_each_images_order():
    images = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(5))
    factors = (torch.tensor([1.1, 0.9]), torch.tensor([0.85, 1.15]), torch.tensor([1.2, 0.8]))
    hue = torch.tensor([0.1, -0.15])
    order = torch.tensor([[3, 1, 0, 2], [0, 1, 2, 3]])
    out = color_jitter(images, *factors, hue, order)
    steps = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    values = (*factors, hue)
    for image in range(2):
        expected = images[image : image + 1]
        for step in order[image].tolist():
            expected = steps[step](expected, values[step][image : image + 1])
        assert torch.equal(out[image : image + 1], expected)


def test_blur_runs_in_normalised_space_with_the_drawn_sigma():
    x = _normalised_images(batch=2, size=30)
    params = _sample(2, 9, jitter_p=0.0, blur_p=1.0)
    out = strong_augment(x, MEAN, STD, params)
    torch.testing.assert_close(out, gaussian_blur(x, params.sigma, (3, 3)))


def test_torchvision_formulas_stay_available():
    x = _normalised_images(batch=2)
    params = _sample(2, 2, jitter_p=1.0, blur_p=0.0)
    out = strong_augment(x, MEAN, STD, params, formulas="torchvision")
    pixels = ((x * STD.view(1, 3, 1, 1) + MEAN.view(1, 3, 1, 1)) / 255).clamp(0, 1)
    factors = (params.brightness, params.contrast, params.saturation, params.hue)
    expected = (
        color_jitter_torchvision(pixels, *factors) * 255 - MEAN.view(1, 3, 1, 1)
    ) / STD.view(1, 3, 1, 1)
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, strong_augment(x, MEAN, STD, params))


def test_no_host_reads():
    # Meta tensors have no data: any .item(), nonzero() or Python branch on values would fail.
    x = torch.empty(2, 3, 32, 32, device="meta")
    for one_call in (False, True):
        params = sample_augment_params(2, None, "meta", one_call=one_call)
        out = strong_augment(x, MEAN.to("meta"), STD.to("meta"), params)
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


def test_sync_free_jitter_equals_the_per_image_path():
    from omuda.adaptation.augment import _color_jitter_selected

    images = torch.rand(3, 3, 9, 7, generator=torch.Generator().manual_seed(6))
    params = _sample(3, 7, jitter_p=1.0)
    factors = (params.brightness, params.contrast, params.saturation, params.hue)
    per_image = color_jitter(images, *factors, params.order)
    assert torch.equal(_color_jitter_selected(images, *factors, params.order), per_image)
