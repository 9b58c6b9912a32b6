"""Training and test transforms on numpy arrays, plus on-device normalisation.

Every data transform maps `(image, label) -> (image, label)` with image (H,W,3) uint8 RGB
and label (H,W) uint8 train ids (255 = ignore). Images resize bilinearly, labels with
nearest neighbour; padding fills images with 0 and labels with 255. Randomness comes from
an explicit `numpy.random.Generator`. The settings follow mmseg's pipeline as DAFormer
configures it: Resize(keep_ratio) -> RandomCrop(cat_max_ratio) -> RandomFlip -> Pad.

`normalize` / `denormalize` are the only torch functions here: images travel as uint8 and
the engine normalises them on the device.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from omuda.data.labels import IGNORE_INDEX

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# mmseg RandomCrop re-draws at most this many times to satisfy cat_max_ratio.
CAT_MAX_RATIO_ATTEMPTS = 10


def _channel_stats(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std as (3,1,1) float32 tensors on `like`'s device."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=like.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=like.device).view(3, 1, 1)
    return mean, std


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Map uint8 RGB images (B,3,H,W) (or (3,H,W)) to float32 ImageNet-normalised ones.

    x = (images / 255 - mean) / std, computed on the images' device.
    """
    mean, std = _channel_stats(images)
    return (images.float() / 255.0 - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Invert `normalize`: float (B,3,H,W) normalised -> float (B,3,H,W) RGB in [0, 1]."""
    mean, std = _channel_stats(x)
    return (x.float() * std + mean).clamp(0.0, 1.0)


def keep_ratio_size(width: int, height: int, scale: tuple[int, int]) -> tuple[int, int]:
    """The (width, height) of a keep-ratio resize into `scale` = (width, height).

    As mmcv's `imrescale`: the factor is the largest that keeps the long edge within
    max(scale) and the short edge within min(scale); sizes round half up.
    E.g. 1914x1052 into (1280, 720): factor 1280/1914 -> 1280x704.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"cannot resize an empty image of size {width}x{height}")
    max_long_edge, max_short_edge = max(scale), min(scale)
    factor = min(max_long_edge / max(width, height), max_short_edge / min(width, height))
    return int(width * factor + 0.5), int(height * factor + 0.5)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Keep-ratio bilinear resize of an (H,W,3) uint8 image into size = (width, height)."""
    height, width = image.shape[:2]
    new_width, new_height = keep_ratio_size(width, height, size)
    if (new_width, new_height) == (width, height):
        return image
    return cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_LINEAR)


def resize(
    image: np.ndarray, label: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Keep-ratio resize into size = (width, height): image bilinear, label nearest.

    The label is resized to the image's new size, so the pair stays aligned even when
    a label file's size differs from its image (some GTA5 frames).
    """
    resized_image = resize_image(image, size)
    new_height, new_width = resized_image.shape[:2]
    if label.shape[:2] == (new_height, new_width):
        return resized_image, label
    resized_label = cv2.resize(label, (new_width, new_height), interpolation=cv2.INTER_NEAREST)
    return resized_image, resized_label


