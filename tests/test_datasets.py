"""Datasets over tiny prepared trees: pair builders, items, determinism, worker loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from omuda.data import io
from omuda.data.datasets import (
    SampleRequest,
    SegmentationDataset,
    cityscapes_pairs,
    class_pixel_counts,
    collate,
    gta_pairs,
    synthia_pairs,
)
from omuda.data.prepare import load_class_stats, prepare_dataset
from omuda.data.sampling import TargetSampler
from omuda.errors import OmudaError

# Every frame is 40x24 (width x height); scale (20, 12) halves it, crops are 8x8.
WIDTH, HEIGHT = 40, 24
SCALE = (20, 12)
CROP = (8, 8)


def _frame(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image and a label: road (0) on the left, car (13) in a block, sky (10) above."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    label = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    label[:8] = 10
    label[12:20, 24 + seed : 32 + seed] = 13
    label[-2:, -2:] = 255
    return image, label


def _stats_entry(label: np.ndarray, file: str) -> dict:
    classes, counts = np.unique(label[label != 255], return_counts=True)
    entry: dict = {str(int(c)): int(n) for c, n in zip(classes, counts, strict=True)}
    entry["file"] = file
    return entry


def _gta_tree(root: Path, stems: list[str], usable: list[str] | None) -> Path:
    """Images and train-id labels; a stats file listing `usable` stems unless None."""
    entries = []
    for number, stem in enumerate(stems):
        image, label = _frame(number)
        io.write_image(root / "images" / f"{stem}.png", image)
        io.write_label(root / "labels" / f"{stem}_labelTrainIds.png", label)
        if usable is not None and stem in usable:
            entries.append(_stats_entry(label, f"labels/{stem}_labelTrainIds.png"))
    if usable is not None:
        (root / "sample_class_stats.json").write_text(json.dumps(entries))
    return root


@pytest.fixture
def gta_root(tmp_path: Path) -> Path:
    # 00002 is an unusable frame: prepare left it out of the stats.
    return _gta_tree(tmp_path / "gta", ["00001", "00002", "00003"], ["00001", "00003"])


def _train_dataset(root: Path, **options: object) -> SegmentationDataset:
    return SegmentationDataset(gta_pairs(root), scale=SCALE, crop_size=CROP, name="gta", **options)


def test_gta_pairs_follow_the_stats_and_skip_unusable_frames(gta_root):
    pairs = gta_pairs(gta_root)
    assert [(image.name, label.name) for image, label in pairs] == [
        ("00001.png", "00001_labelTrainIds.png"),
        ("00003.png", "00003_labelTrainIds.png"),
    ]
    (gta_root / "sample_class_stats.json").unlink()
    assert [image.stem for image, _ in gta_pairs(gta_root)] == ["00001", "00002", "00003"]


def test_pair_builders_explain_missing_data(tmp_path):
    with pytest.raises(OmudaError, match="omuda synth") as error:
        gta_pairs(tmp_path / "nowhere")
    assert "nowhere" in str(error.value)
    root = tmp_path / "raw"
    io.write_image(root / "images" / "00001.png", _frame(0)[0])
    io.write_label(root / "labels" / "00001.png", _frame(0)[1])  # raw ids, never prepared
    with pytest.raises(OmudaError, match="omuda prepare gta"):
        gta_pairs(root)
    (root / "images" / "00001.png").unlink()
    with pytest.raises(OmudaError, match="no samples found"):
        gta_pairs(root)


def test_synthia_and_cityscapes_pairs(tmp_path):
    image, label = _frame(0)
    synthia = tmp_path / "synthia"
    for stem in ("0000002", "0000001"):
        io.write_image(synthia / "RGB" / f"{stem}.png", image)
        io.write_label(synthia / "GT" / "LABELS" / f"{stem}_labelTrainIds.png", label)
    assert [label.name for _, label in synthia_pairs(synthia)] == [
        "0000001_labelTrainIds.png",
        "0000002_labelTrainIds.png",
    ]

    cityscapes = tmp_path / "cityscapes"
    for city, stem in (("zurich", "zurich_000000_000019"), ("aachen", "aachen_000001_000019")):
        io.write_image(cityscapes / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png", image)
        label_path = cityscapes / "gtFine" / "val" / city / f"{stem}_gtFine_labelTrainIds.png"
        io.write_label(label_path, label)
    pairs = cityscapes_pairs(cityscapes, "val")
    assert [label.name for _, label in pairs] == [
        "aachen_000001_000019_gtFine_labelTrainIds.png",
        "zurich_000000_000019_gtFine_labelTrainIds.png",
    ]
    assert pairs[0][0].name == "aachen_000001_000019_leftImg8bit.png"
    with pytest.raises(OmudaError, match="train"):
        cityscapes_pairs(cityscapes, "train")


def test_pairs_and_class_pixels_after_prepare(tmp_path):
    # Raw GTA5 label ids: 7 = road, 26 = car, 23 = sky; prepare writes the train-id files.
    root = tmp_path / "gta"
    for stem, car_pixels in (("00001", 4), ("00002", 0)):
        raw = np.full((4, 6), 7, dtype=np.uint8)
        raw[0] = 23
        raw[1, :car_pixels] = 26
        io.write_image(root / "images" / f"{stem}.png", np.zeros((4, 6, 3), dtype=np.uint8))
        io.write_label(root / "labels" / f"{stem}.png", raw)
    prepare_dataset("gta", root, progress=False)
    pairs = gta_pairs(root)
    class_pixels = class_pixel_counts(load_class_stats(root), pairs, root)
    assert class_pixels.shape == (2, 19) and class_pixels.dtype == np.int64
    np.testing.assert_array_equal(class_pixels[:, [0, 10, 13]], [[14, 6, 4], [18, 6, 0]])
    # Rows follow the pairs' order, not the stats file's.
    reversed_pixels = class_pixel_counts(load_class_stats(root), pairs[::-1], root)
    np.testing.assert_array_equal(reversed_pixels, class_pixels[::-1])


def test_training_item_is_a_function_of_its_request(gta_root):
    request = SampleRequest(index=1, required_class=None, seed=1234)
    item = _train_dataset(gta_root)[request]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, *CROP)
    assert item["label"].dtype == torch.int64 and item["label"].shape == CROP
    assert item["name"] == "00003"
    again = _train_dataset(gta_root)[request]  # a fresh dataset object, as in a new worker
    assert torch.equal(item["image"], again["image"]) and torch.equal(item["label"], again["label"])
    other_seeds = [_train_dataset(gta_root)[SampleRequest(1, None, seed)] for seed in range(5)]
    assert any(not torch.equal(item["image"], other["image"]) for other in other_seeds)


def test_training_crop_holds_the_required_class(gta_root):
    # After the 2x downscale the car block is 4x4 = 16 pixels; ask for more than 8 of them.
    dataset = _train_dataset(gta_root, min_class_pixels=8)
    for seed in range(10):
        label = dataset[SampleRequest(index=0, required_class=13, seed=seed)]["label"]
        assert int((label == 13).sum()) > 8


def test_eval_item_keeps_the_full_size_label(gta_root):
    dataset = SegmentationDataset(gta_pairs(gta_root), scale=SCALE, crop_size=None)
    item = dataset[0]
    assert item["image"].shape == (3, SCALE[1], SCALE[0])
    assert item["label"].shape == (HEIGHT, WIDTH)
    _, label = _frame(0)
    np.testing.assert_array_equal(item["label"].numpy(), label)
    batch = collate([dataset[0], dataset[1]])
    assert batch["image"].shape == (2, 3, SCALE[1], SCALE[0])
    assert batch["label"].shape == (2, HEIGHT, WIDTH)
    assert batch["name"] == ["00001", "00003"]


def test_loading_with_two_workers_gives_the_same_batches(gta_root):
    dataset = _train_dataset(gta_root)
    sampler = TargetSampler(len(dataset), seed=0)
    loader = DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=2, collate_fn=collate)
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == 2:
            break
    requests = [sampler.draw(k) for k in range(4)]
    expected = collate([dataset[request] for request in requests])
    assert torch.equal(torch.cat([b["image"] for b in batches]), expected["image"])
    assert torch.equal(torch.cat([b["label"] for b in batches]), expected["label"])


def test_train_id_labels_must_be_8_bit(tmp_path):
    root = _gta_tree(tmp_path / "gta", ["00001"], None)
    io.write_label(root / "labels" / "00001_labelTrainIds.png", np.zeros((4, 4), np.uint16))
    with pytest.raises(OmudaError, match="omuda prepare"):
        _train_dataset(root)[0]


def test_pre_resized_copy_gives_identical_items(gta_root):
    from omuda.data.resized import find_resized_copy, write_resized_copy

    pairs = gta_pairs(gta_root)
    assert find_resized_copy(gta_root, SCALE, pairs) == (None, "")
    report = write_resized_copy(gta_root, pairs, SCALE, progress=False)
    assert report.written == 2 and not report.problems
    copy, _ = find_resized_copy(gta_root, SCALE, pairs)
    assert copy == gta_root / "resized_20x12"
    assert find_resized_copy(gta_root, (12, 20), pairs)[0] == copy  # W and H swapped: same
    assert find_resized_copy(gta_root, (40, 24), pairs)[0] is None  # another scale: no copy
    assert io.read_image(copy / "images/00001.png").shape == (SCALE[1], SCALE[0], 3)

    plain = [_train_dataset(gta_root)[SampleRequest(i % 2, 13, seed=i)] for i in range(4)]
    evaluation = SegmentationDataset(pairs, scale=SCALE, crop_size=None)[0]
    # From here on only the copy holds the images: the dataset must read it.
    for image, _ in pairs:
        image.write_bytes(b"gone")
    resized = _train_dataset(gta_root, resized_copy=(gta_root, copy))
    for seed, item in enumerate(plain):
        again = resized[SampleRequest(seed % 2, 13, seed=seed)]
        assert torch.equal(item["image"], again["image"]) and torch.equal(
            item["label"], again["label"]
        )
        assert item["name"] == again["name"]
    # Evaluation reads the resized image but the full-size label.
    from_copy = SegmentationDataset(
        pairs, scale=SCALE, crop_size=None, resized_copy=(gta_root, copy)
    )[0]
    assert torch.equal(from_copy["image"], evaluation["image"])
    assert from_copy["label"].shape == (HEIGHT, WIDTH)
    # The sources changed after the copy was written: it is stale and not used.
    copy, why_not = find_resized_copy(gta_root, SCALE, pairs)
    assert copy is None and "older than its sources" in why_not


def test_failed_resize_leaves_no_usable_copy(gta_root):
    from omuda.data.resized import find_resized_copy, write_resized_copy

    (gta_root / "images/00003.png").write_bytes(b"not a png")
    report = write_resized_copy(gta_root, gta_pairs(gta_root), SCALE, progress=False)
    assert report.written == 1 and "00003.png" in report.problems[0]
    assert find_resized_copy(gta_root, SCALE, gta_pairs(gta_root)) == (None, "")


@pytest.mark.parametrize("crop", [(16, 24), (40, 30)])
def test_training_items_say_where_their_crop_lies(tmp_path, crop):
    """An image whose pixels encode their own row and column: each item's window and flip
    must point at exactly the pixels it holds (the second crop is taller than the image)."""
    height, width = 30, 60
    rows, columns = np.mgrid[0:height, 0:width]
    image = np.stack([rows, columns, np.full_like(rows, 7)], axis=-1).astype(np.uint8)
    io.write_image(tmp_path / "images" / "0.png", image)
    io.write_label(tmp_path / "labels" / "0_labelTrainIds.png", np.zeros((height, width), np.uint8))
    pairs = [(tmp_path / "images" / "0.png", tmp_path / "labels" / "0_labelTrainIds.png")]
    dataset = SegmentationDataset(pairs, scale=(width, height), crop_size=crop, cat_max_ratio=1.0)
    flips = set()
    for seed in range(12):
        item = dataset[SampleRequest(0, None, seed)]
        top, left, bottom, right = item["window"].tolist()
        assert item["window"].dtype == torch.float32
        assert (bottom - top) * height == pytest.approx(crop[0])
        assert (right - left) * width == pytest.approx(crop[1])
        first_row, first_column, _ = item["image"][:, 0, 0].tolist()
        flipped = bool(item["flipped"])
        flips.add(flipped)
        assert first_row == round(top * height)
        # flipped: the crop's first column shows its last (unpadded) image column
        last = min(round(right * width), width) - 1
        assert first_column == (last if flipped else round(left * width))
    assert flips == {False, True}
    batch = collate([dataset[SampleRequest(0, None, seed)] for seed in range(3)])
    assert batch["window"].shape == (3, 4) and batch["flipped"].dtype == torch.bool
    assert "window" not in SegmentationDataset(pairs, scale=(width, height), crop_size=None)[0]
