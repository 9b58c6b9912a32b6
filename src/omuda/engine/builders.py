"""Turn a `Config` into datasets, samplers and models (the only place config meets code)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from omuda.adaptation.camix import spatial_prior
from omuda.adaptation.teacher import make_teacher
from omuda.config import Config, DatasetConfig
from omuda.data.datasets import (
    SegmentationDataset,
    class_pixel_counts,
    pairs_of,
)
from omuda.data.labels import CLASS_NAMES, STUFF_CLASSES
from omuda.data.prepare import load_class_stats
from omuda.data.resized import find_resized_copy
from omuda.data.sampling import (
    SourceSampler,
    TargetSampler,
    class_probabilities,
    format_class_probabilities,
)
from omuda.data.spatial_prior import load_spatial_counts
from omuda.engine.optim import build_optimizer
from omuda.models import build_backbone, build_segmentor


def dataset_root(cfg: Config, dataset: DatasetConfig) -> Path:
    """`dataset.path` resolved against `data.root` (absolute paths are kept)."""
    path = Path(dataset.path).expanduser()
    return path if path.is_absolute() else Path(cfg.data.root).expanduser() / path


def dataset_pairs(cfg: Config, dataset: DatasetConfig) -> list[tuple[Path, Path]]:
    """(image, train-id label) paths of a prepared dataset in its own layout."""
    return pairs_of(dataset.kind, dataset_root(cfg, dataset), dataset.split)


def build_train_dataset(
    cfg: Config, dataset: DatasetConfig, labelled: bool = True
) -> SegmentationDataset:
    """A cropping, flipping training dataset.

    `labelled=False` (the unlabelled target domain): crops are drawn without looking at the
    labels (no cat_max_ratio, no class constraint), so target labels never steer training.
    """
    min_crop_pixels = int(cfg.data.sampling.min_pixels * cfg.data.sampling.min_crop_ratio)
    pairs = dataset_pairs(cfg, dataset)
    return SegmentationDataset(
        pairs,
        scale=dataset.scale,
        crop_size=cfg.data.crop_size,
        cat_max_ratio=cfg.data.cat_max_ratio if labelled else 1.0,
        flip=True,
        min_class_pixels=min_crop_pixels if labelled else 0,
        name=dataset.kind,
        resized_copy=_resized_copy(cfg, dataset, pairs),
    )


def build_val_dataset(cfg: Config) -> SegmentationDataset:
    """Whole images at the test scale, labels at full size."""
    pairs = dataset_pairs(cfg, cfg.data.val)
    return SegmentationDataset(
        pairs,
        scale=cfg.data.val.scale,
        crop_size=None,
        name=f"{cfg.data.val.kind}-{cfg.data.val.split}",
        resized_copy=_resized_copy(cfg, cfg.data.val, pairs),
    )


def _resized_copy(
    cfg: Config, dataset: DatasetConfig, pairs: list[tuple[Path, Path]]
) -> tuple[Path, Path] | None:
    """(root, copy) when `omuda prepare --resize` made an up-to-date copy at this scale."""
    root = dataset_root(cfg, dataset)
    copy, why_not = find_resized_copy(root, dataset.scale, pairs)
    if why_not:
        print(f"omuda: warning: {why_not}", file=sys.stderr)
    return None if copy is None else (root, copy)


def source_class_pixels(cfg: Config, dataset: SegmentationDataset) -> np.ndarray:
    """(N,19) per-image class pixel counts of the source, aligned with the dataset order."""
    root = dataset_root(cfg, cfg.data.source)
    stats = load_class_stats(root)
    return class_pixel_counts(stats, dataset.pairs, root)


def source_spatial_prior(cfg: Config, dataset: SegmentationDataset) -> torch.Tensor | None:
    """CAMix's source spatial prior (19,h,w) float32 on the CPU (None unless mix=camix):
    P(class | cell) over the whole source image, from counts cached beside the source's
    class statistics (computed on first use)."""
    adaptation = cfg.adaptation
    if not adaptation.self_training or adaptation.mix != "camix":
        return None
    root = dataset_root(cfg, cfg.data.source)
    labels = [label for _, label in dataset.pairs]
    counts = load_spatial_counts(root, labels, adaptation.camix_prior_size, cfg.data.workers)
    return spatial_prior(torch.from_numpy(counts).float())


def build_source_sampler(
    cfg: Config,
    class_pixels: np.ndarray,
    start: int,
    rank: int,
    world_size: int,
    verbose: bool,
) -> SourceSampler:
    """The configured sampling strategy; prints its class probabilities when verbose."""
    sampling = cfg.data.sampling
    pixel_fraction = class_pixels.sum(0) / max(class_pixels.sum(), 1)
    probabilities = class_probabilities(
        sampling.strategy,
        pixel_fraction,
        foreground_classes=cfg.data.thing_classes,
        background_classes=tuple(
            c for c in range(cfg.model.num_classes) if c not in cfg.data.thing_classes
        )
        or STUFF_CLASSES,
        rcs_temperature=sampling.rcs_temperature,
        cam_temperature_foreground=sampling.cam_temperature_foreground,
        cam_temperature_background=sampling.cam_temperature_background,
        foreground_probability=sampling.foreground_probability,
    )
    if verbose and probabilities is not None:
        print(
            f"source sampling '{sampling.strategy}': each source crop is drawn for one class,"
            " chosen with these probabilities (rare classes more often than their pixel share)"
        )
        print(format_class_probabilities(probabilities, CLASS_NAMES))
    return SourceSampler(
        class_pixels,
        sampling.strategy,
        seed=cfg.train.seed,
        probabilities=probabilities,
        min_pixels=sampling.min_pixels,
        start=start,
        rank=rank,
        world_size=world_size,
    )


def build_target_sampler(
    cfg: Config, num_images: int, start: int, rank: int, world_size: int
) -> TargetSampler:
    """Epoch-wise shuffled target images, sharded over ranks, resumable at `start`."""
    # A different seed stream from the source sampler, so the pairs are not aligned.
    return TargetSampler(
        num_images, seed=cfg.train.seed + 7919, start=start, rank=rank, world_size=world_size
    )


def build_student(cfg: Config) -> nn.Module:
    """The segmentor to train (or to evaluate), on the CPU."""
    model = cfg.model
    return build_segmentor(
        model.backbone,
        num_classes=model.num_classes,
        decoder_channels=model.decoder_channels,
        drop_path_rate=model.drop_path_rate,
        dropout=model.dropout,
        pretrained=model.pretrained,
        head_init=model.head_init,
    )


def build_imagenet_backbone(cfg: Config) -> nn.Module:
    """The frozen ImageNet feature extractor of FD/FDM: eval mode, no gradients."""
    backbone = build_backbone(cfg.model.backbone, cfg.model.pretrained, drop_path_rate=0.0)
    backbone.eval()
    for param in backbone.parameters():
        param.requires_grad_(False)
    return backbone


@dataclass
class TrainingModels:
    """Everything the training step updates or reads, built together."""

    student: nn.Module
    teacher: nn.Module | None  # EMA teacher, with self-training
    imagenet: nn.Module | None  # frozen ImageNet backbone, with FD / FDM
    optimizer: torch.optim.AdamW


def build_training_models(
    cfg: Config, device: torch.device, sync_batchnorm: bool = False
) -> TrainingModels:
    """Student (on `device`), its EMA teacher, the frozen ImageNet extractor and AdamW.

    The caller seeds the RNG first so every rank builds identical initial weights.
    """
    student = build_student(cfg).to(device)
    if sync_batchnorm:
        student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
    if cfg.train.channels_last:
        student = student.to(memory_format=torch.channels_last)
    adaptation = cfg.adaptation
    teacher = None
    if adaptation.self_training:
        batch_statistics = adaptation.teacher_batchnorm == "batch"
        teacher = make_teacher(student, batchnorm_batch_statistics=batch_statistics)
    imagenet = None
    if adaptation.feature_distillation != "none":
        imagenet = build_imagenet_backbone(cfg).to(device)
    train = cfg.train
    optimizer = build_optimizer(
        student,
        train.lr,
        train.weight_decay,
        train.head_lr_mult,
        train.betas,
        head_norm_decay=train.head_norm_decay,
    )
    return TrainingModels(student, teacher, imagenet, optimizer)
