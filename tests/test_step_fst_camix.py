"""FST's look-ahead and CAMix's mixing inside the training step (their mechanisms have their
own tests): the teacher's EMA steps, what is restored, what is recorded, the mixed batch."""

import math

import pytest
import torch

from omuda.adaptation.camix import accumulate_spatial_counts, spatial_prior
from omuda.adaptation.classmix import classes_table
from omuda.config import AdaptationConfig
from omuda.engine.optim import set_learning_rate
from omuda.engine.step_draws import StepDraws
from omuda.engine.step_terms import mix_batch
from test_step import run_step, tiny_step


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [param.detach().clone() for param in model.parameters()]


def test_fst_teacher_averages_every_virtual_student_and_the_real_step_is_recorded_once():
    cfg, models, state, source, target = tiny_step(
        "gta2cs/daformer_fst.yaml", "adaptation.lookahead_steps=2"
    )
    set_learning_rate(models.optimizer, 0.0)  # the student stands still in every step
    state.iteration = 3
    with torch.no_grad():
        for param in models.teacher.parameters():
            param.mul_(0.5)
    teacher_before, student_before = _params(models.teacher), _params(models.student)
    losses = run_step(cfg, models, state, source, target)
    # n = 1 + (K+1)(t-1) = 7 optimiser steps before this iteration; the teacher takes EMA
    # steps at n = 7, 8, 9: alpha = 7/8, 8/9, 9/10, so it keeps 7/8 * 8/9 * 9/10 = 0.7.
    for teacher, old, student in zip(
        models.teacher.parameters(), teacher_before, student_before, strict=True
    ):
        torch.testing.assert_close(teacher, 0.7 * old + 0.3 * student, rtol=1e-5, atol=1e-6)
    for param, old in zip(models.student.parameters(), student_before, strict=True):
        assert torch.equal(param, old)
    # FST's code restores the weights only: AdamW has counted 2 virtual + 1 real step.
    steps = {float(s["step"]) for s in models.optimizer.state.values()}
    assert steps == {3.0}
    # The gradient ledger saw the real step's terms, once each (a second record would raise).
    assert [k for k in losses if k.startswith("grad_share/")] == [
        "grad_share/source",
        "grad_share/fd",
        "grad_share/target",
    ]
    assert state.iteration == 4


def test_fst_restoring_all_leaves_the_optimizer_as_without_look_ahead():
    cfg, models, state, source, target = tiny_step(
        "gta2cs/daformer_fst.yaml", "adaptation.lookahead_restore=all"
    )
    state.iteration = 2
    run_step(cfg, models, state, source, target, ledger=False)
    assert {float(s["step"]) for s in models.optimizer.state.values()} == {1.0}


def test_fst_first_iteration_is_plain_and_ends_with_one_more_ema_step():
    cfg, models, state, source, target = tiny_step("gta2cs/daformer_fst.yaml")
    set_learning_rate(models.optimizer, 1.0)
    initial = _params(models.student)
    run_step(cfg, models, state, source, target, ledger=False)
    assert {float(s["step"]) for s in models.optimizer.state.values()} == {1.0}  # no look-ahead
    # teacher: a copy of the initial student (alpha 0), then alpha(1) = 0.5 after the step
    for teacher, first, student in zip(
        models.teacher.parameters(), initial, models.student.parameters(), strict=True
    ):
        torch.testing.assert_close(teacher, 0.5 * first + 0.5 * student.detach())


def test_fst_virtual_steps_leave_the_cdm_statistic_to_the_real_step():
    cfg, models, state, source, target = tiny_step(
        "gta2cs/omuda.yaml",
        "adaptation.lookahead_steps=2",
        "adaptation.pseudo_threshold=0.0",
        "adaptation.masking=none",
    )
    state.iteration = 2
    run_step(cfg, models, state, source, target, ledger=False)
    updates = state.class_disagreement_updates
    assert updates.max() == 1.0 and updates.sum() > 0  # one real step: each class once at most


class RecordingDraws(StepDraws):
    """Fixed decisions: the contextual mask is the spatial label 1, ClassMix pastes 5."""

    def __init__(self):
        super().__init__(None)
        self.spatial_labels = None

    def contextual_mask(self, spatial_labels):
        self.spatial_labels = spatial_labels
        return (spatial_labels == 1).float().unsqueeze(1)

    def mix_classes(self, y_src, cfg):
        return classes_table([[5]], y_src.device)


