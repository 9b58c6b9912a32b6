import pytest
import torch
from torch import nn

from omuda.engine.optim import build_optimizer, lr_factor, parameter_groups, set_learning_rate


class TinySegmentor(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.LayerNorm(2))
        self.decode_head = nn.Sequential(nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2))


def test_groups_follow_daformers_custom_keys():
    # mmcv matches "head" (lr x10, decay) before "norm" (no decay): the head's BatchNorm is
    # decayed, the backbone's norms are not.
    model = TinySegmentor()
    groups = {g["name"]: g for g in parameter_groups(model, 1e-4, 0.01, 10.0)}
    assert set(groups) == {"backbone", "backbone_no_decay", "head"}
    assert groups["head"]["lr"] == pytest.approx(1e-3) and groups["head"]["weight_decay"] == 0.01
    head_ids = {id(p) for p in model.decode_head.parameters()}
    assert {id(p) for p in groups["head"]["params"]} == head_ids
    assert len(groups["backbone_no_decay"]["params"]) == 4
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0


def test_groups_head_lr_and_no_decay_on_all_norms():
    groups = {
        g["name"]: g
        for g in parameter_groups(TinySegmentor(), 1e-4, 0.01, 10.0, head_norm_decay=False)
    }
    assert set(groups) == {"backbone", "backbone_no_decay", "head", "head_no_decay"}
    assert groups["backbone"]["lr"] == pytest.approx(1e-4)
    assert groups["head"]["lr"] == pytest.approx(1e-3)
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0
    assert groups["head"]["weight_decay"] == 0.01
    # conv weight+bias in the backbone; BN (2) + LN (2) parameters without decay
    assert len(groups["backbone"]["params"]) == 2
    assert len(groups["backbone_no_decay"]["params"]) == 4


def test_warmup_then_poly_by_hand():
    # mmcv: during warmup factor = poly * (1 - (1 - it/W) * (1 - ratio))
    assert lr_factor(0, 100, 10, 1e-6, 1.0) == pytest.approx(1e-6)
    assert lr_factor(5, 100, 10, 1e-6, 1.0) == pytest.approx(0.95 * (1 - 0.5 * (1 - 1e-6)))
    assert lr_factor(10, 100, 10, 1e-6, 1.0) == pytest.approx(0.9)
    assert lr_factor(50, 100, 10, 1e-6, 1.0) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, 1e-6, 1.0) == 0.0


def test_set_learning_rate_scales_base_lr():
    optimizer = build_optimizer(TinySegmentor(), 1e-4, 0.01, 10.0, (0.9, 0.999))
    set_learning_rate(optimizer, 0.5)
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx([5e-5, 5e-5, 5e-4])
    assert isinstance(optimizer, torch.optim.AdamW)
