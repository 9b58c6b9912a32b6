"""Parity of whole training steps with DAFormer's and MIC's `DACS.forward_train`.

Golden vectors: `daformer_step`, `daformer_step_iter10`, `mic_step` on `step_inputs`
(README sections 7-8). Our real `train_step` runs on the shipped GTA5->Cityscapes configs
(with MiT-B0, drop path and dropout off, as the golden run) and replays the recorded random
decisions through a `StepDraws` subclass: the ClassMix classes, no jitter and no blur
(the golden run forced `random.uniform` to 0) and MIC's block mask.

MIC's step is DAFormer's step plus the masked term, so one MIC run also yields DAFormer's
iteration-0 result: the gradients as they stand when the step asks for the mask, after the
mixed backward (the golden MIC run's log and cumulative gradient norms equal DAFormer's).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from omuda.adaptation.augment import AugmentParams
from omuda.adaptation.classmix import classes_table
from omuda.config import load_config
from omuda.engine.builders import build_training_models
from omuda.engine.gradient_ledger import GradientLedger
from omuda.engine.optim import set_learning_rate
from omuda.engine.step import StepState, train_step
from omuda.engine.step_draws import StepDraws
from omuda.models import load_segmentor_weights

LOSS_RTOL = 1e-5  # README's suggested tolerances
GRAD_NORM_RTOL = 5e-4
GRAD_TENSOR_ATOL = 2e-3  # times max |g_ref|
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


class ReplayDraws(StepDraws):
    """The golden run's decisions; notes the gradients each time the step asks for one."""

    def __init__(self, student: torch.nn.Module, mix_classes: list, keep: torch.Tensor | None):
        super().__init__(None)
        self.student = student
        self.recorded_classes = mix_classes
        self.recorded_keep = keep
        self.gradients: list[dict[str, torch.Tensor]] = []
        self.y_pseudo: torch.Tensor | None = None

    def _note_gradients(self) -> None:
        named = self.student.named_parameters()
        self.gradients.append({name: p.grad.clone() for name, p in named if p.grad is not None})

    def mix_classes(self, y_src, cfg):
        self._note_gradients()  # after the source (+FD) backward
        return classes_table(self.recorded_classes, y_src.device)

    def augmentation(self, batch, device, cfg, one_call):
        return AugmentParams.identity(batch, device)  # random.uniform forced to 0 in the golden run

    def keep_mask(self, y_pseudo, cfg, thing_classes):
        self._note_gradients()  # after the mixed backward
        self.y_pseudo = y_pseudo
        return self.recorded_keep.float()


@dataclass
class StepRun:
    losses: dict[str, float]
    gradients: dict[str, torch.Tensor]  # after the whole step
    draws: ReplayDraws
    teacher: torch.nn.Module
    ledger: GradientLedger  # on every student parameter, as the golden runs' norms


def _run_step(golden, config: str, golden_name: str, iteration: int) -> StepRun:
    tensors, meta = golden.load(golden_name)
    inputs, _ = golden.load("step_inputs")
    weights = golden.root / "mitb0_daformer_init.safetensors"
    cfg = load_config(
        CONFIGS / config,
        [
            "model.backbone=mit_b0",
            f"model.pretrained={weights}",
            "model.drop_path_rate=0.0",
            "model.dropout=0.0",
        ],
    )
    models = build_training_models(cfg, torch.device("cpu"))
    load_segmentor_weights(models.student, golden.load("mitb0_daformer_init")[0])
    set_learning_rate(models.optimizer, 0.0)  # the gradients are compared, not the update
    student = models.student.train()
    if iteration:  # README 7: teacher and ImageNet model start at 0.9 x the student
        with torch.no_grad():
            for mine, theirs in zip(models.teacher.parameters(), student.parameters(), strict=True):
                mine.copy_(0.9 * theirs)
            imagenet = zip(models.imagenet.parameters(), student.backbone.parameters(), strict=True)
            for mine, theirs in imagenet:
                mine.copy_(0.9 * theirs)
    state = StepState.initial(torch.Generator(), cfg.model.num_classes, torch.device("cpu"))
    state.iteration = iteration
    draws = ReplayDraws(student, meta["chosen_mix_classes"], tensors.get("mic_mask"))
    ledger = GradientLedger(student.parameters())
    losses = train_step(
        {"image": inputs["img"], "label": inputs["gt_semantic_seg"][:, 0].long()},
        {"image": inputs["target_img"]},
        student,
        models.teacher,
        models.imagenet,
        models.optimizer,
        state,
        cfg.adaptation,
        cfg.data.thing_classes,
        contextlib.nullcontext,
        lambda: None,
        draws=draws,
        gradient_ledger=ledger,
    )
    gradients = {name: p.grad.clone() for name, p in student.named_parameters()}
    losses = {k: v.item() for k, v in losses.items()}
    return StepRun(losses, gradients, draws, models.teacher, ledger)


