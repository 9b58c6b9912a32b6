"""Image and label I/O: round trips, 16-bit SYNTHIA labels, atomic and deterministic writes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from omuda.data import io
from omuda.errors import OmudaError


def test_image_round_trip_and_size(tmp_path):
    rgb = np.zeros((3, 5, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[2, 4] = (1, 2, 3)
    path = tmp_path / "nested" / "folder" / "image.png"
    io.write_image(path, rgb)
    np.testing.assert_array_equal(io.read_image(path), rgb)
    assert io.image_size(path) == (5, 3)
    assert io.verify_image(path) == (5, 3)
    # Pillow agrees that channel 0 is red: the file is RGB, not BGR.
    assert np.asarray(Image.open(path))[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_label_round_trip_keeps_dtype(tmp_path, dtype):
    label = np.array([[0, 7], [33, 255]], dtype=dtype)
    if dtype == np.uint16:
        label[0, 0] = 40000
    io.write_label(tmp_path / "label.png", label)
    read_back = io.read_label(tmp_path / "label.png")
    assert read_back.dtype == dtype
    np.testing.assert_array_equal(read_back, label)


def test_read_label_returns_palette_indices(tmp_path):
    # GTA5 labels are palette PNGs: the index, not the colour, is the label id.
    image = Image.new("P", (3, 1))
    image.putpalette([value % 256 for value in range(768)][::-1])
    image.putdata([7, 26, 33])
    image.save(tmp_path / "palette.png")
    assert io.read_label(tmp_path / "palette.png").tolist() == [[7, 26, 33]]


def test_read_label_rejects_colour(tmp_path):
    io.write_image(tmp_path / "colour.png", np.zeros((2, 2, 3), dtype=np.uint8))
    with pytest.raises(OmudaError, match="colour channels"):
        io.read_label(tmp_path / "colour.png")


def test_synthia_label_round_trip_r_channel_only(tmp_path):
    class_ids = np.array([[0, 1, 22], [255, 256, 65535]], dtype=np.int64)
    path = tmp_path / "GT" / "LABELS" / "0000000.png"
    io.write_synthia_label(path, class_ids)
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16 and stored.shape == (2, 3, 3)
    np.testing.assert_array_equal(stored[:, :, 2], class_ids)  # R, as OpenCV orders BGR
    assert not stored[:, :, :2].any()
    read_back = io.read_synthia_label(path)
    assert read_back.dtype == np.uint16
    np.testing.assert_array_equal(read_back, class_ids)


def test_read_synthia_label_takes_r_not_g_or_b(tmp_path):
    bgr = np.zeros((1, 2, 3), dtype=np.uint16)
    bgr[..., 0] = 1000  # B
    bgr[..., 1] = 2000  # G
    bgr[0, :, 2] = (3, 300)  # R
    cv2.imwrite(str(tmp_path / "label.png"), bgr)
    assert io.read_synthia_label(tmp_path / "label.png").tolist() == [[3, 300]]


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path):
    io.write_label(tmp_path / "a.png", np.ones((4, 4), dtype=np.uint8))
    io.write_label(tmp_path / "a.png", np.full((4, 4), 2, dtype=np.uint8))  # overwrite
    io.write_synthia_label(tmp_path / "b.png", np.ones((4, 4), dtype=np.int32))
    io.write_image(tmp_path / "c.png", np.zeros((4, 4, 3), dtype=np.uint8))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png", "b.png", "c.png"]
    assert io.read_label(tmp_path / "a.png").max() == 2


def test_failed_write_removes_temp_file(tmp_path, monkeypatch):
    def interrupted_replace(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        io.write_label(tmp_path / "a.png", np.ones((4, 4), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_png_bytes_are_deterministic(tmp_path):
    label = np.random.default_rng(0).integers(0, 19, (16, 16), dtype=np.uint8)
    io.write_label(tmp_path / "a.png", label)
    io.write_label(tmp_path / "b.png", label.copy())
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_missing_and_corrupt_files_name_the_path(tmp_path):
    missing = tmp_path / "missing.png"
    for reader in (io.read_image, io.read_label, io.read_synthia_label, io.image_size):
        with pytest.raises(OmudaError, match="missing.png"):
            reader(missing)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png at all")
    for reader in (io.read_image, io.read_label, io.read_synthia_label, io.image_size):
        with pytest.raises(OmudaError, match="corrupt.png"):
            reader(corrupt)


def test_verify_image_catches_truncation(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    io.write_image(tmp_path / "full.png", noise)
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert io.image_size(tmp_path / "cut.png") == (32, 32)  # the header alone survives
    with pytest.raises(OmudaError, match="cut.png"):
        io.verify_image(tmp_path / "cut.png")
    with pytest.raises(OmudaError, match="cut.png"):
        io.read_label(tmp_path / "cut.png")


def test_write_rejects_wrong_arrays(tmp_path):
    with pytest.raises(OmudaError, match="uint8 RGB"):
        io.write_image(tmp_path / "x.png", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(OmudaError, match="uint8 or uint16"):
        io.write_label(tmp_path / "x.png", np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(OmudaError, match="0..65535"):
        io.write_synthia_label(tmp_path / "x.png", np.full((2, 2), -1))
