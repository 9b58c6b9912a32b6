"""Synthetic benchmark, whole frames: class statistics, the domain gap, argument checks.

The parts have their own tests: test_synthetic_canvas, _layout (camera and street),
_objects, _appearance and _writer.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from omuda.data import labels
from omuda.data.synthetic import FRAME_SIZES, render_scene
from omuda.errors import OmudaError


def test_target_class_statistics_look_like_streets() -> None:
    height, width = FRAME_SIZES["cityscapes"]
    pixels = np.zeros(256, dtype=np.int64)
    present = np.zeros(labels.NUM_CLASSES, dtype=bool)
    for index in range(30):
        _, train_ids = render_scene(
            np.random.default_rng([11, 1, index]), "cityscapes", 1.0, height, width
        )
        counts = np.bincount(train_ids.ravel(), minlength=256)
        pixels += counts
        present |= counts[: labels.NUM_CLASSES] > 0
    fractions = pixels[: labels.NUM_CLASSES] / pixels[: labels.NUM_CLASSES].sum()
    assert present.all(), [labels.CLASS_NAMES[c] for c in np.flatnonzero(~present)]
    largest = set(np.argsort(fractions)[::-1][:4].tolist())
    assert largest == {0, 2, 8, 10}  # road, building, vegetation, sky
    thing_share = fractions[list(labels.THING_CLASSES)].sum()
    assert 0.02 < thing_share < 0.25


def _colour_statistics(domain: str, shift: float) -> tuple[float, float]:
    """Mean HSV saturation and mean grey-level std over a few frames of `domain`."""
    height, width = FRAME_SIZES[domain]
    saturation, contrast = [], []
    for index in range(6):
        rgb, _ = render_scene(np.random.default_rng([7, 0, index]), domain, shift, height, width)
        saturation.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[:, :, 1].mean())
        contrast.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).std())
    return float(np.mean(saturation)), float(np.mean(contrast))


def test_larger_shift_separates_the_domains_more() -> None:
    gaps = {}
    for shift in (0.0, 2.0):
        source, target = _colour_statistics("gta", shift), _colour_statistics("cityscapes", shift)
        gaps[shift] = (abs(source[0] - target[0]), abs(source[1] - target[1]))
    assert gaps[2.0][0] > gaps[0.0][0] + 20  # saturation, 0..255
    assert gaps[2.0][1] > gaps[0.0][1] + 5  # grey-level contrast


def test_render_scene_returns_consistent_arrays() -> None:
    rgb, train_ids = render_scene(np.random.default_rng(0), "gta", 0.5, 90, 160)
    assert rgb.shape == (90, 160, 3) and rgb.dtype == np.uint8
    assert train_ids.shape == (90, 160) and train_ids.dtype == np.uint8
    assert set(np.unique(train_ids).tolist()) <= set(range(labels.NUM_CLASSES))
    again, _ = render_scene(np.random.default_rng(0), "gta", 0.5, 90, 160)
    np.testing.assert_array_equal(rgb, again)


def test_render_scene_rejects_unknown_domains_and_negative_shift() -> None:
    with pytest.raises(OmudaError, match="unknown domain"):
        render_scene(np.random.default_rng(0), "kitti", 1.0, 64, 128)
    with pytest.raises(OmudaError, match="shift"):
        render_scene(np.random.default_rng(0), "gta", -1.0, 64, 128)