def _camix_inputs(flipped: bool):
    """One 2x2 crop; the teacher prefers class 0 (logit 2.0) over 1 (1.9) everywhere, the
    prior favours class 1 in the left column (0.9) and is uniform on the right."""
    logits = torch.zeros(1, 19, 2, 2)
    logits[:, 0], logits[:, 1] = 2.0, 1.9
    prior = torch.full((19, 2, 2), 1.0 / 19)
    prior[:, :, 0] = 0.1 / 18
    prior[1, :, 0] = 0.9
    batch_tgt = {"window": torch.tensor([[0.0, 0.0, 1.0, 1.0]]), "flipped": torch.tensor([flipped])}
    inputs = {
        "x_src": torch.zeros(1, 3, 2, 2),
        "y_src": torch.full((1, 2, 2), 5),
        "x_tgt": torch.ones(1, 3, 2, 2),
        "y_pseudo": torch.zeros(1, 2, 2, dtype=torch.long),
        "w_pseudo": torch.full((1, 2, 2), 0.4),
        "logits_teacher": logits,
        "batch_tgt": batch_tgt,
        "spatial_prior": prior,
    }
    return inputs


def test_camix_mixes_by_the_prior_weighted_teacher_and_its_significance():
    cfg = AdaptationConfig(mix="camix", camix_significance_rampup_iters=100)
    draws = RecordingDraws()
    mixed = mix_batch(cfg, draws, 0, **_camix_inputs(flipped=False))
    # prior x softmax: left 0.9 * p1 beats (0.1/18) * p0, right the teacher's class 0
    assert draws.spatial_labels.tolist() == [[[1, 0], [1, 0]]]
    assert mixed.image[0, 0].tolist() == [[1.0, 0.0], [1.0, 0.0]]  # target pixels kept left
    assert mixed.labels.tolist() == [[[0, 5], [0, 5]]]
    torch.testing.assert_close(mixed.weights[0], torch.tensor([[0.4, 1.0], [0.4, 1.0]]))
    assert mixed.source_region[0, 0].tolist() == [[0.0, 1.0], [0.0, 1.0]]
    # softmax (e^2, e^1.9, 17 x e^0) / 31.07: entropy 2.55 nats; the threshold is
    # (0.75 + 0.25 e^-5) ln 19 = 2.21 at iteration 0 (not significant), ln 19 = 2.94 after
    # the ramp (significant); source pixels are always significant.
    probs = torch.tensor([math.e**2, math.e**1.9] + [1.0] * 17)
    probs /= probs.sum()
    assert -(probs * probs.log()).sum().item() == pytest.approx(2.552, abs=1e-3)
    assert mixed.significance[0].tolist() == [[0.0, 1.0], [0.0, 1.0]]
    later = mix_batch(cfg, RecordingDraws(), 100, **_camix_inputs(flipped=False))
    assert later.significance[0].tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_camix_mirrors_the_prior_of_a_flipped_crop_and_starts_with_classmix():
    cfg = AdaptationConfig(mix="camix", camix_warmup_iters=10, camix_significance=False)
    draws = RecordingDraws()
    mixed = mix_batch(cfg, draws, 10, **_camix_inputs(flipped=True))
    assert draws.spatial_labels.tolist() == [[[0, 1], [0, 1]]]
    assert mixed.significance is None
    warm_up = RecordingDraws()
    mixed = mix_batch(cfg, warm_up, 9, **_camix_inputs(flipped=True))
    assert warm_up.spatial_labels is None  # ClassMix: every source pixel (class 5) pasted
    assert mixed.image.eq(0).all() and mixed.source_region.eq(1).all()
    with pytest.raises(ValueError, match="spatial prior"):
        inputs = _camix_inputs(flipped=False)
        inputs["batch_tgt"] = {}
        mix_batch(cfg, draws, 10, **inputs)


@pytest.mark.parametrize("significance", [True, False])
def test_camix_step_trains_with_a_prior_and_crop_windows(significance):
    cfg, models, state, source, target = tiny_step(
        "gta2cs/daformer_camix.yaml",
        "adaptation.camix_warmup_iters=0",
        f"adaptation.camix_significance={str(significance).lower()}",
        "adaptation.pseudo_threshold=0.0",
    )
    batch = target["image"].shape[0]
    target["window"] = torch.tensor([[0.0, 0.25, 1.0, 0.75]]).repeat(batch, 1)
    target["flipped"] = torch.tensor([False, True][:batch])
    counts = accumulate_spatial_counts(
        torch.zeros(19, *cfg.adaptation.camix_prior_size), source["label"]
    )
    state.iteration = 5
    losses = run_step(cfg, models, state, source, target, spatial_prior=spatial_prior(counts))
    assert losses["target"] > 0 and losses["grad_norm/target"] > 0
    assert all(torch.isfinite(value) for value in losses.values())
