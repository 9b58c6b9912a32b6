"""Prediction files for image paths, with a tiny fake model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from omuda.data.io import read_image, read_label, write_image
from omuda.data.labels import PALETTE
from omuda.engine.predict import (
    class_borders,
    collect_images,
    inference_size,
    legend_image,
    overlay,
    predict_paths,
)
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
        out / "legend.png",
    ]
    train_ids = read_label(out / "frame_01_trainIds.png")
    assert train_ids.shape == (30, 40) and train_ids.dtype == np.uint8
    assert (train_ids[:, :18] == CAR).all() and (train_ids[:, 22:] == ROAD).all()

    colours = read_image(out / "frame_01_pred.png")
    assert tuple(colours[0, 0]) == PALETTE[CAR] and tuple(colours[0, -1]) == PALETTE[ROAD]
    blended = read_image(out / "frame_01_overlay.png")
    # Half image red (255, 0, 0), half car blue (0, 0, 142).
    assert tuple(blended[0, 0]) == (128, 0, 71)
    # The car/road border is white: the last car column, whose right neighbour is road.
    last_car = int((train_ids[0] == CAR).sum()) - 1
    assert tuple(blended[5, last_car]) == (255, 255, 255)
    assert tuple(blended[5, last_car - 1]) == (128, 0, 71)
    assert model.training  # mode restored


def test_folders_are_searched_recursively_for_png_and_jpeg(tmp_path):
    write_image(tmp_path / "in" / "a.png", half_red_image())
    write_image(tmp_path / "in" / "sub" / "b.JPG", half_red_image())
    write_image(tmp_path / "in" / "sub" / "deeper" / "c.jpeg", half_red_image())
    (tmp_path / "in" / "notes.txt").write_text("not an image")

    found = collect_images([tmp_path / "in"])
    assert [path.name for path in found] == ["a.png", "b.JPG", "c.jpeg"]

    written = predict_paths(RedIsCarModel(), [tmp_path / "in"], tmp_path / "out", "cpu", (20, 16))
    assert len(written) == 10  # 3 per image, one legend
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


def test_class_borders_and_a_grey_class_on_a_grey_image():
    train_ids = np.array([[2, 2, 0, 0], [2, 2, 0, 0], [2, 2, 2, 2]], dtype=np.uint8)
    expected = np.array(
        [[0, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0]], dtype=bool
    )  # right neighbour differs, or the one below
    np.testing.assert_array_equal(class_borders(train_ids), expected)

    # Building grey (70, 70, 70) over a (70, 70, 70) wall: the blend alone is invisible,
    # the border is not.
    image = np.full((3, 4, 3), 70, dtype=np.uint8)
    colours = np.array(PALETTE, dtype=np.uint8)[train_ids]
    blended = overlay(image, colours, 0.5, train_ids)
    assert tuple(blended[0, 0]) == (70, 70, 70) and tuple(blended[0, 1]) == (255, 255, 255)
    assert tuple(blended[0, 3]) == (99, 67, 99)  # road (128, 64, 128) half over 70


def test_inference_size_is_the_image_own_within_the_model_limits():
    assert inference_size(1024, 512, None) == (1024, 512)
    assert inference_size(640, 480, None) == (640, 480)
    assert inference_size(20, 10, None) == (64, 32)  # shorter side raised to 32
    assert inference_size(4096, 2048, None) == (2048, 1024)  # 2048 x 1024 pixels at most
    assert inference_size(4000, 2000, (256, 128)) == (256, 128)  # --scale: keep-ratio fit


def test_predict_keeps_the_image_size_by_default(tmp_path):
    """Without a scale the network sees each image at its own size."""
    seen = []

    class Recorder(RedIsCarModel):
        def forward(self, images: Tensor) -> Tensor:
            seen.append(tuple(images.shape[2:]))
            return super().forward(images)

    write_image(tmp_path / "big.png", half_red_image(96, 160))
    predict_paths(Recorder(), [tmp_path / "big.png"], tmp_path / "out", "cpu")
    predict_paths(Recorder(), [tmp_path / "big.png"], tmp_path / "small", "cpu", (40, 24))
    assert seen == [(96, 160), (24, 40)]


def test_legend_has_a_row_of_each_class_colour():
    legend = legend_image(row_height=20, width=200)
    assert legend.shape == (19 * 20, 200, 3) and legend.dtype == np.uint8
    for class_id, colour in enumerate(PALETTE):
        assert tuple(legend[class_id * 20 + 10, 10]) == colour  # the swatch
    names = legend[:, 48:]  # the text column holds dark (name) pixels on every row
    assert all((names[row * 20 : (row + 1) * 20] < 128).any() for row in range(19))


def test_an_input_named_like_the_legend_is_never_overwritten(tmp_path):
    write_image(tmp_path / "legend.png", half_red_image())
    before = (tmp_path / "legend.png").read_bytes()
    with pytest.raises(OmudaError, match="legend.png"):
        predict_paths(RedIsCarModel(), [tmp_path / "legend.png"], tmp_path, "cpu")
    assert (tmp_path / "legend.png").read_bytes() == before