def pad_to(
    image: np.ndarray, label: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pad at the bottom and right to at least size = (height, width).

    Image pixels are padded with 0, label pixels with 255; larger sides are left as they are.
    """
    target_height, target_width = size
    pad_bottom = max(target_height - image.shape[0], 0)
    pad_right = max(target_width - image.shape[1], 0)
    if pad_bottom == 0 and pad_right == 0:
        return image, label
    padded_image = np.pad(image, ((0, pad_bottom), (0, pad_right), (0, 0)), constant_values=0)
    padded_label = np.pad(label, ((0, pad_bottom), (0, pad_right)), constant_values=IGNORE_INDEX)
    return padded_image, padded_label


def _draw_crop_offset(
    height: int, width: int, crop_size: tuple[int, int], rng: np.random.Generator
) -> tuple[int, int]:
    """A uniformly drawn (top, left) of a crop_size = (h, w) window inside height x width."""
    top = int(rng.integers(0, max(height - crop_size[0], 0) + 1))
    left = int(rng.integers(0, max(width - crop_size[1], 0) + 1))
    return top, left


def _largest_class_share_ok(label_crop: np.ndarray, cat_max_ratio: float) -> bool:
    """mmseg's test: more than one non-ignore class, and the largest below cat_max_ratio."""
    counts = np.bincount(label_crop.ravel(), minlength=256)
    counts[IGNORE_INDEX] = 0
    present = counts[counts > 0]
    return present.size > 1 and present.max() / present.sum() < cat_max_ratio


def _cat_max_ratio_offset(
    label: np.ndarray,
    crop_size: tuple[int, int],
    rng: np.random.Generator,
    cat_max_ratio: float,
) -> tuple[int, int]:
    """Draw a crop offset; with cat_max_ratio < 1, re-draw (at most 10 times, as mmseg)
    while the crop shows one class only or its largest class exceeds the ratio.
    The last draw is kept when none passes."""
    height, width = label.shape
    top, left = _draw_crop_offset(height, width, crop_size, rng)
    if cat_max_ratio >= 1.0:
        return top, left
    for _ in range(CAT_MAX_RATIO_ATTEMPTS):
        label_crop = label[top : top + crop_size[0], left : left + crop_size[1]]
        if _largest_class_share_ok(label_crop, cat_max_ratio):
            break
        top, left = _draw_crop_offset(height, width, crop_size, rng)
    return top, left


def random_crop_offset(
    label: np.ndarray,
    crop_size: tuple[int, int],
    rng: np.random.Generator,
    cat_max_ratio: float = 1.0,
    required_class: int | None = None,
    min_class_pixels: int = 0,
    max_attempts: int = 10,
) -> tuple[int, int]:
    """The (top, left) of a random crop of crop_size = (h, w) in the (H,W) label's frame.

    cat_max_ratio: mmseg RandomCrop's rule (see `_cat_max_ratio_offset`); 1.0 disables it.
    required_class: for rare-class / class-aware sampling, the crop is re-drawn (each draw
    honouring cat_max_ratio) up to `max_attempts` times until it holds more than
    `min_class_pixels` pixels of that class. When no draw succeeds, the crop with the most
    pixels of the class is kept (DAFormer keeps the last one; the best one serves the
    sampler's intent better at no cost).
    """
    crop_height, crop_width = crop_size
    top, left = _cat_max_ratio_offset(label, crop_size, rng, cat_max_ratio)
    if required_class is not None:
        best_offset, best_pixels = (top, left), -1
        for attempt in range(max_attempts + 1):
            if attempt > 0:
                top, left = _cat_max_ratio_offset(label, crop_size, rng, cat_max_ratio)
            label_crop = label[top : top + crop_height, left : left + crop_width]
            class_pixels = int(np.count_nonzero(label_crop == required_class))
            if class_pixels > best_pixels:
                best_offset, best_pixels = (top, left), class_pixels
            if class_pixels > min_class_pixels:
                break
        top, left = best_offset
    return top, left


def crop(
    image: np.ndarray, label: np.ndarray, top: int, left: int, crop_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The crop_size = (h, w) window at (top, left), padded (image 0, label 255) where the
    image ends first. Returns image (h,w,3) uint8 and label (h,w) uint8."""
    crop_height, crop_width = crop_size
    image_crop = image[top : top + crop_height, left : left + crop_width]
    label_crop = label[top : top + crop_height, left : left + crop_width]
    return pad_to(image_crop, label_crop, crop_size)


def random_crop(
    image: np.ndarray,
    label: np.ndarray,
    crop_size: tuple[int, int],
    rng: np.random.Generator,
    cat_max_ratio: float = 1.0,
    required_class: int | None = None,
    min_class_pixels: int = 0,
    max_attempts: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Random crop of crop_size = (h, w), padded (image 0, label 255) where the image is smaller.

    The offset is `random_crop_offset`'s (same arguments). Returns image (h,w,3) uint8 and
    label (h,w) uint8.
    """
    top, left = random_crop_offset(
        label, crop_size, rng, cat_max_ratio, required_class, min_class_pixels, max_attempts
    )
    return crop(image, label, top, left, crop_size)


def draw_flip(rng: np.random.Generator, prob: float = 0.5) -> bool:
    """Whether to flip: one uniform draw from rng, always (so later draws do not shift)."""
    return bool(rng.random() < prob)


def random_flip(
    image: np.ndarray, label: np.ndarray, rng: np.random.Generator, prob: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal flip of both with probability `prob` (one uniform draw from rng, always)."""
    if draw_flip(rng, prob):
        return image[:, ::-1], label[:, ::-1]
    return image, label
