"""Synthetic benchmark, writing: file layouts, raw label ids, README, determinism."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from omuda.data import io, labels
from omuda.data.synthetic import FRAME_SIZES, appearance, generate_benchmark, render_scene, scene
from omuda.data.synthetic.writer import ambiguous_target_frames, raw_label
from omuda.errors import OmudaError

COUNTS = {"num_source": 2, "num_target_train": 4, "num_target_val": 3, "num_synthia": 2}
# Per-split index in the seed sequence [seed, split, image] (package docstring).
SPLIT_INDEX = {"gta": 0, "train": 1, "val": 2, "synthia": 3}


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _expected(seed: int, domain: str, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, SPLIT_INDEX[split or domain], index])
    height, width = FRAME_SIZES[domain]
    return render_scene(rng, domain, 1.0, height, width)


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate_benchmark(out, seed=3, shift=1.0, progress=False, **COUNTS)
    return out


def test_layouts_follow_the_real_datasets(benchmark: Path) -> None:
    assert sorted(p.name for p in (benchmark / "gta" / "images").iterdir()) == [
        "00001.png",
        "00002.png",
    ]
    assert (benchmark / "gta" / "labels" / "00002.png").is_file()
    assert (benchmark / "synthia" / "RGB" / "0000002.png").is_file()
    assert (benchmark / "synthia" / "GT" / "LABELS" / "0000002.png").is_file()
    city = benchmark / "cityscapes"
    target_images = sorted(p.relative_to(city).as_posix() for p in city.rglob("*_leftImg8bit.png"))
    assert "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png" in target_images
    assert "leftImg8bit/train/aachen/aachen_000001_000019_leftImg8bit.png" in target_images
    assert "leftImg8bit/val/munster/munster_000000_000019_leftImg8bit.png" in target_images
    assert len(target_images) == 7
    train_labels = list((city / "gtFine" / "train").glob("*/*_gtFine_labelIds.png"))
    val_labels = list((city / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))
    assert (len(train_labels), len(val_labels)) == (4, 3)
    readme = (benchmark / "README.txt").read_text()
    assert "synthetic" in readme and "seed: 3" in readme and "shift: 1.0" in readme
    image = io.read_image(benchmark / "gta" / "images" / "00001.png")
    assert image.shape == (352, 640, 3)
    assert io.read_image(city / target_images[0]).shape == (256, 512, 3)


def test_raw_labels_map_back_to_the_rendered_train_ids(benchmark: Path) -> None:
    valid_cityscapes_ids = set(labels.CITYSCAPES_ID_TO_TRAIN_ID) | {0, 1}
    rgb, expected = _expected(3, "gta", "", 1)
    raw = io.read_label(benchmark / "gta" / "labels" / "00002.png")
    assert raw.dtype == np.uint8 and set(np.unique(raw).tolist()) <= valid_cityscapes_ids
    np.testing.assert_array_equal(labels.to_train_ids(raw, labels.GTA5_ID_TO_TRAIN_ID), expected)
    np.testing.assert_array_equal(io.read_image(benchmark / "gta" / "images" / "00002.png"), rgb)

    _, expected = _expected(3, "cityscapes", "val", 1)
    raw = io.read_label(
        benchmark
        / "cityscapes"
        / "gtFine"
        / "val"
        / "lindau"
        / "lindau_000000_000019_gtFine_labelIds.png"
    )
    assert set(np.unique(raw).tolist()) <= valid_cityscapes_ids
    np.testing.assert_array_equal(
        labels.to_train_ids(raw, labels.CITYSCAPES_ID_TO_TRAIN_ID), expected
    )
    # the only ignored region of a target frame is the ego vehicle (label id 1)
    np.testing.assert_array_equal(raw == 1, expected == labels.IGNORE_INDEX)


def test_synthia_labels_are_16_bit_with_the_class_in_red(benchmark: Path) -> None:
    for index in (1, 2):
        path = benchmark / "synthia" / "GT" / "LABELS" / f"{index:07d}.png"
        stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert stored.dtype == np.uint16 and stored.shape == (380, 640, 3)
        assert not stored[:, :, :2].any()  # OpenCV order is BGR: G and B are empty
        class_ids = io.read_synthia_label(path)
        _, expected = _expected(3, "synthia", "", index - 1)
        train_ids = labels.to_train_ids(class_ids, labels.SYNTHIA_ID_TO_TRAIN_ID)
        np.testing.assert_array_equal(train_ids, expected)
    for index in range(12):  # more frames than written: SYNTHIA never shows these classes
        _, train_ids = _expected(5, "synthia", "", index)
        assert not np.isin(train_ids, [9, 14, 16]).any()


def test_output_is_deterministic_whatever_the_workers(benchmark: Path, tmp_path: Path) -> None:
    parallel = tmp_path / "parallel"
    generate_benchmark(parallel, seed=3, shift=1.0, workers=2, progress=False, **COUNTS)
    assert _tree_bytes(parallel) == _tree_bytes(benchmark)
    # rewriting into the existing folder overwrites in place with the same bytes
    generate_benchmark(parallel, seed=3, shift=1.0, progress=False, **COUNTS)
    assert _tree_bytes(parallel) == _tree_bytes(benchmark)

    other = tmp_path / "other"
    generate_benchmark(other, seed=4, shift=1.0, progress=False, **COUNTS)
    reference, changed = _tree_bytes(benchmark), _tree_bytes(other)
    assert reference.keys() == changed.keys()
    images = [name for name in reference if name.endswith(".png")]
    assert all(reference[name] != changed[name] for name in images)


@pytest.mark.parametrize(
    "arguments",
    [
        {"num_source": -1},
        {"num_target_val": -2},
        {"shift": -0.1},
        {"workers": -1},
        {"shift": float("nan")},
        {"seed": -3},
    ],
)
def test_bad_arguments_are_rejected(tmp_path: Path, arguments: dict) -> None:
    with pytest.raises(OmudaError):
        generate_benchmark(tmp_path / "out", progress=False, **arguments)
    assert not (tmp_path / "out").exists()


def test_a_file_in_place_of_the_folder_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(OmudaError, match="is a file"):
        generate_benchmark(
            target,
            progress=False,
            num_source=1,
            num_target_train=0,
            num_target_val=0,
            num_synthia=0,
        )


def test_raw_ids_are_each_datasets_own() -> None:
    # road, person, bicycle, ignore
    train_ids = np.array([[0, 11], [18, 255]], dtype=np.uint8)
    gta = raw_label(train_ids, "gta")
    assert gta.dtype == np.uint8
    np.testing.assert_array_equal(gta, [[7, 24], [33, 0]])  # ignore -> unlabeled
    np.testing.assert_array_equal(raw_label(train_ids, "cityscapes"), [[7, 24], [33, 1]])
    synthia = raw_label(train_ids, "synthia")
    assert synthia.dtype == np.uint16
    np.testing.assert_array_equal(synthia, [[3, 10], [11, 0]])  # SYNTHIA class ids, void


def test_readme_states_the_frame_sizes(benchmark: Path) -> None:
    readme = (benchmark / "README.txt").read_text()
    for domain, (height, width) in FRAME_SIZES.items():
        assert f"{width}x{height}" in readme, domain


def test_ambiguous_target_frames_are_the_frames_rendered_ambiguous(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looks: list[appearance.Look] = []

    class RecordedLook(appearance.Look):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            looks.append(self)

    monkeypatch.setattr(scene, "Look", RecordedLook)
    rendered = []
    for index in range(8):
        rng = np.random.default_rng([4, SPLIT_INDEX["val"], index])
        render_scene(rng, "cityscapes", 1.35, 64, 128)
        rendered.append(looks[-1].ambiguous)
    listed = ambiguous_target_frames(4, "val", 8, shift=1.35)
    cities = ("frankfurt", "lindau", "munster")  # CITIES["val"], one per frame in turn
    expected = [(cities[i % 3], f"{cities[i % 3]}_{i // 3:06d}_000019") for i in range(8)]
    assert listed == [
        frame for frame, ambiguous in zip(expected, rendered, strict=True) if ambiguous
    ]
    assert 0 < len(listed) < 8  # both kinds occur, so the comparison means something
    assert ambiguous_target_frames(4, "val", 8, shift=0.0) == []  # no ambiguity at shift 0
