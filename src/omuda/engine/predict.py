"""Segment image files: colour prediction, train-id map and overlay PNGs per image, and one
colour legend per output folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from omuda.data.io import read_image, write_image, write_label
from omuda.data.labels import CLASS_NAMES, PALETTE, colorize
from omuda.data.transforms import keep_ratio_size, normalize, resize_image
from omuda.engine.evaluate import INFERENCE_MODES, infer_logits
from omuda.errors import OmudaError

OUTPUT_SUFFIXES = ("_pred", "_trainIds", "_overlay")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LEGEND_NAME = "legend.png"
# What the files are, for `omuda predict --help` and the docs.
OUTPUT_FILES = (
    ("<stem>_pred.png", "the predicted classes in the Cityscapes colours"),
    ("<stem>_trainIds.png", "the predicted train ids 0-18, one grey level per class"),
    ("<stem>_overlay.png", "the image blended with the colours, class borders in white"),
    (LEGEND_NAME, "each colour with its class name, once per output folder"),
)
# The network's input size by default: the image's own, within what a model can take.
# Below the backbone's coarsest stride (32) a side holds no feature cell: smaller images are
# enlarged; above Cityscapes' full 2048x1024 pixels memory grows quickly: larger ones shrink.
MIN_INFERENCE_SIDE = 32
MAX_INFERENCE_PIXELS = 2048 * 1024
BORDER_COLOUR = (255, 255, 255)


def _output_paths(out_dir: Path, image_path: Path) -> list[Path]:
    """The files written for one image: colours, train ids, overlay."""
    return [out_dir / f"{image_path.stem}{suffix}.png" for suffix in OUTPUT_SUFFIXES]


def collect_images(inputs: list[Path], out_dir: Path | None = None) -> list[Path]:
    """Image files named by `inputs`: files as given, folders searched recursively for
    *.png, *.jpg, *.jpeg (any case), each folder's files sorted. When `out_dir` lies inside
    a searched folder, its files (earlier predictions) are not inputs.

    Raises OmudaError for a missing path, a folder without images, or two images that
    would write the same output names (same stem).
    """
    images: list[Path] = []
    outputs = None if out_dir is None else Path(out_dir).resolve()
    for path in map(Path, inputs):
        if path.is_dir():
            below = outputs is not None and outputs.is_relative_to(path.resolve())
            skipped = outputs if below and outputs != path.resolve() else None
            found = sorted(
                file
                for file in path.rglob("*")
                if file.is_file()
                and file.suffix.lower() in IMAGE_SUFFIXES
                and not (skipped and file.resolve().is_relative_to(skipped))
            )
            if not found:
                raise OmudaError(f"no .png/.jpg/.jpeg images found under {path}")
            images += found
        elif path.is_file():
            images.append(path)
        else:
            raise OmudaError(f"input not found: {path}")

    unique: dict[Path, Path] = {}  # resolved path -> path as given; drops repeats
    by_stem: dict[str, Path] = {}
    for image in images:
        resolved = image.resolve()
        if resolved in unique:
            continue
        unique[resolved] = image
        if image.stem in by_stem:
            raise OmudaError(
                f"{by_stem[image.stem]} and {image} would write the same output files "
                f"({image.stem}_pred.png); predict them into separate folders"
            )
        by_stem[image.stem] = image
    return list(unique.values())


def overlay(
    image: np.ndarray, colours: np.ndarray, alpha: float, train_ids: np.ndarray | None = None
) -> np.ndarray:
    """Blend (H,W,3) uint8 image and colours: (1 - alpha) * image + alpha * colours, uint8.

    With train_ids (H,W), the borders between classes are drawn in white, so that a class
    whose colour is close to the image's (building grey on a grey wall) still shows.
    """
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours.astype(np.float32)
    result = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    if train_ids is not None:
        result[class_borders(train_ids)] = BORDER_COLOUR
    return result


def class_borders(train_ids: np.ndarray) -> np.ndarray:
    """(H,W) bool: pixels whose right or lower neighbour has another class."""
    borders = np.zeros(train_ids.shape, dtype=bool)
    borders[:, :-1] |= train_ids[:, :-1] != train_ids[:, 1:]
    borders[:-1, :] |= train_ids[:-1, :] != train_ids[1:, :]
    return borders


def legend_image(row_height: int = 20, width: int = 200) -> np.ndarray:
    """(19 * row_height, width, 3) uint8: one row per class, its colour and its name."""
    from PIL import Image, ImageDraw

    legend = Image.new("RGB", (width, row_height * len(CLASS_NAMES)), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    for index, (name, colour) in enumerate(zip(CLASS_NAMES, PALETTE, strict=True)):
        top = index * row_height
        draw.rectangle((2, top + 2, 2 * row_height, top + row_height - 3), fill=colour)
        draw.text((2 * row_height + 8, top + row_height // 4), f"{index} {name}", fill=(0, 0, 0))
    return np.asarray(legend)


def inference_size(width: int, height: int, scale: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) the network sees an image of width x height at: a keep-ratio fit
    into scale (width, height), or with scale None the image's own size, enlarged to a
    shorter side of MIN_INFERENCE_SIDE or shrunk to MAX_INFERENCE_PIXELS when outside."""
    if scale is not None:
        return keep_ratio_size(width, height, scale)
    factor = max(1.0, MIN_INFERENCE_SIDE / min(width, height))
    factor = min(factor, (MAX_INFERENCE_PIXELS / (width * height)) ** 0.5)
    return max(1, int(width * factor + 0.5)), max(1, int(height * factor + 0.5))


