"""The training step's own rules (the mechanisms have their own tests)."""

import torch
from torch import nn

from omuda.engine.step import _masked_batchnorm


def test_masked_forward_leaves_batchnorm_running_statistics_alone():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    before = model[1].running_mean.clone()
    x = torch.randn(2, 3, 5, 5) + 3.0
    with _masked_batchnorm(model, "batch"):
        out = model(x)
    assert torch.equal(model[1].running_mean, before)
    assert model[1].momentum == 0.1  # restored
    # still normalised with the batch's own statistics (train-mode behaviour)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)
    model(x)
    assert not torch.equal(model[1].running_mean, before)


def test_masked_forward_can_normalise_with_running_statistics():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    model(torch.randn(4, 3, 5, 5))  # some running statistics
    before = model[1].running_mean.clone()
    x = (torch.randn(2, 3, 5, 5) + 3.0).requires_grad_()
    with _masked_batchnorm(model, "running"):
        out = model(x)
    expected = model.eval()(x)
    model.train()
    torch.testing.assert_close(out, expected)
    assert torch.equal(model[1].running_mean, before)
    assert model[1].training and model[1].momentum == 0.1
    out.sum().backward()
    assert x.grad is not None and model[0].weight.grad is not None
