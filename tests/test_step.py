"""The training step's own rules (the mechanisms have their own tests)."""

import torch
from torch import nn

from omuda.engine.step import _frozen_batchnorm_statistics


def test_masked_forward_leaves_batchnorm_running_statistics_alone():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    before = model[1].running_mean.clone()
    x = torch.randn(2, 3, 5, 5) + 3.0
    with _frozen_batchnorm_statistics(model):
        out = model(x)
    assert torch.equal(model[1].running_mean, before)
    assert model[1].momentum == 0.1  # restored
    # still normalised with the batch's own statistics (train-mode behaviour)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)
    model(x)
    assert not torch.equal(model[1].running_mean, before)
