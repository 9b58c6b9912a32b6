"""The training step's own rules (the mechanisms have their own tests)."""

import contextlib
from pathlib import Path

import pytest
import torch
from torch import nn

from omuda.config import AdaptationConfig, load_config
from omuda.data.transforms import normalize
from omuda.engine.builders import build_training_models
from omuda.engine.gradient_ledger import GradientLedger, shared_parameters
from omuda.engine.step import StepState, train_step
from omuda.engine.step_draws import StepDraws
from omuda.engine.step_terms import masked_batchnorm, normalised


def test_masked_forward_leaves_batchnorm_running_statistics_alone():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    before = model[1].running_mean.clone()
    x = torch.randn(2, 3, 5, 5) + 3.0
    with masked_batchnorm(model, "batch"):
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
    with masked_batchnorm(model, "running"):
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
    with masked_batchnorm(model, "train"):
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
    expected = normalize(pixels)
    assert torch.equal(normalised(pixels), expected)
    assert normalised(expected) is expected


REPO = Path(__file__).resolve().parents[1]
TINY_STEP = (
    "model.backbone=mit_b0",
    "model.pretrained=null",
    "model.decoder_channels=16",
    "data.crop_size=[64,64]",
    "adaptation.pseudo_ignore_top=2",
    "adaptation.pseudo_ignore_bottom=8",
    "adaptation.cam_fine_block=4",
    "adaptation.cam_coarse_block=8",
    "adaptation.mask_block_size=8",
)


def tiny_step(config: str, *overrides: str, seed: int = 0):
    """Config, models, state and a (source, target) batch for `train_step` at 64x64."""
    cfg = load_config(REPO / "configs" / config, [*TINY_STEP, *overrides])
    batch = cfg.data.batch_size
    torch.manual_seed(seed)
    models = build_training_models(cfg, torch.device("cpu"))
    generator = torch.Generator().manual_seed(seed)
    state = StepState.initial(generator, cfg.model.num_classes, torch.device("cpu"))
    images = torch.randint(0, 256, (2 * batch, 3, 64, 64), dtype=torch.uint8, generator=generator)
    labels = torch.zeros(batch, 64, 64, dtype=torch.long)  # road ...
    labels[:, :, :32] = 13  # ... and a car on the left half: thing cells for FD / FDM
    labels[:, :8] = 255
    source = {"image": images[:batch], "label": labels}
    return cfg, models, state, source, {"image": images[batch:]}


def run_step(cfg, models, state, source, target, ledger=True, **kwargs):
    student = models.student.train()
    return train_step(
        source,
        target,
        student,
        models.teacher,
        models.imagenet,
        models.optimizer,
        state,
        cfg.adaptation,
        cfg.data.thing_classes,
        contextlib.nullcontext,
        lambda: None,
        gradient_ledger=GradientLedger(shared_parameters(student)) if ledger else None,
        **kwargs,
    )


@pytest.mark.parametrize("samples", ["cells", "images"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_fdm_readings_act_on_a_batch_of_three_and_every_term_has_a_gradient_share(
    samples, reduction
):
    cfg, models, state, source, target = tiny_step(
        "gta2cs/omuda.yaml",
        f"adaptation.kd_samples={samples}",
        f"adaptation.kd_reduction={reduction}",
        "adaptation.kd_lambda=1.0",
        "adaptation.pseudo_threshold=0.0",
    )
    assert cfg.data.batch_size == 3  # the paper's batch
    state.iteration = 5  # an ImageNet model and a teacher that differ from the student
    with torch.no_grad():
        for param in models.imagenet.parameters():
            param.mul_(0.5)
    losses = run_step(cfg, models, state, source, target)
    assert [k for k in losses if k.startswith("grad_share/")] == [
        "grad_share/source",
        "grad_share/fdm",
        "grad_share/target",
        "grad_share/masked",
    ]
    assert losses["fdm"] > 0 and losses["grad_norm/fdm"] > 0
    assert sum(losses[k] for k in losses if k.startswith("grad_share/")).item() == pytest.approx(1)
    assert all(torch.isfinite(value) for value in losses.values())


def test_fdm_readings_differ_and_the_step_without_a_ledger_logs_no_gradients():
    results = {}
    for samples in ("cells", "images"):
        cfg, models, state, source, target = tiny_step(
            "gta2cs/omuda.yaml", f"adaptation.kd_samples={samples}", "adaptation.kd_lambda=1.0"
        )
        with torch.no_grad():
            for param in models.imagenet.parameters():
                param.mul_(0.5)
        losses = run_step(cfg, models, state, source, target, ledger=False)
        assert not any("/" in key for key in losses)
        results[samples] = losses["fdm"].item()
    assert results["cells"] > 0 and results["images"] > 0
    assert results["cells"] != pytest.approx(results["images"])
