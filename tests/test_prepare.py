"""`prepare_dataset` on tiny fake GTA5 / SYNTHIA / Cityscapes trees and on the real sample."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omuda.data import io
from omuda.data.prepare import load_class_stats, prepare_dataset
from omuda.errors import OmudaError

GTA_LABEL_1 = [[7, 7, 26, 26], [0, 24, 33, 7]]  # train ids [[0,0,13,13],[255,11,18,0]]
GTA_LABEL_2 = [[8, 8, 8, 8], [26, 26, 0, 0]]  # train ids [[1,1,1,1],[13,13,255,255]]
FILE_1 = "labels/00001_labelTrainIds.png"
FILE_2 = "labels/00002_labelTrainIds.png"
EXPECTED_GTA_STATS = [
    {"0": 3, "11": 1, "13": 2, "18": 1, "file": FILE_1},
    {"1": 4, "13": 2, "file": FILE_2},
]
EXPECTED_GTA_SAMPLES_WITH_CLASS = {
    "0": [[FILE_1, 3]],
    "1": [[FILE_2, 4]],
    "11": [[FILE_1, 1]],
    "13": [[FILE_1, 2], [FILE_2, 2]],
    "18": [[FILE_1, 1]],
}


def _image(width: int = 4, height: int = 2) -> np.ndarray:
    return np.full((height, width, 3), 90, dtype=np.uint8)


def _write_palette_label(path: Path, ids: list[list[int]]) -> None:
    """A GTA5-style label: palette PNG whose indices are Cityscapes label ids."""
    array = np.asarray(ids, dtype=np.uint8)
    image = Image.fromarray(array, mode="L").convert("P")
    image.putpalette([(index * 7) % 256 for index in range(768)])
    image.putdata(array.ravel().tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _gta_tree(root: Path) -> Path:
    _write_palette_label(root / "labels" / "00001.png", GTA_LABEL_1)
    io.write_label(root / "labels" / "00002.png", np.asarray(GTA_LABEL_2, dtype=np.uint8))
    io.write_image(root / "images" / "00001.png", _image())
    io.write_image(root / "images" / "00002.png", _image())
    return root


def _read_json(path: Path) -> object:
    return json.loads(path.read_text())


def test_gta_two_images_exact_outputs(tmp_path):
    root = _gta_tree(tmp_path / "gta")
    report = prepare_dataset("gta", root, progress=False)
    assert (report.converted, report.skipped, report.problems) == (2, 0, [])
    assert report.summary() == "converted 2, skipped 0, 0 problems"
    train_ids = io.read_label(root / FILE_1)
    assert train_ids.dtype == np.uint8
    assert train_ids.tolist() == [[0, 0, 13, 13], [255, 11, 18, 0]]
    assert io.read_label(root / FILE_2).tolist() == [[1, 1, 1, 1], [13, 13, 255, 255]]
    assert _read_json(root / "sample_class_stats.json") == EXPECTED_GTA_STATS
    assert _read_json(root / "samples_with_class.json") == EXPECTED_GTA_SAMPLES_WITH_CLASS
    assert load_class_stats(root) == [
        {"file": FILE_1, "counts": {0: 3, 11: 1, 13: 2, 18: 1}},
        {"file": FILE_2, "counts": {1: 4, 13: 2}},
    ]


def test_second_run_skips_and_changes_nothing(tmp_path):
    root = _gta_tree(tmp_path / "gta")
    prepare_dataset("gta", root, progress=True)
    written = [root / FILE_1, root / FILE_2]
    mtimes = [path.stat().st_mtime_ns for path in written]
    stats_bytes = (root / "sample_class_stats.json").read_bytes()

    report = prepare_dataset("gta", root, progress=False)
    assert (report.converted, report.skipped, report.problems) == (0, 2, [])
    assert [path.stat().st_mtime_ns for path in written] == mtimes
    assert (root / "sample_class_stats.json").read_bytes() == stats_bytes
    assert _read_json(root / "samples_with_class.json") == EXPECTED_GTA_SAMPLES_WITH_CLASS
    # No *_labelTrainIds.png was taken as a source label.
    assert sorted(path.name for path in (root / "labels").iterdir()) == [
        "00001.png",
        "00001_labelTrainIds.png",
        "00002.png",
        "00002_labelTrainIds.png",
    ]

    # A source label newer than its train-id file is converted again.
    later = mtimes[1] + 10**9
    os.utime(root / "labels" / "00002.png", ns=(later, later))
    report = prepare_dataset("gta", root, progress=False)
    assert (report.converted, report.skipped) == (1, 1)


def test_out_dir_holds_json_with_root_relative_files(tmp_path):
    root = _gta_tree(tmp_path / "gta")
    prepare_dataset("gta", root, out_dir=tmp_path / "stats", progress=False)
    assert not (root / "sample_class_stats.json").exists()
    assert _read_json(tmp_path / "stats" / "sample_class_stats.json") == EXPECTED_GTA_STATS


def test_workers_give_the_same_json(tmp_path):
    serial_root = _gta_tree(tmp_path / "serial")
    parallel_root = _gta_tree(tmp_path / "parallel")
    io.write_label(parallel_root / "labels" / "00003.png", np.full((2, 4), 99, dtype=np.uint8))
    io.write_label(serial_root / "labels" / "00003.png", np.full((2, 4), 99, dtype=np.uint8))
    serial = prepare_dataset("gta", serial_root, workers=0, progress=False)
    parallel = prepare_dataset("gta", parallel_root, workers=2, progress=False)
    assert parallel.converted == serial.converted == 3
    assert [line.replace("parallel", "serial") for line in parallel.problems] == serial.problems
    for name in ("sample_class_stats.json", "samples_with_class.json"):
        assert (serial_root / name).read_bytes() == (parallel_root / name).read_bytes()


def test_bad_inputs_are_reported_and_the_rest_processed(tmp_path):
    root = _gta_tree(tmp_path / "gta")
    images, label_dir = root / "images", root / "labels"
    (images / "00002.png").write_bytes(b"\x89PNG garbage")  # corrupt image
    io.write_image(images / "00003.png", _image(width=5))  # size mismatch
    io.write_label(label_dir / "00003.png", np.full((2, 4), 7, dtype=np.uint8))
    io.write_image(images / "00004.png", _image())  # image without label
    io.write_label(label_dir / "00005.png", np.full((2, 4), 7, dtype=np.uint8))  # no image
    io.write_image(images / "00006.png", _image())
    io.write_label(label_dir / "00006.png", np.array([[7, 34, 40, 8]] * 2, dtype=np.uint8))
    io.write_image(images / "00007.png", _image())
    (label_dir / "00007.png").write_bytes(b"broken")  # corrupt label

    report = prepare_dataset("gta", root, progress=False)
    assert report.converted == 5  # 00001, 00002, 00003, 00005, 00006
    assert len(report.problems) == 6
    expected_fragments = [
        ("00002.png", "corrupt"),
        ("00003.png", "label size 4x2 differs from image size 5x2"),
        ("00004.png", "image without label"),
        ("00005.png", "label without image"),
        ("00006.png", "outside GTA5's range 0..33 (34, 40)"),
        ("00007.png", "corrupt"),
    ]
    for line, (name, fragment) in zip(report.problems, expected_fragments, strict=True):
        assert name in line and fragment in line, line
    assert io.read_label(label_dir / "00006_labelTrainIds.png").tolist() == [[0, 255, 255, 1]] * 2
    assert not (label_dir / "00007_labelTrainIds.png").exists()
    # Only the clean sample feeds the samplers.
    assert _read_json(root / "sample_class_stats.json") == EXPECTED_GTA_STATS[:1]

    # Problems stay reported (and excluded) when the labels are skipped on a rerun.
    rerun = prepare_dataset("gta", root, progress=False)
    assert (rerun.converted, rerun.skipped) == (0, 5)
    assert rerun.problems == report.problems
    assert _read_json(root / "sample_class_stats.json") == EXPECTED_GTA_STATS[:1]


def test_synthia_tree(tmp_path):
    root = tmp_path / "synthia"
    io.write_image(root / "RGB" / "0000000.png", _image(width=3))
    io.write_synthia_label(
        root / "GT" / "LABELS" / "0000000.png", np.array([[3, 4, 2], [21, 1, 0]])
    )
    io.write_image(root / "RGB" / "0000001.png", _image(width=3))
    io.write_synthia_label(
        root / "GT" / "LABELS" / "0000001.png", np.array([[8, 8, 23], [300, 8, 8]])
    )

    report = prepare_dataset("synthia", root, progress=False)
    assert report.converted == 2
    assert len(report.problems) == 1
    assert "0000001.png" in report.problems[0] and "(23, 300)" in report.problems[0]
    labels_dir = root / "GT" / "LABELS"
    train_ids = io.read_label(labels_dir / "0000000_labelTrainIds.png")
    assert train_ids.tolist() == [[0, 1, 2], [3, 10, 255]]
    assert io.read_label(labels_dir / "0000001_labelTrainIds.png").tolist() == [
        [13, 13, 255],
        [255, 13, 13],
    ]
    stats_file = "GT/LABELS/0000000_labelTrainIds.png"
    assert _read_json(root / "sample_class_stats.json") == [
        {"0": 1, "1": 1, "2": 1, "3": 1, "10": 1, "file": stats_file}
    ]


def test_cityscapes_tree_stats_cover_train_only(tmp_path):
    root = tmp_path / "cityscapes"
    for split, city, stem, ids in (
        ("train", "aachen", "aachen_000000_000019", [[7, 26], [24, 1]]),
        ("val", "frankfurt", "frankfurt_000000_000294", [[8, 8], [8, 8]]),
    ):
        io.write_image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", _image(2))
        label_dir = root / "gtFine" / split / city
        io.write_label(label_dir / f"{stem}_gtFine_labelIds.png", np.asarray(ids, dtype=np.uint8))
        io.write_label(label_dir / f"{stem}_gtFine_instanceIds.png", np.zeros((2, 2), np.uint16))

    report = prepare_dataset("cityscapes", root, progress=False)
    assert (report.converted, report.problems) == (2, [])
    train_file = "gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png"
    assert io.read_label(root / train_file).tolist() == [[0, 13], [11, 255]]
    val_file = "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelTrainIds.png"
    assert io.read_label(root / val_file).tolist() == [[1, 1], [1, 1]]
    assert _read_json(root / "sample_class_stats.json") == [
        {"0": 1, "11": 1, "13": 1, "file": train_file}
    ]
    assert _read_json(root / "samples_with_class.json") == {
        "0": [[train_file, 1]],
        "11": [[train_file, 1]],
        "13": [[train_file, 1]],
    }


def test_missing_folders_and_unknown_kind(tmp_path):
    with pytest.raises(
        OmudaError, match="dataset folder .*does_not_exist is missing; expected the GTA5 layout"
    ):
        prepare_dataset("gta", tmp_path / "does_not_exist", progress=False)
    (tmp_path / "synthia" / "RGB").mkdir(parents=True)
    with pytest.raises(OmudaError, match="LABELS is missing; expected the SYNTHIA layout"):
        prepare_dataset("synthia", tmp_path / "synthia", progress=False)
    with pytest.raises(OmudaError, match="folder .*leftImg8bit is missing"):
        prepare_dataset("cityscapes", tmp_path / "synthia", progress=False)
    with pytest.raises(OmudaError, match="valid kinds: cityscapes, gta, synthia"):
        prepare_dataset("kitti", tmp_path, progress=False)


def test_load_class_stats_reroots_daformer_paths(tmp_path):
    daformer_stats = [
        {"13": 5, "0": 2, "file": "/home/me/data/gta/labels/00001_labelTrainIds.png"},
        {"1": 7, "file": "data/cityscapes/gtFine/train/aachen/a_gtFine_labelTrainIds.png"},
        {"10": 1, "file": "/mnt/labels/synthia/GT/LABELS/0000001_labelTrainIds.png"},
        {"2": 3, "file": "C:\\data\\mylabels\\gta\\labels\\00002_labelTrainIds.png"},
    ]
    (tmp_path / "sample_class_stats.json").write_text(json.dumps(daformer_stats))
    assert load_class_stats(tmp_path) == [
        {"file": "labels/00001_labelTrainIds.png", "counts": {0: 2, 13: 5}},
        {"file": "gtFine/train/aachen/a_gtFine_labelTrainIds.png", "counts": {1: 7}},
        {"file": "GT/LABELS/0000001_labelTrainIds.png", "counts": {10: 1}},
        {"file": "labels/00002_labelTrainIds.png", "counts": {2: 3}},
    ]


@pytest.mark.parametrize(
    "content",
    [None, "{not json", '{"file": "x"}', '[{"3": 1}]', '[{"19": 1, "file": "labels/a.png"}]'],
)
def test_load_class_stats_rejects_missing_or_malformed(tmp_path, content):
    if content is not None:
        (tmp_path / "sample_class_stats.json").write_text(content)
    with pytest.raises(OmudaError, match="omuda prepare"):
        load_class_stats(tmp_path)


def test_real_cityscapes_sample_matches_shipped_train_ids(tmp_path, shared_dir):
    sample_root = shared_dir / "samples" / "cityscapes_val_256x128"
    root = tmp_path / "cityscapes"
    for source in sample_root.rglob("*.png"):
        if source.name.endswith("_labelTrainIds.png"):
            continue  # derive it ourselves; shared/ is read-only, so copy without modes
        target = root / source.relative_to(sample_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

    report = prepare_dataset("cityscapes", root, progress=False)
    assert (report.converted, report.problems) == (1, [])
    name = "frankfurt_000000_000294_gtFine_labelTrainIds.png"
    derived = io.read_label(root / "gtFine" / "val" / "frankfurt" / name)
    shipped = io.read_label(sample_root / "gtFine" / "val" / "frankfurt" / name)
    assert derived.shape == shipped.shape == (128, 256)
    assert int((derived != shipped).sum()) <= 100
    assert _read_json(root / "sample_class_stats.json") == []  # val only: no training samples


def test_unwritable_label_folder_is_reported(tmp_path, monkeypatch):
    root = _gta_tree(tmp_path / "gta")
    real_write_label = io.write_label

    def write_label_or_fail(path, label):
        if path.name.startswith("00002"):
            raise PermissionError(13, "Permission denied")
        real_write_label(path, label)

    monkeypatch.setattr(io, "write_label", write_label_or_fail)
    report = prepare_dataset("gta", root, progress=False)
    assert report.converted == 1
    assert len(report.problems) == 1
    assert "00002_labelTrainIds.png: cannot be written (Permission denied)" in report.problems[0]
    assert _read_json(root / "sample_class_stats.json") == EXPECTED_GTA_STATS[:1]
