"""Synthetic benchmark, per-domain appearance: styles, rates, colours and the finishing pass."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from omuda.data.synthetic import appearance, canvas, palettes


def test_at_shift_zero_source_and_target_render_alike() -> None:
    target = appearance.domain_style("cityscapes", 0.0)
    for source in ("gta", "synthia"):
        style = appearance.domain_style(source, 0.0)
        assert style.synthetic and not target.synthetic  # only picks the own palette
        assert dataclasses.replace(style, synthetic=False) == target
    assert target.own_share == 0.0 and target.colour_mix == 0.0
    assert target.saturation == target.contrast == target.brightness == 1.0
    assert target.blur_sigma == target.sharpen == target.vignette == 0.0
    assert target.noise_std == 0.003
    assert appearance.domain_rates("gta", 0.0) == appearance.domain_rates("cityscapes", 0.0)


def test_style_components_follow_the_documented_formulas() -> None:
    source, target = appearance.domain_style("gta", 1.0), appearance.domain_style("cityscapes", 1.0)
    assert source.saturation == pytest.approx(math.exp(0.20))
    assert target.saturation == pytest.approx(math.exp(-0.35))
    assert source.contrast == pytest.approx(math.exp(0.12))
    assert target.contrast == pytest.approx(math.exp(-0.22))
    assert source.gains == pytest.approx((math.exp(0.05), 1.0, math.exp(-0.06)))
    assert target.gains == pytest.approx((math.exp(-0.04), 1.0, math.exp(0.05)))
    assert source.sharpen == pytest.approx(0.4 * (1 - math.exp(-1)))
    assert target.blur_sigma == pytest.approx(0.2)
    assert target.noise_std == pytest.approx(0.008)
    assert target.vignette == pytest.approx(0.1)
    assert target.own_share == source.own_share == pytest.approx(1 - math.exp(-1.2))
    assert appearance.domain_style("cityscapes", 7.0).vignette == 0.6  # capped
    assert source.ambiguity == 0.0  # the source keeps its clean cues
    assert target.ambiguity == pytest.approx(appearance.AMBIGUITY_PER_SHIFT)
    assert appearance.domain_style("cityscapes", 7.0).ambiguity == 0.9  # capped


def test_rates_scale_by_domain_and_cap_probabilities() -> None:
    target, source = appearance.domain_rates("cityscapes", 1.0), appearance.domain_rates("gta", 1.0)
    assert target["moving_cars"] == pytest.approx(1.8 * math.exp(0.30))
    assert source["moving_cars"] == pytest.approx(1.8 * math.exp(-0.15))
    assert source["trucks"] == pytest.approx(0.35 * math.exp(0.25))
    assert appearance.domain_rates("gta", 5.0)["vegetation_segment"] == 0.9  # 0.3 e^1.5, capped
    synthia = appearance.domain_rates("synthia", 1.0)
    assert synthia["trucks"] == synthia["train"] == synthia["terrain_strip"] == 0.0
    assert synthia["persons"] == source["persons"]


def test_base_colours_move_from_shared_to_own_with_the_shift() -> None:
    """blend scales the mixed colour by one random factor, so channel ratios are exact."""

    def ratios(colour: np.ndarray) -> np.ndarray:
        return colour / colour.sum()

    shared, synthetic, real = (np.array(c, dtype=np.float64) for c in palettes.ROAD_COLOURS)
    for domain, own in (("gta", synthetic), ("cityscapes", real)):
        rng = np.random.default_rng(0)
        at_zero = appearance.Look(rng, appearance.domain_style(domain, 0.0)).blend(
            palettes.ROAD_COLOURS
        )
        np.testing.assert_allclose(ratios(at_zero), ratios(shared))
        style = appearance.domain_style(domain, 2.0)
        mixed = shared + (1 - math.exp(-2.0)) * (own - shared)
        shifted = appearance.Look(rng, style).blend(palettes.ROAD_COLOURS)
        np.testing.assert_allclose(ratios(shifted), ratios(mixed))


def test_object_colours_come_from_the_shared_palette_at_shift_zero() -> None:
    shared = np.array(palettes.PALETTES["car"]["shared"]) / 255.0
    look = appearance.Look(np.random.default_rng(1), appearance.domain_style("gta", 0.0))
    for _ in range(20):
        assert not look.uses_own()
        colour = look.colour("car")
        # within 4 standard deviations of the 9% jitter of its palette entry
        relative = np.abs(colour[None, :] - shared) / np.maximum(shared, 1e-3)
        assert (relative < 0.36).all(axis=1).any()


def _flat_canvas(grey: float) -> canvas.Canvas:
    flat = canvas.Canvas(48, 64)
    flat.rgb[:] = grey
    flat.grain[:] = 0.05
    return flat


def test_finish_is_the_same_for_both_domains_at_shift_zero() -> None:
    images = [
        appearance.finish(
            _flat_canvas(0.5), appearance.domain_style(domain, 0.0), np.random.default_rng(4)
        )
        for domain in ("gta", "cityscapes")
    ]
    np.testing.assert_array_equal(images[0], images[1])
    assert images[0].dtype == np.uint8 and images[0].shape == (48, 64, 3)


def test_target_finish_darkens_corners_and_blurs() -> None:
    smooth = canvas.Canvas(48, 64)
    smooth.rgb[:] = 0.6
    target = appearance.finish(
        smooth, appearance.domain_style("cityscapes", 2.0), np.random.default_rng(2)
    )
    grey = target.astype(np.float64).mean(axis=2)
    assert grey[:6, :6].mean() < grey[20:28, 28:36].mean() - 10  # vignette 0.2 at the corners
    source = appearance.finish(
        smooth, appearance.domain_style("gta", 2.0), np.random.default_rng(2)
    )
    # no vignette or blur: each channel stays flat up to the 0.003 (0.8 grey level) noise
    assert source.reshape(-1, 3).astype(np.float64).std(axis=0).max() < 2.0
