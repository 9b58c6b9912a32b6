"""Evaluation: exact mIoU on a fake model and dataset, sliding window == whole image."""

from __future__ import annotations

import json
import math
from typing import NamedTuple

import pytest
import torch
from torch import Tensor, nn

from omuda.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from omuda.engine.evaluate import (
    EvalResult,
    _window_starts,
    comparison_table,
    evaluate,
    infer_logits,
)
from omuda.errors import OmudaError
from omuda.models import build_segmentor

NUM_CLASSES = 19
CLASS_STEP = 10  # a pixel of class c is stored as grey value c * CLASS_STEP


class FakeOutput(NamedTuple):
    logits: Tensor


class ClassFromPixelModel(nn.Module):
    """Reads the class stored in each pixel's grey value and returns its one-hot logits."""

    def __init__(self) -> None:
        super().__init__()
        self.modes_seen: list[bool] = []

    def forward(self, images: Tensor) -> FakeOutput:
        self.modes_seen.append(self.training)
        grey = (images[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255
        class_map = torch.round(grey / CLASS_STEP).long()
        one_hot = nn.functional.one_hot(class_map, NUM_CLASSES)
        return FakeOutput(one_hot.permute(0, 3, 1, 2).float())


def image_of(class_map: Tensor) -> Tensor:
    """(h,w) class ids -> (3,h,w) uint8 image the fake model decodes back."""
    return (class_map * CLASS_STEP).to(torch.uint8).expand(3, -1, -1).clone()


def fake_dataset() -> list[dict]:
    """Two 4x4 images with 8x8 labels; logits are upsampled 2x before the argmax, so a
    4-column half of the prediction covers 4 label columns exactly."""
    pred_first = torch.zeros(4, 4, dtype=torch.long)
    pred_first[:, 2:] = 1  # upsampled: columns 0-3 class 0, columns 4-7 class 1
    label_first = torch.zeros(8, 8, dtype=torch.long)
    label_first[:, 6:] = 1
    label_first[0] = 255  # the first row is ignored

    pred_second = torch.full((4, 4), 2, dtype=torch.long)
    label_second = torch.zeros(8, 8, dtype=torch.long)
    label_second[:4] = 2
    return [
        {"image": image_of(pred_first), "label": label_first, "name": "first"},
        {"image": image_of(pred_second), "label": label_second, "name": "second"},
    ]


def test_evaluate_gives_the_hand_computed_scores():
    # Image 1, 7 valid rows: (label 0, pred 0) 4, (0, 1) 2, (1, 1) 2 per row -> 28, 14, 14.
    # Image 2: (2, 2) 32 pixels, (0, 2) 32 pixels.
    # Matrix rows (label) [[28, 14, 32], [0, 14, 0], [0, 0, 32]]; columns sum to 28, 28, 64.
    # IoU_0 = 28 / (74 + 28 - 28), IoU_1 = 14 / (14 + 28 - 14), IoU_2 = 32 / (32 + 64 - 32).
    model = ClassFromPixelModel().train()
    result = evaluate(model, fake_dataset(), torch.device("cpu"), progress=False)

    expected_iou = [28 / 74, 1 / 2, 1 / 2]
    assert result.iou[:3] == pytest.approx(expected_iou)
    assert all(math.isnan(value) for value in result.iou[3:])
    assert result.miou == pytest.approx(sum(expected_iou) / 3)
    assert result.miou16 == pytest.approx(sum(expected_iou) / 3)
    assert result.miou13 == pytest.approx(sum(expected_iou) / 3)
    assert result.pixel_accuracy == pytest.approx(74 / 120)
    assert result.num_images == 2
    # Evaluated in eval mode, training mode restored afterwards.
    assert model.modes_seen == [False, False]
    assert model.training


def test_evaluate_scores_only_this_ranks_share():
    model = ClassFromPixelModel().eval()
    result = evaluate(
        model, fake_dataset(), torch.device("cpu"), progress=False, rank=1, world_size=2
    )
    assert result.num_images == 1  # the second image only
    assert result.iou[:3] == pytest.approx([0.0, math.nan, 1 / 2], nan_ok=True)
    assert not model.training


def test_evaluate_under_bf16_autocast_and_slide_mode():
    result = evaluate(
        ClassFromPixelModel(),
        fake_dataset(),
        torch.device("cpu"),
        mode="slide",
        crop_size=(3, 3),
        stride=(2, 2),
        amp_dtype=torch.bfloat16,
        progress=False,
    )
    assert result.miou == pytest.approx((28 / 74 + 1) / 3)


def test_window_starts_cover_the_image_and_end_at_its_border():
    assert _window_starts(37, 16, 10) == [0, 10, 20, 21]
    assert _window_starts(16, 16, 10) == [0]
    assert _window_starts(1024, 512, 341) == [0, 341, 512]


@pytest.mark.parametrize("size", [(37, 50), (10, 12), (16, 40)])
def test_slide_equals_whole_for_a_translation_equivariant_model(size):
    conv = nn.Conv2d(3, NUM_CLASSES, kernel_size=1)
    image = torch.randn(1, 3, *size)
    whole = infer_logits(conv, image, mode="whole")
    # (10, 12) is smaller than the crop: it is padded, and the padding cut off again.
    slide = infer_logits(conv, image, mode="slide", crop_size=(16, 16), stride=(10, 10))
    assert slide.shape == (1, NUM_CLASSES, *size)
    torch.testing.assert_close(slide, whole, rtol=1e-5, atol=1e-5)


def test_slide_averages_overlapping_windows():
    class WindowMean(nn.Module):
        """Each window's logits are its own input mean: overlaps must average."""

        def forward(self, images: Tensor) -> Tensor:
            return images.mean(dim=(1, 2, 3), keepdim=True).expand(-1, 2, -1, -1)

    image = torch.zeros(1, 3, 1, 6)
    image[..., 4:] = 6.0  # window starts [0, 2, 3] of width 3: means 0, 2, 4
    logits = infer_logits(WindowMean(), image, "slide", (1, 3), (1, 2), num_classes=2)
    expected = torch.tensor([0.0, 0.0, 1.0, 3.0, 3.0, 4.0])
    torch.testing.assert_close(logits[0, 0, 0], expected)


def test_infer_logits_rejects_bad_mode_and_class_count():
    image = torch.zeros(1, 3, 4, 4)
    with pytest.raises(OmudaError, match="inference mode"):
        infer_logits(nn.Conv2d(3, NUM_CLASSES, 1), image, mode="tiles")
    with pytest.raises(OmudaError, match="stride"):
        infer_logits(nn.Conv2d(3, NUM_CLASSES, 1), image, "slide", (2, 2), (3, 2))
    with pytest.raises(OmudaError, match="predicts 5 classes"):
        infer_logits(nn.Conv2d(3, 5, 1), image)


def test_result_table_and_json():
    iou = [0.5] * 19
    iou[9] = math.nan
    result = EvalResult(iou=iou, miou=0.5, miou16=0.5, miou13=0.5, pixel_accuracy=0.9, num_images=3)
    table = result.table(extra_columns={"source-only": [0.25] * 19}, title="OMUDA")
    lines = table.splitlines()
    assert "OMUDA" in lines[0] and "source-only" in lines[0]
    road = next(line for line in lines if line.startswith("road"))
    assert road.split()[1:] == ["50.00", "25.00"]
    terrain = next(line for line in lines if line.startswith("terrain"))
    assert terrain.split()[1:] == ["-", "25.00"]
    # the 16- and 13-class rows are named as the SYNTHIA protocols, and explained
    assert any(line.startswith("mIoU (16, SYNTHIA)") for line in lines)
    assert any(line.startswith("mIoU (13, SYNTHIA)") for line in lines)
    assert any("SYNTHIA->Cityscapes protocols" in line for line in lines)
    with pytest.raises(ValueError, match="expected 19"):
        result.table(extra_columns={"short": [0.1]})

    as_dict = result.to_dict()
    assert as_dict["iou"][9] is None and as_dict["num_images"] == 3
    assert as_dict["classes"][0] == "road" and as_dict["classes"][9] == "terrain"
    assert len(as_dict["classes"]) == len(as_dict["iou"]) == 19
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict


def test_evaluate_runs_the_real_segmentor():
    model = build_segmentor("mit_b0", decoder_channels=32)
    dataset = [
        {
            "image": torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8),
            "label": torch.randint(0, 19, (128, 192)),
            "name": "random",
        }
    ]
    result = evaluate(
        model, dataset, "cpu", mode="slide", crop_size=(64, 64), stride=(32, 32), progress=False
    )
    assert len(result.iou) == 19 and result.num_images == 1
    assert 0.0 <= result.miou <= 1.0


def test_comparison_table_reads_saved_results():
    omuda_run = EvalResult([0.5] * 19, 0.5, 0.5, 0.5, 0.9, 3).to_dict()
    source_only = dict(omuda_run, iou=[0.25] * 18 + [None])
    table = comparison_table({"source-only": source_only, "omuda": omuda_run})
    bicycle = next(line for line in table.splitlines() if line.startswith("bicycle"))
    assert bicycle.split()[1:] == ["-", "50.00"]
    miou = next(line for line in table.splitlines() if line.startswith("mIoU (19)"))
    assert miou.split()[2:] == ["25.00", "50.00"]
    with pytest.raises(OmudaError, match="no per-class"):
        comparison_table({"broken": {"miou": 0.5}})
