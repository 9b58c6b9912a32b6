"""The training step's own rules (the mechanisms have their own tests)."""

import torch
from torch import nn

from omuda.config import AdaptationConfig
from omuda.data.transforms import normalize
from omuda.engine.step import _masked_batchnorm, _normalised
from omuda.engine.step_draws import StepDraws


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


def test_masked_forward_in_train_mode_updates_running_statistics_like_mic():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    reference = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    reference.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 5, 5) + 3.0
    with _masked_batchnorm(model, "train"):
        out = model(x)
    torch.testing.assert_close(out, reference(x))
    torch.testing.assert_close(model[1].running_mean, reference[1].running_mean)


def test_default_draws_follow_the_config():
    cfg = AdaptationConfig(masking="block", mask_block_size=16, mask_ratio=0.5)
    draws = StepDraws(torch.Generator().manual_seed(0))
    y = torch.stack([torch.full((40, 40), 1), torch.full((40, 40), 2)])
    y[1, :5] = 255
    chosen = draws.mix_classes(y, cfg)  # batch set {1, 2, 255}: 2 per image
    assert chosen.sum(dim=1).tolist() == [2, 2]
    cfg.classmix_classes = "image"
    assert draws.mix_classes(y, cfg).sum(dim=1).tolist() == [1, 1]
    keep = draws.keep_mask(y, cfg, (11,))
    assert keep.shape == (2, 1, 40, 40)
    # round(40 / 16) = 2 blocks per side, 20 pixels each
    assert torch.equal(keep[..., :20, :20], keep[..., :1, :1].expand(-1, -1, 20, 20))
    params = draws.augmentation(2, torch.device("cpu"), cfg, one_call=True)
    assert torch.equal(params.order[0], params.order[1])
    assert bool(params.jitter[0] == params.jitter[1])


def test_images_may_arrive_normalised():
    pixels = torch.randint(0, 256, (1, 3, 4, 4), dtype=torch.uint8)
    normalised = normalize(pixels)
    assert torch.equal(_normalised(pixels), normalised)
    assert _normalised(normalised) is normalised
