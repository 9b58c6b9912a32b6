"""Prediction files for image paths, with a tiny fake model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from omuda.data.io import read_image, read_label, write_image
from omuda.data.labels import PALETTE
from omuda.engine.predict import collect_images, overlay, predict_paths
from omuda.errors import OmudaError

CAR, ROAD = 13, 0


class RedIsCarModel(nn.Module):
    """Logits for 19 classes: "car" where the red channel is above average, else "road"."""

    def forward(self, images: Tensor) -> Tensor:
        is_red = images[:, :1] > 0
        logits = torch.zeros(images.shape[0], 19, *images.shape[2:])
        logits[:, CAR : CAR + 1] = is_red.float()
        logits[:, ROAD : ROAD + 1] = (~is_red).float()
        return logits


def half_red_image(height: int = 30, width: int = 40) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 2, 0] = 255
    return image


def test_writes_colour_train_id_and_overlay_files_at_original_size(tmp_path):
    image = half_red_image()
    input_path = tmp_path / "in" / "frame_01.png"
    write_image(input_path, image)
    model = RedIsCarModel().train()

    # Keep-ratio 40x30 into (20, 16): the network sees 20x15.
    written = predict_paths(model, [input_path], tmp_path / "out", "cpu", scale=(20, 16))

    out = tmp_path / "out"
    assert written == [
        out / "frame_01_pred.png",
        out / "frame_01_trainIds.png",
        out / "frame_01_overlay.png",
    ]
    train_ids = read_label(out / "frame_01_trainIds.png")
    assert train_ids.shape == (30, 40) and train_ids.dtype == np.uint8
    assert (train_ids[:, :18] == CAR).all() and (train_ids[:, 22:] == ROAD).all()

    colours = read_image(out / "frame_01_pred.png")
    assert tuple(colours[0, 0]) == PALETTE[CAR] and tuple(colours[0, -1]) == PALETTE[ROAD]
    blended = read_image(out / "frame_01_overlay.png")
    # Half image red (255, 0, 0), half car blue (0, 0, 142).
    assert tuple(blended[0, 0]) == (128, 0, 71)
    assert model.training  # mode restored


def test_folders_are_searched_recursively_for_png_and_jpeg(tmp_path):
    write_image(tmp_path / "in" / "a.png", half_red_image())
    write_image(tmp_path / "in" / "sub" / "b.JPG", half_red_image())
    write_image(tmp_path / "in" / "sub" / "deeper" / "c.jpeg", half_red_image())
    (tmp_path / "in" / "notes.txt").write_text("not an image")

    found = collect_images([tmp_path / "in"])
    assert [path.name for path in found] == ["a.png", "b.JPG", "c.jpeg"]

    written = predict_paths(RedIsCarModel(), [tmp_path / "in"], tmp_path / "out", "cpu", (20, 16))
    assert len(written) == 9
    assert all(path.is_file() for path in written)


def test_slide_mode_writes_the_same_prediction(tmp_path):
    write_image(tmp_path / "frame.png", half_red_image())
    predict_paths(RedIsCarModel(), [tmp_path / "frame.png"], tmp_path / "whole", "cpu", (20, 16))
    predict_paths(
        RedIsCarModel(),
        [tmp_path / "frame.png"],
        tmp_path / "slide",
        "cpu",
        (20, 16),
        mode="slide",
        crop_size=(8, 8),
        stride=(5, 5),
    )
    np.testing.assert_array_equal(
        read_label(tmp_path / "whole" / "frame_trainIds.png"),
        read_label(tmp_path / "slide" / "frame_trainIds.png"),
    )


def test_missing_input_is_an_error(tmp_path):
    with pytest.raises(OmudaError, match="input not found"):
        predict_paths(RedIsCarModel(), [tmp_path / "absent.png"], tmp_path / "out", "cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OmudaError, match="no .png"):
        predict_paths(RedIsCarModel(), [tmp_path / "empty"], tmp_path / "out", "cpu")


def test_corrupt_image_is_an_error_naming_it(tmp_path):
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(OmudaError, match="broken.png"):
        predict_paths(RedIsCarModel(), [corrupt], tmp_path / "out", "cpu")


def test_same_stem_twice_is_an_error_and_repeats_are_dropped(tmp_path):
    write_image(tmp_path / "a" / "frame.png", half_red_image())
    write_image(tmp_path / "b" / "frame.jpg", half_red_image())
    repeated = [tmp_path / "a" / "frame.png", tmp_path / "a" / ".." / "a" / "frame.png"]
    assert collect_images(repeated) == [tmp_path / "a" / "frame.png"]
    with pytest.raises(OmudaError, match="same output files"):
        collect_images([tmp_path / "a", tmp_path / "b"])


def test_overlay_blend_and_alpha_check(tmp_path):
    image = np.full((1, 1, 3), 200, dtype=np.uint8)
    colours = np.zeros((1, 1, 3), dtype=np.uint8)
    assert overlay(image, colours, 0.25)[0, 0].tolist() == [150, 150, 150]
    with pytest.raises(OmudaError, match="alpha"):
        predict_paths(RedIsCarModel(), [Path("x.png")], tmp_path, "cpu", overlay_alpha=1.5)
