"""Confusion matrix and IoU by hand; single-process paths of the distributed helpers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from omuda.data.labels import SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES
from omuda.engine import distributed
from omuda.engine.metrics import ConfusionMatrix
from omuda.errors import OmudaError


def test_two_class_matrix_and_iou_by_hand():
    # label    pred        (label, pred) pairs: (0,0) (0,1) (1,1) (1,1)
    # 0 0      0 1         matrix [[1, 1],
    # 1 1      1 1                 [0, 2]]
    target = torch.tensor([[[0, 0], [1, 1]]])
    pred = torch.tensor([[[0, 1], [1, 1]]])
    confusion = ConfusionMatrix(num_classes=2)
    confusion.update(pred, target)

    assert confusion.matrix.tolist() == [[1, 1], [0, 2]]
    # IoU_0 = 1 / (2 + 1 - 1) = 1/2; IoU_1 = 2 / (2 + 3 - 2) = 2/3.
    assert confusion.iou().tolist() == pytest.approx([1 / 2, 2 / 3])
    assert confusion.mean_iou() == pytest.approx(7 / 12)
    assert confusion.pixel_accuracy() == pytest.approx(3 / 4)


def test_updates_accumulate_over_batches():
    confusion = ConfusionMatrix(num_classes=2)
    target = torch.tensor([[[0, 1]]])
    confusion.update(torch.tensor([[[0, 0]]]), target)
    confusion.update(torch.tensor([[[1, 1]]]), target)
    assert confusion.matrix.tolist() == [[1, 1], [1, 1]]
    confusion.reset()
    assert confusion.matrix.sum() == 0


def test_ignore_and_out_of_range_labels_are_excluded():
    target = torch.tensor([[[0, 255, 1, 7]]])  # 255 = ignore; 7 >= num_classes
    pred = torch.tensor([[[0, 1, 0, 1]]])
    confusion = ConfusionMatrix(num_classes=2)
    confusion.update(pred, target)
    assert confusion.matrix.tolist() == [[1, 0], [1, 0]]
    assert confusion.pixel_accuracy() == pytest.approx(1 / 2)


def test_absent_class_is_nan_and_left_out_of_the_mean():
    confusion = ConfusionMatrix(num_classes=3)
    confusion.update(torch.tensor([[0, 1]]), torch.tensor([[0, 1]]))
    iou = confusion.iou()
    assert iou[:2].tolist() == [1.0, 1.0]
    assert math.isnan(iou[2])
    assert confusion.mean_iou() == 1.0


def test_predicted_but_unlabelled_class_counts_with_iou_zero():
    confusion = ConfusionMatrix(num_classes=3)
    confusion.update(torch.tensor([[0, 2]]), torch.tensor([[0, 0]]))
    assert confusion.iou()[2] == 0.0
    assert confusion.mean_iou() == pytest.approx((1 / 2 + 0) / 2)


def test_synthia_subset_means():
    # One pixel per class, all right except one wall (3) pixel predicted as terrain (9):
    # IoU_wall = 0, IoU_terrain = 1 / 2, every other class 1.
    target = torch.arange(19).view(1, 1, 19)
    pred = target.clone()
    pred[0, 0, 3] = 9
    confusion = ConfusionMatrix(num_classes=19)
    confusion.update(pred, target)

    assert confusion.mean_iou() == pytest.approx((17 + 0 + 0.5) / 19)
    # 16 classes drop terrain, truck, train: wall (0) stays.
    assert confusion.mean_iou(SYNTHIA_16_CLASSES) == pytest.approx(15 / 16)
    # 13 classes also drop wall, fence, pole.
    assert confusion.mean_iou(SYNTHIA_13_CLASSES) == pytest.approx(1.0)


def test_empty_matrix_gives_nan_scores():
    confusion = ConfusionMatrix(num_classes=2)
    assert math.isnan(confusion.mean_iou())
    assert math.isnan(confusion.pixel_accuracy())


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        ConfusionMatrix(num_classes=2).update(torch.zeros(1, 2, 2).long(), torch.zeros(1, 2).long())


# --- distributed helpers, single process -------------------------------------------------


@pytest.fixture
def no_torchrun_env(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def test_init_distributed_without_torchrun_is_one_cpu_process(no_torchrun_env):
    info = distributed.init_distributed("cpu")
    assert info == distributed.DistInfo(0, 1, 0, torch.device("cpu"))
    assert not distributed.is_distributed()
    assert distributed.is_main_process()


def test_init_distributed_with_a_one_process_torchrun_env(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    info = distributed.init_distributed("cpu")
    assert (info.rank, info.world_size, info.local_rank) == (0, 1, 0)
    assert not distributed.is_distributed()  # one process needs no process group


def test_init_distributed_rejects_bad_preferences(no_torchrun_env, monkeypatch):
    with pytest.raises(OmudaError, match="unknown device"):
        distributed.init_distributed("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OmudaError, match="no CUDA device"):
        distributed.init_distributed("cuda")
    assert distributed.init_distributed("auto").device == torch.device("cpu")


def test_collectives_are_no_ops_in_one_process():
    values = torch.tensor([1.0, 2.0])
    assert distributed.all_reduce_sum_(values) is values
    assert values.tolist() == [1.0, 2.0]
    module = nn.Linear(2, 2)
    before = module.weight.clone()
    assert distributed.broadcast_module_(module) is module
    assert torch.equal(module.weight, before)
    distributed.barrier()
    distributed.cleanup()


def test_unwrap_strips_compile_and_data_parallel():
    module = nn.Linear(2, 2)
    assert distributed.unwrap(module) is module
    assert distributed.unwrap(torch.compile(module)) is module
    assert distributed.unwrap(torch.compile(nn.DataParallel(module))) is module


def test_reduce_across_ranks_in_a_one_rank_gloo_group(tmp_path):
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        confusion = ConfusionMatrix(num_classes=2)
        confusion.update(torch.tensor([[0, 1]]), torch.tensor([[0, 0]]))
        confusion.reduce_across_ranks()
        assert confusion.matrix.tolist() == [[1, 1], [0, 0]]
        assert distributed.is_distributed() and distributed.is_main_process()
        assert distributed.all_reduce_sum_(torch.tensor([3])).item() == 3
        distributed.barrier()
    finally:
        distributed.cleanup()
    assert not distributed.is_distributed()