@torch.no_grad()
def predict_image(
    model: nn.Module,
    image: np.ndarray,
    device: torch.device,
    scale: tuple[int, int] | None = None,
    mode: str = "whole",
    crop_size: tuple[int, int] = (512, 512),
    stride: tuple[int, int] = (341, 341),
) -> np.ndarray:
    """Train ids (H,W) uint8 for one (H,W,3) uint8 RGB image.

    The network sees the image at `inference_size(W, H, scale)` (keeping its aspect ratio);
    the logits are resized bilinearly back to (H,W) before the argmax.
    """
    height, width = image.shape[:2]
    resized = resize_image(image, inference_size(width, height, scale))
    images_uint8 = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1)[None]
    images = normalize(images_uint8.to(device))
    logits = infer_logits(model, images, mode, crop_size, stride)
    logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()


def predict_paths(
    model: nn.Module,
    inputs: list[Path],
    out_dir: Path,
    device: torch.device,
    scale: tuple[int, int] | None = None,
    mode: str = "whole",
    crop_size: tuple[int, int] = (512, 512),
    stride: tuple[int, int] = (341, 341),
    overlay_alpha: float = 0.5,
    progress: bool = False,
) -> list[Path]:
    """Segment every image named by `inputs` (files or folders) and write, per image, into
    out_dir at the image's original size:

    - `<stem>_pred.png`: Cityscapes-palette colours,
    - `<stem>_trainIds.png`: uint8 train ids 0..18,
    - `<stem>_overlay.png`: (1 - overlay_alpha) * image + overlay_alpha * colours, the
      borders between classes in white,

    and `legend.png` (each colour with its class name) once. scale (width, height) is the
    keep-ratio inference size, None for each image's own (`inference_size`); mode,
    crop_size and stride as in `infer_logits`. Returns the written paths, three per image
    in the order above, then the legend. Raises OmudaError for a missing input or an
    unreadable image (naming it).
    """
    if not 0.0 <= overlay_alpha <= 1.0:
        raise OmudaError(f"overlay alpha must lie in [0, 1], got {overlay_alpha}")
    if mode not in INFERENCE_MODES:
        raise OmudaError(f"unknown inference mode {mode!r}; valid: {', '.join(INFERENCE_MODES)}")
    out_dir = Path(out_dir)
    image_paths = collect_images(inputs, out_dir)
    by_resolved = {image.resolve(): image for image in image_paths}
    legend_path = out_dir / LEGEND_NAME
    for image_path in image_paths:  # before anything is written
        for output in [*_output_paths(out_dir, image_path), legend_path]:
            if output.resolve() in by_resolved:
                raise OmudaError(
                    f"{output} would overwrite the input image {by_resolved[output.resolve()]};"
                    " choose an --out folder apart from the inputs"
                )
    device = torch.device(device)
    written: list[Path] = []
    was_training = model.training
    model.eval()
    try:
        for image_path in tqdm(image_paths, desc="predict", disable=not progress):
            image = read_image(image_path)
            train_ids = predict_image(model, image, device, scale, mode, crop_size, stride)
            colours = colorize(train_ids)
            pred_path, train_ids_path, overlay_path = _output_paths(out_dir, image_path)
            write_image(pred_path, colours)
            write_label(train_ids_path, train_ids)
            write_image(overlay_path, overlay(image, colours, overlay_alpha, train_ids))
            written += [pred_path, train_ids_path, overlay_path]
    finally:
        model.train(was_training)
    write_image(legend_path, legend_image())
    return [*written, legend_path]