@pytest.fixture(scope="module")
def mic_run(golden) -> StepRun:
    return _run_step(golden, "gta2cs/mic.yaml", "mic_step", iteration=0)


@pytest.fixture(scope="module")
def daformer_iter10_run(golden) -> StepRun:
    return _run_step(golden, "gta2cs/daformer.yaml", "daformer_step_iter10", iteration=10)


def _total_norm(gradients: dict[str, torch.Tensor]) -> float:
    return torch.stack([g.norm() for g in gradients.values()]).norm().item()


def _compare_gradients(parity, check: str, gradients: dict, tensors: dict, meta: dict) -> None:
    """Every parameter's gradient norm, the total, and the recorded gradient tensors."""
    assert meta["n_params_with_grad"] == len(meta["grad_norm_per_param"]) == len(gradients)
    for name, expected in meta["grad_norm_per_param"].items():
        actual = gradients[name].norm()
        parity.close(f"{check}.grad_norm", actual, expected, atol=1e-12, rtol=GRAD_NORM_RTOL)
    total = _total_norm(gradients)
    parity.close(f"{check}.grad_total_norm", total, meta["grad_total_norm"], rtol=GRAD_NORM_RTOL)
    for key, expected in tensors.items():
        if key.startswith("grad."):
            scale = expected.abs().max().item()
            parity.close(
                f"{check}.grad_tensor", gradients[key[5:]], expected, atol=GRAD_TENSOR_ATOL * scale
            )


def _compare_gradient_ledger(parity, check: str, run: StepRun, meta: dict) -> None:
    """The ledger's norm after each backward (source CE, FD, mixed, masked) is the golden
    run's, and each term's norm is that of its own gradient (checked by the differences)."""
    expected = meta["cumulative_grad_norm_after_each_backward"]
    cumulative = [norm.item() for norm in run.ledger.cumulative_norms[: len(expected)]]
    for index, (actual, wanted) in enumerate(zip(cumulative, expected, strict=True)):
        parity.close(f"{check}.cumulative_grad_norm_{index}", actual, wanted, rtol=GRAD_NORM_RTOL)
    terms = list(run.ledger.term_norms)
    assert terms[: len(expected)] == ["source", "fd", "target", "masked"][: len(expected)]
    # The source term is the first backward: its norm is the first cumulative norm.
    assert run.losses["grad_norm/source"] == cumulative[0]
    shares = [run.losses[f"grad_share/{term}"] for term in terms]
    assert abs(sum(shares) - 1.0) < 1e-5


def _compare_losses(parity, check: str, losses: dict, log: dict) -> None:
    parity.close(f"{check}.source_loss", losses["source"], log["decode.loss_seg"], rtol=LOSS_RTOL)
    parity.close(
        f"{check}.fd_loss", losses["fd"], log["src.loss_imnet_feat_dist"], atol=1e-7, rtol=LOSS_RTOL
    )
    parity.close(f"{check}.mix_loss", losses["target"], log["mix.decode.loss_seg"], rtol=LOSS_RTOL)


