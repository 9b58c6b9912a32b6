"""One training iteration of DAFormer / MIC / OMUDA / FST / CAMix self-training.

`train_step` reads top to bottom like the method: teacher update (FST: after the student's
look-ahead) -> the loss terms, each with its own backward (`_accumulate_gradients`: source
loss -> feature distillation (FD or FDM) -> pseudo-labels -> ClassMix or CAMix -> strong
augmentation -> target loss L_T -> CDM statistic -> masked loss L_M (MIC block mask or
OMUDA's context-aware mask)) -> optimiser step.
Every term can be switched off in `AdaptationConfig`; with everything off it is plain
supervised training on the source. Every random decision (pasted classes, contextual mask,
augmentation parameters, keep mask) is asked from a `StepDraws`, so recorded decisions can
be replayed.

Each domain's loss terms have their own backward, as in DAFormer, so peak memory holds one
forward at a time; on the iterations the loop logs the source CE and the distillation term
are backpropagated one after the other too (the others sum them first), so that a
`GradientLedger` knows every term's share of the gradient on the shared backbone.
Gradients accumulate and the optimiser steps once. FST's virtual steps run the same
`_accumulate_gradients` without recording anything (no CDM statistic, no ledger, no timers).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from omuda.adaptation.class_decoupling import (
    class_weights,
    debiased_disagreement,
    update_disagreement,
)
from omuda.adaptation.future_teacher import lookahead_ema_alphas
from omuda.adaptation.losses import cross_entropy
from omuda.adaptation.masking import apply_mask
from omuda.adaptation.pseudo_labels import pseudo_labels
from omuda.adaptation.teacher import ema_alpha, update_teacher
from omuda.config import AdaptationConfig
from omuda.data.labels import IGNORE_INDEX
from omuda.engine.distributed import all_reduce_sum_
from omuda.engine.gradient_ledger import GradientLedger
from omuda.engine.lookahead import look_ahead
from omuda.engine.step_draws import StepDraws
from omuda.engine.step_terms import (
    augment,
    distillation_loss,
    masked_batchnorm,
    mix_batch,
    mixed_loss,
    normalised,
    target_loss,
)


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


@dataclass
class _Iteration:
    """What every forward/backward pass of one iteration reads: the real step's and FST's
    virtual ones."""

    x_src: Tensor  # (B,3,H,W) normalised
    y_src: Tensor  # (B,H,W) long
    batch_tgt: dict | None
    student: nn.Module
    teacher: nn.Module | None
    imagenet_backbone: nn.Module | None
    cfg: AdaptationConfig
    thing_classes: tuple[int, ...]
    autocast: Callable[[], contextlib.AbstractContextManager]
    spatial_prior: Tensor | None
    # The frozen ImageNet backbone's map of the (unchanging) source batch, computed once.
    imagenet_features: Tensor | None = None


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
    spatial_prior: Tensor | None = None,
) -> dict[str, Tensor]:
    """Run one iteration and return the detached loss terms (no host sync inside).

    batch_src: {"image": (B,3,H,W) uint8, or float32 already ImageNet-normalised,
    "label": long (B,H,W)}, on the device.
    batch_tgt: {"image": (B,3,H,W) as above; for CAMix also "window" (B,4) float and
    "flipped" (B,) bool, the crop's place in its image} or None for source-only training.
    draws: the step's random decisions; by default `StepDraws(state.generator)`.
    gradient_ledger: when given, each term's gradient on its parameters is recorded after
    its backward and the result gains "grad_norm/TERM" and "grad_share/TERM" entries.
    spatial_prior: (K,h,w) CAMix's source spatial prior over the whole image.
    """
    timer = timer or SectionTimer(torch.device("cpu"))
    draws = draws or StepDraws(state.generator)
    step = _Iteration(
        normalised(batch_src["image"]),
        batch_src["label"],
        batch_tgt,
        student,
        teacher,
        imagenet_backbone,
        cfg,
        thing_classes,
        autocast,
        spatial_prior,
    )

    # 1. EMA teacher: alpha = min(1 - 1/(n+1), alpha_max), a plain copy at n = 0. FST-D: the
    #    student first looks K steps ahead on this batch and the teacher averages each of
    #    those students (n counts the virtual steps too); then the student is put back.
    alphas = []
    if teacher is not None and batch_tgt is not None:
        alphas = lookahead_ema_alphas(state.iteration, cfg.lookahead_steps, cfg.ema_alpha)
    if alphas:
        with timer("lookahead"):
            _look_ahead(step, state, optimizer, average_gradients, alphas)
    elif teacher is not None:
        with timer("ema"):
            update_teacher(teacher, _unwrap(student), ema_alpha(state.iteration, cfg.ema_alpha))

    # 2-8. The loss terms of the real step, each with its own backward.
    optimizer.zero_grad(set_to_none=True)
    losses = _accumulate_gradients(step, state, draws, timer, gradient_ledger)

    # 9. One optimiser step on the accumulated gradients.
    with timer("optimizer"):
        average_gradients()
        optimizer.step()
    if cfg.lookahead_steps > 0 and state.iteration == 0 and teacher is not None:
        # FST's code ends its first, plain, iteration with one more EMA step, at alpha(1).
        update_teacher(teacher, _unwrap(student), ema_alpha(1, cfg.ema_alpha))
    state.iteration += 1
    if gradient_ledger is not None:
        losses.update(gradient_ledger.summary())
    return losses


def _look_ahead(
    step: _Iteration,
    state: StepState,
    optimizer: torch.optim.Optimizer,
    average_gradients: Callable[[], None],
    alphas: list[float],
) -> None:
    """FST-D: K = len(alphas) - 1 virtual optimiser steps of the student on this batch, each
    with fresh random draws; the teacher takes an EMA step (alphas[k]) before each and one
    (alphas[K]) after the last, and keeps them. The student's parameters are restored, and
    with `lookahead_restore=all` its optimiser state and buffers too."""
    cfg = step.cfg
    student = _unwrap(step.student)
    silent = SectionTimer(torch.device("cpu"))  # the look-ahead is timed as a whole

    def virtual_gradients(_: int) -> None:
        _accumulate_gradients(step, state, StepDraws(state.generator), silent, None, False)
        average_gradients()

    restore_all = cfg.lookahead_restore == "all"
    look_ahead(
        step.student,
        optimizer,
        virtual_gradients,
        len(alphas) - 1,
        readout=lambda: update_teacher(step.teacher, student, alphas[-1]),
        before_step=lambda k: update_teacher(step.teacher, student, alphas[k]),
        restore_optimizer=restore_all,
        restore_buffers=restore_all,
    )


def _accumulate_gradients(
    step: _Iteration,
    state: StepState,
    draws: StepDraws,
    timer: SectionTimer,
    gradient_ledger: GradientLedger | None,
    record: bool = True,
) -> dict[str, Tensor]:
    """Sections 2-8: every loss term's forward and backward; returns the detached losses.

    record=False (FST's virtual steps) leaves the CDM statistic alone.
    """
    cfg, student, teacher = step.cfg, step.student, step.teacher
    x_src, y_src, batch_tgt = step.x_src, step.y_src, step.batch_tgt
    num_classes = state.class_disagreement.numel()
    losses: dict[str, Tensor] = {}

    # 2. Source loss L_S.
    distill = cfg.feature_distillation != "none" and step.imagenet_backbone is not None
    with timer("source"), step.autocast():
        out_src = student(x_src, return_features=distill)
        loss_source = cross_entropy(out_src.logits, y_src, average=cfg.source_loss_average)
        losses["source"] = loss_source.detach()

    # 3. Feature distillation on thing-class cells: DAFormer's FD or OMUDA's FDM.
    loss_distill = None
    if distill:
        stage = cfg.distill_stage - 1
        with timer("distill"), step.autocast():
            if step.imagenet_features is None:
                with torch.no_grad():
                    step.imagenet_features = step.imagenet_backbone(x_src)[stage]
            loss_distill = distillation_loss(
                out_src.features[stage],
                out_src.fused,
                step.imagenet_features,
                y_src,
                cfg,
                step.thing_classes,
                draws.generator,
                num_classes,
            )
            losses[cfg.feature_distillation] = loss_distill.detach()
    # Measured iterations backpropagate the two terms one after the other, as DAFormer does
    # (the source CE keeps its graph), so each term's gradient is known; the others sum them
    # first and go through the backbone once.
    if loss_distill is not None and gradient_ledger is not None:
        with timer("source_backward"):
            loss_source.backward(retain_graph=True)
        _record(gradient_ledger, "source", timer)
        with timer("distill_backward"):
            loss_distill.backward()
        _record(gradient_ledger, cfg.feature_distillation, timer)
    else:
        with timer("source_backward"):
            (loss_source if loss_distill is None else loss_source + loss_distill).backward()
        _record(gradient_ledger, "source", timer)
    del out_src, loss_source, loss_distill
    if teacher is None or batch_tgt is None:
        return losses

    x_tgt = normalised(batch_tgt["image"])
    # 4. Pseudo-labels from the teacher on the clean target image.
    with timer("teacher"), torch.no_grad(), step.autocast():
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

    # 5-7. ClassMix or CAMix -> strong augmentation -> target loss L_T.
    #      (mix "none": plain mean teacher, the augmented target image alone.)
    with timer("mix"):
        mixed = mix_batch(
            cfg,
            draws,
            state.iteration,
            x_src,
            y_src,
            x_tgt,
            y_pseudo,
            w_pseudo,
            logits_teacher,
            batch_tgt,
            step.spatial_prior,
        )
        x_mix = mixed.image
        if cfg.augment:  # each mixed image its own jitter call, as DACS
            params = draws.augmentation(x_mix.shape[0], x_mix.device, cfg, one_call=False)
            x_mix = augment(x_mix, cfg, params)
    with timer("target"), step.autocast():
        logits_mix = student(x_mix).logits
        loss_target = mixed_loss(logits_mix, mixed, class_weight, cfg.cdm_class_balance)
    losses["target"] = loss_target.detach()
    with timer("target_backward"):
        loss_target.backward()
    _record(gradient_ledger, "target", timer)
    # CDM statistic: per-class disagreement of the student's argmax on the mixed image's
    # target pixels with their pseudo-labels (no extra forward). Not the masked forward:
    # with 70% of the image hidden the student disputes most classes whatever their
    # pseudo-labels are worth.
    if class_weight is not None and record:
        student_pred = logits_mix.detach().argmax(1)
        valid = (mixed.source_region[:, 0] == 0) & (y_pseudo != IGNORE_INDEX)
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
    del logits_mix, mixed

    # 8. Masked consistency L_M: the student sees a masked (augmented) target image
    #    and must predict the teacher's (un-mixed) pseudo-label and weight of the clean one.
    if cfg.masking != "none":
        with timer("mask"):
            x_masked = x_tgt
            if cfg.augment:  # MIC: its own draws, one jitter call for the batch
                params = draws.augmentation(x_tgt.shape[0], x_tgt.device, cfg, one_call=True)
                x_masked = augment(x_tgt, cfg, params)
            keep = draws.keep_mask(y_pseudo, cfg, step.thing_classes)
            x_masked = apply_mask(x_masked, keep)
        # BatchNorm of the masked forward: `masked_batchnorm` (MIC: plain train mode).
        with (
            timer("masked"),
            step.autocast(),
            masked_batchnorm(student, cfg.masked_batchnorm),
        ):
            logits_masked = student(x_masked).logits
            loss_masked = cfg.mask_loss_weight * target_loss(
                logits_masked, y_pseudo, w_pseudo, class_weight, balance=cfg.cdm_class_balance
            )
        losses["masked"] = loss_masked.detach()
        with timer("masked_backward"):
            loss_masked.backward()
        _record(gradient_ledger, "masked", timer)
    return losses


def _record(ledger: GradientLedger | None, term: str, timer: SectionTimer) -> None:
    if ledger is not None:
        with timer("gradient_ledger"):  # `omuda bench` leaves this out of the step time
            ledger.record(term)


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)
