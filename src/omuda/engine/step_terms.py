"""The building blocks `train_step` composes: loss terms, mixing, augmentation, BatchNorm mode.

Each function maps config fields to the arguments of the pure mechanisms in
`omuda.adaptation`; `omuda.engine.step` holds the order in which they run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omuda.adaptation.augment import AugmentParams, strong_augment
from omuda.adaptation.camix import (
    camix,
    contextual_labels,
    prior_for_crops,
    significance_mask,
    significance_threshold,
    significance_weighted_cross_entropy,
)
from omuda.adaptation.class_decoupling import class_balanced_cross_entropy
from omuda.adaptation.classmix import classmix, mix
from omuda.adaptation.feature_distance import (
    downscale_label_majority,
    feature_distance_loss,
    thing_cell_mask,
)
from omuda.adaptation.losses import weighted_cross_entropy
from omuda.adaptation.relational_kd import foreground_rows, relational_kd_loss
from omuda.config import AdaptationConfig
from omuda.data.labels import IGNORE_INDEX
from omuda.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize
from omuda.engine.step_draws import StepDraws


def distillation_loss(
    feat_student: Tensor,
    fused: Tensor | None,
    feat_imagenet: Tensor,
    y_src: Tensor,
    cfg: AdaptationConfig,
    thing_classes: tuple[int, ...],
    generator: torch.Generator | None,
    num_classes: int,
) -> Tensor:
    """FD (L2 to frozen ImageNet features) or FDM (relational KD) on source thing cells.

    feat_student, feat_imagenet (B,C,h,w) float: the student's and the frozen ImageNet
    backbone's maps of stage `cfg.distill_stage`; fused (B,E,H/4,W/4): the decoder's map
    (for `kd_features=decoder`); y_src (B,H,W) long -> scalar, lambda included.
    """
    feat_student = feat_student.float()
    feat_imagenet = feat_imagenet.float()
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
        feat_student = F.adaptive_avg_pool2d(fused.float(), feat_imagenet.shape[-2:])
    scale = y_src.shape[-1] // feat_imagenet.shape[-1]
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


@dataclass
class Mixed:
    """The student's mixed training input and what its loss needs."""

    image: Tensor  # (B,3,H,W) normalised, not yet strongly augmented
    labels: Tensor  # (B,H,W) long: source ground truth and teacher pseudo-labels
    weights: Tensor  # (B,H,W) float: 1 on source pixels, the pseudo-label weight elsewhere
    source_region: Tensor  # (B,1,H,W) float, 1 = source pixel (the rest carry pseudo-labels)
    significance: Tensor | None  # (B,H,W) in {0,1}: CAMix's significance mask, or None


def mix_batch(
    cfg: AdaptationConfig,
    draws: StepDraws,
    iteration: int,
    x_src: Tensor,
    y_src: Tensor,
    x_tgt: Tensor,
    y_pseudo: Tensor,
    w_pseudo: Tensor,
    logits_teacher: Tensor,
    batch_tgt: dict,
    spatial_prior: Tensor | None,
) -> Mixed:
    """ClassMix (DACS), CAMix or no mixing (mix "none": the target image alone).

    x_src, x_tgt (B,3,H,W); y_src, y_pseudo (B,H,W) long; w_pseudo (B,H,W);
    logits_teacher (B,K,H,W) on the clean target; batch_tgt: the target batch, whose
    "window" (B,4) and "flipped" (B,) place each crop in its image (CAMix);
    spatial_prior (K,h,w): the source prior over the whole image (CAMix).

    CAMix: ClassMix until `camix_warmup_iters`, then the contextual mask's target pixels
    pasted onto the source image. With `camix_significance`, in both phases (as the
    authors' code), a significance mask: the teacher's entropy below the ramped threshold on
    target pixels, 1 on source pixels.
    """
    if cfg.mix == "none":
        no_source = torch.zeros_like(w_pseudo).unsqueeze(1)
        return Mixed(x_tgt, y_pseudo, w_pseudo, no_source, None)
    camix_on = cfg.mix == "camix" and iteration >= cfg.camix_warmup_iters
    probs_tgt = logits_teacher.float().softmax(dim=1) if cfg.mix == "camix" else None
    if camix_on:
        if spatial_prior is None or "window" not in batch_tgt or "flipped" not in batch_tgt:
            raise ValueError("CAMix needs the source spatial prior and the target crop windows")
        prior_crops = prior_for_crops(
            spatial_prior.to(probs_tgt), batch_tgt["window"], x_tgt.shape[-2:], batch_tgt["flipped"]
        )
        target_mask = draws.contextual_mask(contextual_labels(probs_tgt, prior_crops))
        x_mix, y_mix, w_mix, source_region = camix(
            x_src, y_src, x_tgt, y_pseudo, w_pseudo, target_mask
        )
    else:
        chosen = draws.mix_classes(y_src, cfg)
        x_mix, y_mix, w_mix, source_region = classmix(
            x_src, y_src, x_tgt, y_pseudo, w_pseudo, chosen
        )
    significance = None
    if cfg.mix == "camix" and cfg.camix_significance:
        threshold = significance_threshold(
            iteration,
            cfg.camix_significance_rampup_iters,
            probs_tgt.shape[1],
            cfg.camix_significance_start,
        )
        confident = significance_mask(probs_tgt, threshold)
        significance = mix(source_region, torch.ones_like(confident), confident)
    return Mixed(x_mix, y_mix, w_mix, source_region, significance)


def mixed_loss(logits: Tensor, mixed: Mixed, class_weight: Tensor | None, balance: float) -> Tensor:
    """L_T on the mixed image: CAMix's significance-weighted CE when it has a mask, else
    `target_loss` (plain weighted CE, or CDM's class-decoupled loss on target pixels)."""
    if mixed.significance is not None:
        return significance_weighted_cross_entropy(
            logits, mixed.labels, mixed.weights, mixed.significance
        )
    return target_loss(
        logits,
        mixed.labels,
        mixed.weights,
        class_weight,
        target_region=1.0 - mixed.source_region[:, 0],
        balance=balance,
    )


def target_loss(
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


def augment(x: Tensor, cfg: AdaptationConfig, params: AugmentParams) -> Tensor:
    """Colour jitter and blur of normalised images x (B,3,H,W) with drawn `params`."""
    # DACS's mean / std in pixel units, as `denorm_` / `renorm_` use them.
    mean = 255.0 * torch.tensor(IMAGENET_MEAN, dtype=torch.float64, device=x.device)
    std = 255.0 * torch.tensor(IMAGENET_STD, dtype=torch.float64, device=x.device)
    return strong_augment(x, mean, std, params, formulas=cfg.color_jitter_formulas)


def normalised(images: Tensor) -> Tensor:
    """uint8 images -> ImageNet-normalised float32; float images are normalised already."""
    return normalize(images) if images.dtype == torch.uint8 else images


@contextlib.contextmanager
def masked_batchnorm(model: nn.Module, statistics: str) -> Iterator[None]:
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