def _compare_pseudo_weight(parity, check: str, losses: dict, meta: dict) -> None:
    # Our log keeps the mean weight after the crop rows; the original's scalar is before it.
    kept_rows = 256 - sum(meta["psweight_ignore_top_bottom"])
    scalar = losses["pseudo_confidence"] * 256 / kept_rows
    parity.close(
        f"{check}.pseudo_weight", scalar, meta["pseudo_weight_scalar"], atol=2 / (2 * 256 * 256)
    )


def _compare_norm_after_source(parity, check: str, after_source: dict, meta: dict) -> None:
    """The total gradient norm after the source backward (the recorded gradients)."""
    cumulative = meta["cumulative_grad_norm_after_each_backward"]
    parity.close(
        f"{check}.grad_norm_after_source",
        _total_norm(after_source),
        cumulative[1],
        rtol=GRAD_NORM_RTOL,
    )


def _compare_teacher_checksum(parity, check: str, teacher, meta: dict, rtol: float) -> None:
    """The sum of every teacher parameter after the step, in float64."""
    checksum = sum(p.double().sum().item() for p in teacher.parameters())
    parity.close(
        f"{check}.teacher_checksum",
        checksum,
        meta["teacher_param_checksum_after_call"],
        rtol=rtol,
    )


def test_daformer_step_iteration_0(golden, parity, mic_run):
    tensors, meta = golden.load("daformer_step")
    # The MIC run replayed the same ClassMix classes as the golden DAFormer run.
    assert meta["chosen_mix_classes"] == golden.load("mic_step")[1]["chosen_mix_classes"]
    _compare_losses(parity, "daformer_step", mic_run.losses, meta["log_vars"])
    _compare_pseudo_weight(parity, "daformer_step", mic_run.losses, meta)
    after_source, after_mix = mic_run.draws.gradients
    _compare_norm_after_source(parity, "daformer_step", after_source, meta)
    _compare_gradients(parity, "daformer_step", after_mix, tensors, meta)
    _compare_gradient_ledger(parity, "daformer_step", mic_run, meta)
    # The ImageNet model equals the student at iteration 0: FD and its gradient are 0.
    assert mic_run.losses["grad_norm/fd"] == 0.0 and mic_run.losses["grad_share/fd"] == 0.0
    _compare_teacher_checksum(parity, "daformer_step", mic_run.teacher, meta, rtol=1e-9)


def test_daformer_step_iteration_10(golden, parity, daformer_iter10_run):
    tensors, meta = golden.load("daformer_step_iter10")
    run = daformer_iter10_run
    _compare_losses(parity, "daformer_step_iter10", run.losses, meta["log_vars"])
    _compare_pseudo_weight(parity, "daformer_step_iter10", run.losses, meta)
    (after_source,) = run.draws.gradients
    _compare_norm_after_source(parity, "daformer_step_iter10", after_source, meta)
    _compare_gradients(parity, "daformer_step_iter10", run.gradients, tensors, meta)
    _compare_gradient_ledger(parity, "daformer_step_iter10", run, meta)
    # FD at iteration 10 is small but not zero: its own gradient norm is positive.
    assert 0.0 < run.losses["grad_norm/fd"] < 1e-2 * run.losses["grad_norm/source"]
    _compare_teacher_checksum(parity, "daformer_step_iter10", run.teacher, meta, rtol=1e-7)


def test_mic_step(golden, parity, mic_run):
    tensors, meta = golden.load("mic_step")
    log = meta["log_vars"]
    _compare_losses(parity, "mic_step", mic_run.losses, log)
    parity.close(
        "mic_step.masked_loss",
        mic_run.losses["masked"],
        log["masked.decode.loss_seg"],
        rtol=LOSS_RTOL,
    )
    assert torch.equal(mic_run.draws.y_pseudo, tensors["pseudo_label"].long())
    _compare_gradients(parity, "mic_step", mic_run.gradients, tensors, meta)
    _compare_gradient_ledger(parity, "mic_step", mic_run, meta)
