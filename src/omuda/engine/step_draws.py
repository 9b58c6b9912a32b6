"""The random decisions of one training step, asked for by name.

`train_step` takes every random decision (which classes to paste, CAMix's contextual mask,
the strong augmentation's parameters, the keep mask) from a `StepDraws`. The default draws
them from the step's generator; a subclass can return recorded decisions instead (the parity
tests replay the original code's choices this way), and the step's arithmetic runs unchanged
on them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from omuda.adaptation.augment import AugmentParams, sample_augment_params
from omuda.adaptation.camix import contextual_class_mask
from omuda.adaptation.classmix import sample_mix_classes
from omuda.adaptation.masking import block_mask, context_aware_mask, grid_mask, random_patch_mask
from omuda.config import AdaptationConfig


class StepDraws:
    """Draws each random decision of `train_step` from `generator` (device-side, no sync)."""

    def __init__(self, generator: torch.Generator | None) -> None:
        self.generator = generator

    def mix_classes(self, y_src: Tensor, cfg: AdaptationConfig) -> Tensor:
        """Classes ClassMix pastes: y_src (B,H,W) long -> (B,256) bool (`sample_mix_classes`)."""
        return sample_mix_classes(y_src, self.generator, scope=cfg.classmix_classes)

    def contextual_mask(self, spatial_labels: Tensor) -> Tensor:
        """CAMix's target pixels to paste: spatial_labels (B,H,W) long -> (B,1,H,W) float
        (`contextual_class_mask`: half of each image's classes and their partners)."""
        return contextual_class_mask(spatial_labels, self.generator)

    def augmentation(
        self, batch: int, device: torch.device, cfg: AdaptationConfig, one_call: bool
    ) -> AugmentParams:
        """Strong-augmentation parameters of `batch` images (`sample_augment_params`);
        one_call: one kornia call for the batch (MIC's masked image), else one per image."""
        return sample_augment_params(
            batch,
            self.generator,
            device,
            strength=cfg.color_jitter_strength,
            jitter_p=cfg.color_jitter_p,
            blur_p=cfg.blur_p,
            decision=cfg.augment_decision,
            one_call=one_call,
        )

    def keep_mask(
        self, y_pseudo: Tensor, cfg: AdaptationConfig, thing_classes: tuple[int, ...]
    ) -> Tensor:
        """(B,1,H,W) keep mask of the configured masking strategy for y_pseudo (B,H,W)."""
        shape = tuple(y_pseudo.shape)
        device = y_pseudo.device
        if cfg.masking == "cam":
            return context_aware_mask(
                y_pseudo,
                thing_classes,
                fine_block=cfg.cam_fine_block,
                coarse_block=cfg.cam_coarse_block,
                mask_ratio=cfg.mask_ratio,
                generator=self.generator,
                grid=cfg.mask_grid,
            )
        size, ratio = cfg.mask_block_size, cfg.mask_ratio
        if cfg.masking == "block":
            return block_mask(shape, size, ratio, self.generator, device, grid=cfg.mask_grid)
        if cfg.masking == "random":
            return random_patch_mask(shape, size, ratio, self.generator, device)
        return grid_mask(shape, size, ratio, self.generator, device)
