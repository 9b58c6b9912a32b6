"""Typed experiment configuration: dataclasses with defaults, loaded from YAML.

One place holds every default (the paper's GTA5->Cityscapes settings); a YAML file lists
only what differs, and `KEY=VALUE` overrides use dotted names (`train.iters=100`).
Unknown keys and wrong types are rejected with the list of valid names, numbers outside
their range (`omuda.config_ranges`) with the range; `omuda.config_checks` holds these checks
and the cross-field ones. No inheritance between files and no code in configs; YAML is read
by `omuda.config_yaml` (plain data, bounded size).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from omuda.config_checks import apply_updates, validate
from omuda.config_yaml import load_yaml, read_yaml_file
from omuda.data.io import atomic_write_bytes
from omuda.data.labels import THING_CLASSES
from omuda.errors import OmudaError, shorten


@dataclass
class DatasetConfig:
    """One dataset: its layout (`kind`), folder and the resize applied when loading."""

    kind: str = "gta"  # gta | synthia | cityscapes
    path: str = "gta"  # relative to data.root unless absolute
    split: str = "train"  # cityscapes only
    scale: tuple[int, int] = (1280, 720)  # (width, height), keep-ratio resize


@dataclass
class SamplingConfig:
    """How source images are drawn (SPEC 4.8 and 5: uniform, fixed_ratio, rcs, cam)."""

    strategy: str = "rcs"
    rcs_temperature: float = 0.01
    min_pixels: int = 3000  # of a class in an image, counted at label resolution (stats)
    min_crop_ratio: float = 0.5  # the crop must hold min_pixels * this of the class
    cam_temperature_foreground: float = 0.7
    cam_temperature_background: float = 1.0
    foreground_probability: float | None = None  # None: |K_f|/K (cam) or 0.5 (fixed_ratio)


@dataclass
class DataConfig:
    """Source, target and validation datasets, crops, batch and source sampling."""

    root: str = "data"
    source: DatasetConfig = field(default_factory=DatasetConfig)
    target: DatasetConfig = field(
        default_factory=lambda: DatasetConfig("cityscapes", "cityscapes", "train", (1024, 512))
    )
    val: DatasetConfig = field(
        default_factory=lambda: DatasetConfig("cityscapes", "cityscapes", "val", (1024, 512))
    )
    crop_size: tuple[int, int] = (512, 512)  # (height, width)
    cat_max_ratio: float = 0.75
    batch_size: int = 2  # per process, for source and target each
    workers: int = 4
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    thing_classes: tuple[int, ...] = THING_CLASSES  # K_f, foreground


@dataclass
class ModelConfig:
    """Segmentor: backbone (MiT-B0..B5 or EfficientNet-Lite0) + DAFormer head."""

    backbone: str = "mit_b5"  # mit_b0..mit_b5 | efficientnet_lite0
    pretrained: str | None = None  # weights file (MiT), "imagenet" (EfficientNet-Lite0) or None
    decoder_channels: int = 256
    num_classes: int = 19
    drop_path_rate: float = 0.1
    dropout: float = 0.1
    head_init: str = "mmcv"  # mmcv (DAFormer: ConvModule's Kaiming fan_out) | pytorch defaults


@dataclass
class AdaptationConfig:
    """Which mechanisms the training step runs; each can be switched off on its own."""

    self_training: bool = True  # EMA teacher, pseudo-labels, target loss L_T
    ema_alpha: float = 0.999
    # The teacher's BatchNorm on the clean target batch: "batch" statistics (DAFormer's EMA
    # model stays in train mode) or the student's "running" statistics.
    teacher_batchnorm: str = "batch"
    pseudo_threshold: float = 0.968
    pseudo_per_image: bool = False  # DAFormer: one confidence weight per batch
    pseudo_ignore_top: int = 15  # rows of the crop given weight 0 (DAFormer, 512 crops)
    pseudo_ignore_bottom: int = 120
    source_loss_average: str = "all"  # CE mean over all pixels (mmseg) | labelled ones only
    mix: str = "classmix"  # classmix | camix (CAMix after camix_warmup_iters) | none
    classmix_classes: str = "batch"  # batch (DACS: the batch's label set, 255 included) | image
    augment: bool = True  # colour jitter + blur on the mixed / masked image
    color_jitter_strength: float = 0.2
    color_jitter_p: float = 0.8  # probability to jitter (DACS: jitter when U(0,1) > 0.2)
    blur_p: float = 0.5
    augment_decision: str = "batch"  # jitter / blur on or off: per batch (DACS) | per image
    color_jitter_formulas: str = "kornia"  # kornia (0.5.8, random step order) | torchvision
    feature_distillation: str = "fd"  # none | fd (DAFormer) | fdm (OMUDA relational KD)
    fd_lambda: float = 0.005
    fd_min_ratio: float = 0.75
    kd_lambda: float = 0.01
    kd_max_cells: int = 256
    kd_features: str = "backbone"  # backbone stage | decoder (fused map, pooled to it)
    # FDM's samples: "cells" (up to kd_max_cells foreground stride-32 cells of the batch) or
    # "images" (eq. 8: one masked feature map per source image, the batch's images related).
    kd_samples: str = "cells"
    # How RKD combines pairs and triplets: "mean" (RKD's code) or "sum" (eqs. 8, 9, 11).
    kd_reduction: str = "mean"
    # Backbone stage (1-4) whose cells FD and FDM compare. DAFormer's feature distance uses 4
    # (stride 32: a 16x16 grid on 512 crops); small crops reach that grid at a lower stage.
    distill_stage: int = 4
    masking: str = "none"  # none | block (MIC) | cam | random | grid
    mask_ratio: float = 0.7
    mask_block_size: int = 32  # MIC block; random-patch size; grid unit
    mask_grid: str = "round"  # blocks: round(H/block) resized (MIC) | ceil, cut at the border
    cam_fine_block: int = 16
    cam_coarse_block: int = 32
    mask_loss_weight: float = 1.0
    # BatchNorm in the masked forward: "train" as any training forward (MIC); "batch" the
    # batch's statistics, running ones untouched; "running" the running ones (as at test time).
    masked_batchnorm: str = "train"
    class_decoupling: str = "none"  # none | difficulty | reliability
    cdm_momentum: float = 0.99
    # Exponent g of the per-class normaliser n_k^g: 1 = eq. 13 (mean of class means),
    # 0 = class weights on the plain pixel mean.
    cdm_class_balance: float = 1.0
    # FST-D (Du et al., NeurIPS 2022): before each real step the student takes this many
    # virtual optimiser steps on the batch and the EMA teacher averages each of them, so its
    # pseudo-labels come from "the future"; 0 = off. Restored afterwards: the "weights"
    # (FST's code; optimiser moments and BatchNorm statistics keep the virtual steps) or
    # "all" (the optimiser state and buffers too: the real step as without look-ahead).
    lookahead_steps: int = 0
    lookahead_restore: str = "weights"
    # CAMix (Zhou et al., TCSVT 2022), with mix = "camix": ClassMix until camix_warmup_iters,
    # then target pixels of the contextual mask (from the source spatial prior on a
    # camix_prior_size grid, (height, width)) pasted onto the source image. With
    # camix_significance the mixed loss is the paper's significance-weighted CE (teacher
    # entropy below (start + (1 - start) * ramp) ln K, ramp over camix_significance_rampup_iters);
    # false = the public code, whose loss reduces to the plain weighted CE.
    camix_warmup_iters: int = 0
    camix_prior_size: tuple[int, int] = (128, 256)
    camix_significance: bool = True
    camix_significance_rampup_iters: int = 0
    camix_significance_start: float = 0.75


@dataclass
class TrainConfig:
    """Schedule, optimiser, intervals and execution (device, precision, compile)."""

    iters: int = 40000
    seed: int = 0
    lr: float = 6e-5
    head_lr_mult: float = 10.0
    weight_decay: float = 0.01
    head_norm_decay: bool = True  # decay the head's BatchNorms (DAFormer: mmcv's "head" key first)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_iters: int = 1500
    warmup_ratio: float = 1e-6
    poly_power: float = 1.0
    checkpoint_interval: int = 4000
    eval_interval: int = 4000
    log_interval: int = 50
    amp: str = "auto"  # auto (bf16 on CUDA) | bf16 | none
    compile: bool = False
    channels_last: bool = False
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads for torch; 0 = leave torch's default


@dataclass
class EvalConfig:
    """Inference on the validation split: whole image or sliding window (height, width)."""

    mode: str = "whole"  # whole | slide
    crop_size: tuple[int, int] = (512, 512)
    stride: tuple[int, int] = (341, 341)
    # Opt-in diagnostic for `omuda report` (never feeds training): at each evaluation, the
    # EMA teacher's per-class IoU on the target train split's labels (pseudo-label quality).
    pseudo_label_diagnostic: bool = False
    pseudo_label_images: int = 500  # target train images it scores, evenly spaced; 0 = all


@dataclass
class Config:
    """A whole experiment; `load_config` builds it from YAML plus overrides."""

    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


CHOICES: dict[str, tuple[str, ...]] = {
    "data.source.kind": ("gta", "synthia", "cityscapes"),
    "data.target.kind": ("gta", "synthia", "cityscapes"),
    "data.val.kind": ("gta", "synthia", "cityscapes"),
    "data.sampling.strategy": ("uniform", "fixed_ratio", "rcs", "cam"),
    "model.backbone": tuple(f"mit_b{i}" for i in range(6)) + ("efficientnet_lite0",),
    "model.head_init": ("mmcv", "pytorch"),
    "adaptation.source_loss_average": ("all", "labelled"),
    "adaptation.mix": ("classmix", "camix", "none"),
    "adaptation.classmix_classes": ("batch", "image"),
    "adaptation.augment_decision": ("batch", "image"),
    "adaptation.color_jitter_formulas": ("kornia", "torchvision"),
    "adaptation.mask_grid": ("round", "ceil"),
    "adaptation.teacher_batchnorm": ("batch", "running"),
    "adaptation.feature_distillation": ("none", "fd", "fdm"),
    "adaptation.kd_features": ("backbone", "decoder"),
    "adaptation.kd_samples": ("cells", "images"),
    "adaptation.kd_reduction": ("sum", "mean"),
    "adaptation.masking": ("none", "block", "cam", "random", "grid"),
    "adaptation.masked_batchnorm": ("train", "batch", "running"),
    "adaptation.class_decoupling": ("none", "difficulty", "reliability"),
    "adaptation.lookahead_restore": ("weights", "all"),
    "train.amp": ("auto", "bf16", "none"),
    "train.device": ("auto", "cpu", "cuda"),
    "eval.mode": ("whole", "slide"),
}


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    node = result
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return result


def parse_override(text: str) -> tuple[str, Any]:
    """`"train.iters=100"` -> `("train.iters", 100)`; the value is parsed as YAML."""
    if "=" not in text:
        raise OmudaError(f"override {shorten(text)} must look like KEY=VALUE, e.g. train.iters=100")
    key, raw = text.split("=", 1)
    try:
        value = load_yaml(raw, f"the value of {shorten(key.strip())}") if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def config_from_dict(raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a validated `Config` from a nested dict plus `KEY=VALUE` overrides."""
    config = Config()
    apply_updates(config, raw, CHOICES)
    for text in overrides:
        key, value = parse_override(text)
        apply_updates(config, _nest(key, value), CHOICES)
    validate(config)
    return config


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config file (only keys that differ from the defaults) and apply overrides."""
    path = Path(path)
    raw = read_yaml_file(path) or {}
    if not isinstance(raw, dict):
        raise OmudaError(f"{path} must hold a mapping of config sections")
    return config_from_dict(raw, overrides)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) for YAML files and checkpoints."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config as YAML (every field, defaults included), atomically: a run
    stopped mid-write leaves the previous file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    atomic_write_bytes(path, text.encode("utf-8"))
