"""One training iteration of DAFormer / MIC / OMUDA self-training (SPEC sections 4-5).

`train_step` reads top to bottom like the method:
teacher update -> source loss -> feature distillation (FD or FDM) -> pseudo-labels ->
ClassMix -> strong augmentation -> target loss L_T -> CDM statistic -> masked loss L_M (MIC
block mask or OMUDA's context-aware mask) -> optimiser step.
Every term can be switched off in `AdaptationConfig`; with everything off it is plain
supervised training on the source. Every random decision (pasted classes, augmentation
parameters, keep mask) is asked from a `StepDraws`, so recorded decisions can be replayed.

Each loss term has its own backward, as in DAFormer (the source CE keeps its graph for the
distillation term's backward), so peak memory holds one forward at a time and each term's
gradient is known: on the iterations the loop logs, a `GradientLedger` notes every term's
share of the gradient on the shared backbone. Gradients accumulate and the optimiser steps
once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omuda.adaptation.augment import AugmentParams, strong_augment
from omuda.adaptation.class_decoupling import (
    class_balanced_cross_entropy,
    class_weights,
    debiased_disagreement,
    update_disagreement,
)
from omuda.adaptation.classmix import classmix
from omuda.adaptation.feature_distance import (
    downscale_label_majority,
    feature_distance_loss,
    thing_cell_mask,
)
from omuda.adaptation.losses import cross_entropy, weighted_cross_entropy
from omuda.adaptation.masking import apply_mask
from omuda.adaptation.pseudo_labels import pseudo_labels
from omuda.adaptation.relational_kd import foreground_rows, relational_kd_loss
from omuda.adaptation.teacher import ema_alpha, update_teacher
from omuda.config import AdaptationConfig
from omuda.data.labels import IGNORE_INDEX
from omuda.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize
from omuda.engine.distributed import all_reduce_sum_
from omuda.engine.gradient_ledger import GradientLedger
from omuda.engine.step_draws import StepDraws


@dataclass
class StepState:
    """What the step carries from one iteration to the next (saved in checkpoints)."""

    iteration: int
    generator: torch.Generator  # StepDraws' source: mixing, augmentation, masks, KD cells
    class_disagreement: Tensor  # (K,) CDM: EMA of the per-class disagreement rate
    class_disagreement_updates: Tensor  # (K,) CDM: batches in which each class was seen

    @classmethod
    def initial(
        cls, generator: torch.Generator, num_classes: int, device: torch.device
    ) -> StepState:
        zeros = torch.zeros(num_classes, device=device)
        return cls(0, generator, zeros, zeros.clone())


class SectionTimer:
    """Times named parts of the step for `omuda bench`; a no-op unless `enabled`."""

    def __init__(self, device: torch.device, enabled: bool = False) -> None:
        self.device = device
        self.enabled = enabled
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        self._sync()
        start = time.perf_counter()
        yield
        self._sync()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def train_step(
    batch_src: dict,
    batch_tgt: dict | None,
    student: nn.Module,
    teacher: nn.Module | None,
    imagenet_backbone: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    state: StepState,
    cfg: AdaptationConfig,
    thing_classes: tuple[int, ...],
    autocast: Callable[[], contextlib.AbstractContextManager],
    average_gradients: Callable[[], None],
    timer: SectionTimer | None = None,
    draws: StepDraws | None = None,
    gradient_ledger: GradientLedger | None = None,
) -> dict[str, Tensor]:
    """Run one iteration and return the detached loss terms (no host sync inside).

    batch_src: {"image": (B,3,H,W) uint8, or float32 already ImageNet-normalised,
    "label": long (B,H,W)}, on the device.
    batch_tgt: {"image": (B,3,H,W) as above} or None for source-only training.
    draws: the step's random decisions; by default `StepDraws(state.generator)`.
    gradient_ledger: when given, each term's gradient on its parameters is recorded after
    its backward and the result gains "grad_norm/TERM" and "grad_share/TERM" entries.
    """
    timer = timer or SectionTimer(torch.device("cpu"))
    draws = draws or StepDraws(state.generator)
    x_src = _normalised(batch_src["image"])
    y_src = batch_src["label"]
    num_classes = state.class_disagreement.numel()
    losses: dict[str, Tensor] = {}
    optimizer.zero_grad(set_to_none=True)

    # 1. EMA teacher: alpha = min(1 - 1/(it+1), alpha_max); at it 0 a plain copy.
    if teacher is not None:
        with timer("ema"):
            update_teacher(teacher, _unwrap(student), ema_alpha(state.iteration, cfg.ema_alpha))

    # 2. Source loss L_S; its graph is kept for the distillation term's backward.
    distill = cfg.feature_distillation != "none" and imagenet_backbone is not None
    with timer("source"), autocast():
        out_src = student(x_src, return_features=distill)
        loss_source = cross_entropy(out_src.logits, y_src, average=cfg.source_loss_average)
        losses["source"] = loss_source.detach()
    with timer("source_backward"):
        loss_source.backward(retain_graph=distill)
    _record(gradient_ledger, "source", timer)

    # 3. Feature distillation on thing-class cells: DAFormer's FD or OMUDA's FDM.
    if distill:
        with timer("distill"), autocast():
            loss_distill = _distillation_loss(
                out_src,
                x_src,
                y_src,
                imagenet_backbone,
                cfg,
                thing_classes,
                draws.generator,
                num_classes,
            )
            losses[cfg.feature_distillation] = loss_distill.detach()
        with timer("distill_backward"):
            loss_distill.backward()
        _record(gradient_ledger, cfg.feature_distillation, timer)
        del loss_distill
    del out_src, loss_source

    if teacher is not None and batch_tgt is not None:
        x_tgt = _normalised(batch_tgt["image"])

        # 4. Pseudo-labels from the teacher on the clean target image.
        with timer("teacher"), torch.no_grad(), autocast():
            logits_teacher = teacher(x_tgt).logits
            y_pseudo, w_pseudo = pseudo_labels(
                logits_teacher.float(),
                threshold=cfg.pseudo_threshold,
                ignore_top=cfg.pseudo_ignore_top,
                ignore_bottom=cfg.pseudo_ignore_bottom,
                per_image=cfg.pseudo_per_image,
            )
        losses["pseudo_confidence"] = w_pseudo.mean().detach()

        # CDM: class weights from the running disagreement of past iterations.
        class_weight = None
        if cfg.class_decoupling != "none":
            disagreement = debiased_disagreement(
                state.class_disagreement, state.class_disagreement_updates, cfg.cdm_momentum
            )
            class_weight = class_weights(disagreement, cfg.class_decoupling)

        # 5-7. ClassMix -> strong augmentation -> target loss L_T.
        #      (mix "none": plain mean teacher, the augmented target image alone.)
        with timer("mix"):
            if cfg.mix == "classmix":
                chosen = draws.mix_classes(y_src, cfg)
                x_mix, y_mix, w_mix, pasted = classmix(
                    x_src, y_src, x_tgt, y_pseudo, w_pseudo, chosen
                )
            else:
                x_mix, y_mix, w_mix = x_tgt, y_pseudo, w_pseudo
                pasted = torch.zeros_like(w_pseudo).unsqueeze(1)
            if cfg.augment:  # each mixed image its own jitter call, as DACS
                params = draws.augmentation(x_mix.shape[0], x_mix.device, cfg, one_call=False)
                x_mix = _augment(x_mix, cfg, params)
        with timer("target"), autocast():
            logits_mix = student(x_mix).logits
            loss_target = _target_loss(
                logits_mix,
                y_mix,
                w_mix,
                class_weight,
                target_region=1.0 - pasted[:, 0],
                balance=cfg.cdm_class_balance,
            )
        losses["target"] = loss_target.detach()
        with timer("target_backward"):
            loss_target.backward()
        _record(gradient_ledger, "target", timer)
        # CDM statistic: per-class disagreement of the student's argmax on the mixed image's
        # target pixels with their pseudo-labels (no extra forward). Not the masked forward:
        # with 70% of the image hidden the student disputes most classes whatever their
        # pseudo-labels are worth.
        if class_weight is not None:
            student_pred = logits_mix.detach().argmax(1)
            valid = (pasted[:, 0] == 0) & (y_pseudo != IGNORE_INDEX)
            valid &= w_pseudo > 0  # the ignored top and bottom rows say nothing
            state.class_disagreement, state.class_disagreement_updates = update_disagreement(
                state.class_disagreement,
                state.class_disagreement_updates,
                student_pred,
                y_pseudo,
                valid,
                momentum=cfg.cdm_momentum,
                reduce_sum=all_reduce_sum_,
            )
        del logits_mix

        # 8. Masked consistency L_M: the student sees a masked (augmented) target image
        #    and must predict the teacher's (un-mixed) pseudo-label and weight of the clean one.
        if cfg.masking != "none":
            with timer("mask"):
                x_masked = x_tgt
                if cfg.augment:  # MIC: its own draws, one jitter call for the batch
                    params = draws.augmentation(x_tgt.shape[0], x_tgt.device, cfg, one_call=True)
                    x_masked = _augment(x_tgt, cfg, params)
                keep = draws.keep_mask(y_pseudo, cfg, thing_classes)
                x_masked = apply_mask(x_masked, keep)
            # BatchNorm of the masked forward: `_masked_batchnorm` (MIC: plain train mode).
            with (
                timer("masked"),
                autocast(),
                _masked_batchnorm(student, cfg.masked_batchnorm),
            ):
                logits_masked = student(x_masked).logits
                loss_masked = cfg.mask_loss_weight * _target_loss(
                    logits_masked, y_pseudo, w_pseudo, class_weight, balance=cfg.cdm_class_balance
                )
            losses["masked"] = loss_masked.detach()
            with timer("masked_backward"):
                loss_masked.backward()
            _record(gradient_ledger, "masked", timer)
            del logits_masked

    # 9. One optimiser step on the accumulated gradients.
    with timer("optimizer"):
        average_gradients()
        optimizer.step()
    state.iteration += 1
    if gradient_ledger is not None:
        losses.update(gradient_ledger.summary())
    return losses


def _record(ledger: GradientLedger | None, term: str, timer: SectionTimer) -> None:
    if ledger is not None:
        with timer("gradient_ledger"):  # `omuda bench` leaves this out of the step time
            ledger.record(term)


def _distillation_loss(
    out_src: object,
    x_src: Tensor,
    y_src: Tensor,
    imagenet_backbone: nn.Module,
    cfg: AdaptationConfig,
    thing_classes: tuple[int, ...],
    generator: torch.Generator | None,
    num_classes: int,
) -> Tensor:
    """FD (L2 to frozen ImageNet features) or FDM (relational KD) on source thing cells."""
    stage = cfg.distill_stage - 1
    with torch.no_grad():
        feat_imagenet = imagenet_backbone(x_src)[stage].float()
    feat_student = out_src.features[stage].float()
    if cfg.feature_distillation == "fd":
        return cfg.fd_lambda * feature_distance_loss(
            feat_student,
            feat_imagenet,
            y_src,
            thing_classes,
            num_classes=num_classes,
            min_ratio=cfg.fd_min_ratio,
        )
    if cfg.kd_features == "decoder":
        # The decoder's fused map, pooled to the grid of the ImageNet features.
        feat_student = F.adaptive_avg_pool2d(out_src.fused.float(), feat_imagenet.shape[-2:])
    scale = x_src.shape[-1] // feat_imagenet.shape[-1]
    cells = downscale_label_majority(y_src, scale, num_classes, min_ratio=cfg.fd_min_ratio)
    cells = cells[:, : feat_imagenet.shape[-2], : feat_imagenet.shape[-1]]
    mask = thing_cell_mask(cells, thing_classes)
    # Fixed row counts (cells: foreground first; images: one per image), `valid` marks the
    # real samples: no host sync.
    f_student, f_teacher, valid = foreground_rows(
        feat_student,
        feat_imagenet,
        mask,
        samples=cfg.kd_samples,
        max_cells=cfg.kd_max_cells,
        generator=generator,
    )
    return cfg.kd_lambda * relational_kd_loss(
        f_student, f_teacher, valid, reduction=cfg.kd_reduction
    )


def _target_loss(
    logits: Tensor,
    labels: Tensor,
    pixel_weight: Tensor,
    class_weight: Tensor | None,
    target_region: Tensor | None = None,
    balance: float = 1.0,
) -> Tensor:
    """Weighted CE on pseudo-labelled pixels; with CDM, class-decoupled on target pixels.

    logits (B,K,H,W), labels (B,H,W) long, pixel_weight (B,H,W), class_weight (K,) or None,
    target_region (B,H,W) in {0,1}: pixels that carry pseudo-labels (the rest are pasted
    source pixels with ground truth, which keep the plain weighted CE).
    """
    if class_weight is None:
        return weighted_cross_entropy(logits, labels, pixel_weight)
    if target_region is None:
        return class_balanced_cross_entropy(
            logits, labels, pixel_weight, class_weight, balance=balance
        )
    pseudo_labelled = torch.where(target_region > 0, labels, IGNORE_INDEX)
    pasted_source = weighted_cross_entropy(logits, labels, pixel_weight * (1.0 - target_region))
    decoupled = class_balanced_cross_entropy(
        logits, pseudo_labelled, pixel_weight, class_weight, balance=balance
    )
    # Scale the decoupled mean by the target share so the total stays at plain-CE scale.
    return pasted_source + target_region.mean() * decoupled


def _augment(x: Tensor, cfg: AdaptationConfig, params: AugmentParams) -> Tensor:
    # DACS's mean / std in pixel units, as `denorm_` / `renorm_` use them.
    mean = 255.0 * torch.tensor(IMAGENET_MEAN, dtype=torch.float64, device=x.device)
    std = 255.0 * torch.tensor(IMAGENET_STD, dtype=torch.float64, device=x.device)
    return strong_augment(x, mean, std, params, formulas=cfg.color_jitter_formulas)


def _normalised(images: Tensor) -> Tensor:
    """uint8 images -> ImageNet-normalised float32; float images are normalised already."""
    return normalize(images) if images.dtype == torch.uint8 else images


@contextlib.contextmanager
def _masked_batchnorm(model: nn.Module, statistics: str) -> Iterator[None]:
    """BatchNorm for the masked forward.

    "train": as every training forward (MIC): the batch's own statistics, which also enter
    the running statistics. "batch": the batch's own statistics, running statistics left
    alone (momentum 0). "running": the running statistics (eval mode; gradients still flow).
    """
    if statistics not in ("train", "batch", "running"):
        raise ValueError(
            f"masked BatchNorm statistics must be train, batch or running, got {statistics!r}"
        )
    if statistics == "train":
        yield
        return
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(norm.momentum, norm.training) for norm in norms]
    for norm in norms:
        norm.momentum = 0.0
        if statistics == "running":
            norm.eval()
    try:
        yield
    finally:
        for norm, (momentum, training) in zip(norms, saved, strict=True):
            norm.momentum = momentum
            norm.train(training)


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)
