"""Transforms: keep-ratio sizes by hand, crops under cat_max_ratio and a required class."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omuda.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    denormalize,
    keep_ratio_size,
    normalize,
    pad_to,
    random_crop,
    random_flip,
    resize,
    resize_image,
)


def _image(height: int, width: int) -> np.ndarray:
    values = np.arange(height * width * 3, dtype=np.int64) % 251
    return values.reshape(height, width, 3).astype(np.uint8)


@pytest.mark.parametrize(
    ("size", "scale", "expected"),
    [
        # GTA5: factor = min(1280/1914, 720/1052) = 1280/1914; 1052 * 0.66876 = 703.53 -> 704
        # (mmcv rounds half up).
        ((1914, 1052), (1280, 720), (1280, 704)),
        ((2048, 1024), (1024, 512), (1024, 512)),  # Cityscapes: exactly half
        ((1280, 760), (1280, 760), (1280, 760)),  # SYNTHIA: unchanged
        ((500, 1000), (1280, 720), (640, 1280)),  # portrait: factor min(1280/1000, 720/500)
        ((100, 50), (1024, 512), (1024, 512)),  # small images are enlarged
    ],
)
def test_keep_ratio_size_by_hand(size, scale, expected):
    assert keep_ratio_size(*size, scale) == expected


def test_resize_image_bilinear_and_label_nearest():
    image = _image(2, 4)
    label = np.array([[0, 1, 2, 3], [4, 5, 6, 255]], dtype=np.uint8)
    resized_image, resized_label = resize(image, label, (8, 4))
    assert resized_image.shape == (4, 8, 3) and resized_image.dtype == np.uint8
    # An exact 2x nearest-neighbour enlargement repeats every label pixel 2x2.
    np.testing.assert_array_equal(resized_label, label.repeat(2, axis=0).repeat(2, axis=1))
    assert resize_image(image, (8, 4)).shape == (4, 8, 3)


def test_resize_aligns_a_label_of_another_size_with_the_image():
    image = _image(20, 40)
    label = np.zeros((10, 20), dtype=np.uint8)
    resized_image, resized_label = resize(image, label, (20, 12))
    assert resized_image.shape[:2] == resized_label.shape == (10, 20)


def test_pad_to_fills_image_with_zero_and_label_with_ignore():
    image = np.full((2, 3, 3), 7, dtype=np.uint8)
    label = np.ones((2, 3), dtype=np.uint8)
    padded_image, padded_label = pad_to(image, label, (4, 5))
    assert padded_image.shape == (4, 5, 3) and padded_label.shape == (4, 5)
    assert (padded_image[:2, :3] == 7).all() and padded_image[2:].sum() == 0
    assert (padded_label[:2, :3] == 1).all()
    assert (padded_label[2:] == 255).all() and (padded_label[:, 3:] == 255).all()
    # Sides already large enough stay as they are.
    assert pad_to(image, label, (1, 1))[0].shape == (2, 3, 3)


def test_random_crop_pads_an_image_smaller_than_the_crop():
    image = np.full((3, 4, 3), 9, dtype=np.uint8)
    label = np.full((3, 4), 2, dtype=np.uint8)
    crop_image, crop_label = random_crop(image, label, (5, 6), np.random.default_rng(0))
    assert crop_image.shape == (5, 6, 3) and crop_label.shape == (5, 6)
    assert (crop_label[:3, :4] == 2).all() and (crop_label[3:] == 255).all()
    assert (crop_image[:3, :4] == 9).all() and crop_image[:, 4:].sum() == 0


def _largest_share(label: np.ndarray) -> float:
    counts = np.bincount(label[label != 255].ravel(), minlength=19)
    return counts.max() / counts.sum()


def test_random_crop_respects_cat_max_ratio_when_possible():
    # 8 columns of class 0, then 8 of class 1. A 10x10 crop at left offset l in 0..6 holds
    # l + 2 columns of class 1: only l in 1..5 (5 of 7 offsets) has a largest share < 0.75;
    # all 11 draws fail with probability (2/7)^11 = 1e-6 per seed.
    label = np.zeros((10, 16), dtype=np.uint8)
    label[:, 8:] = 1
    image = _image(10, 16)
    constrained, unconstrained = [], []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        constrained.append(_largest_share(random_crop(image, label, (10, 10), rng, 0.75)[1]))
        rng = np.random.default_rng(seed)
        unconstrained.append(_largest_share(random_crop(image, label, (10, 10), rng, 1.0)[1]))
    assert max(constrained) < 0.75
    assert max(unconstrained) >= 0.75  # the rule, not luck, keeps the shares low


def test_random_crop_gives_up_on_an_impossible_ratio():
    label = np.zeros((8, 8), dtype=np.uint8)  # one class only: no crop can pass
    crop_image, crop_label = random_crop(
        _image(8, 8), label, (4, 4), np.random.default_rng(0), cat_max_ratio=0.75
    )
    assert crop_image.shape == (4, 4, 3) and crop_label.shape == (4, 4)


def test_random_crop_holds_the_required_class():
    # Class 5 fills the 16x16 centre of a 48x48 label. A 24x24 crop holds more than 150 of
    # its pixels only for some offsets; with up to 11 draws every seed finds one.
    label = np.zeros((48, 48), dtype=np.uint8)
    label[16:32, 16:32] = 5
    image = _image(48, 48)
    with_class, without_class = [], []
    for seed in range(30):
        _, crop_label = random_crop(
            image,
            label,
            (24, 24),
            np.random.default_rng(seed),
            required_class=5,
            min_class_pixels=150,
        )
        with_class.append(int((crop_label == 5).sum()))
        _, crop_label = random_crop(image, label, (24, 24), np.random.default_rng(seed))
        without_class.append(int((crop_label == 5).sum()))
    assert min(with_class) > 150
    assert min(without_class) <= 150  # without the requirement some crops miss it


def test_random_crop_is_aligned_and_deterministic():
    image = _image(30, 40)
    label = (image[:, :, 0] % 19).astype(np.uint8)
    first = random_crop(image, label, (8, 12), np.random.default_rng(3), cat_max_ratio=0.75)
    second = random_crop(image, label, (8, 12), np.random.default_rng(3), cat_max_ratio=0.75)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(first[1], (first[0][:, :, 0] % 19).astype(np.uint8))


def test_random_flip():
    image = _image(2, 3)
    label = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.uint8)
    flipped_image, flipped_label = random_flip(image, label, np.random.default_rng(0), prob=1.0)
    np.testing.assert_array_equal(flipped_label, [[2, 1, 0], [5, 4, 3]])
    np.testing.assert_array_equal(flipped_image, image[:, ::-1])
    kept_image, kept_label = random_flip(image, label, np.random.default_rng(0), prob=0.0)
    np.testing.assert_array_equal(kept_label, label)


def test_normalize_and_denormalize():
    images = torch.zeros(1, 3, 1, 2, dtype=torch.uint8)
    images[0, 0, 0, 0] = 255
    x = normalize(images)
    assert x.dtype == torch.float32 and x.shape == (1, 3, 1, 2)
    assert x[0, 0, 0, 0].item() == pytest.approx((1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0])
    assert x[0, 2, 0, 1].item() == pytest.approx(-IMAGENET_MEAN[2] / IMAGENET_STD[2])
    torch.testing.assert_close(denormalize(x), images.float() / 255.0)
    assert denormalize(torch.full((1, 3, 1, 1), 100.0)).max().item() == 1.0
