"""Encoder-decoder segmentor (backbone + DAFormer head) and the factories that build it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from omuda.errors import OmudaError
from omuda.models.daformer_head import DAFormerHead
from omuda.models.efficientnet_lite import efficientnet_lite0
from omuda.models.mit import MixTransformer, mit_b0, mit_b1, mit_b2, mit_b3, mit_b4, mit_b5
from omuda.models.weights import load_backbone_weights, load_state_dict_file

MIT_FACTORIES: dict[str, Callable[[float], MixTransformer]] = {
    "mit_b0": mit_b0,
    "mit_b1": mit_b1,
    "mit_b2": mit_b2,
    "mit_b3": mit_b3,
    "mit_b4": mit_b4,
    "mit_b5": mit_b5,
}
BACKBONE_NAMES: tuple[str, ...] = (*MIT_FACTORIES, "efficientnet_lite0")


class SegOutput(NamedTuple):
    """What a Segmentor returns."""

    logits: Tensor  # (B,K,H,W) at input resolution
    features: list[Tensor] | None  # backbone maps, strides 4/8/16/32, when asked for
    fused: Tensor | None  # (B,embed_dim,H/4,W/4) decoder map before the classifier


class Segmentor(nn.Module):
    """Backbone + DAFormer head; attribute names match DAFormer checkpoints (`backbone`,
    `decode_head`)."""

    def __init__(self, backbone: nn.Module, decode_head: DAFormerHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.decode_head = decode_head

    def forward(self, images: Tensor, return_features: bool = False) -> SegOutput:
        """images (B,3,H,W) float, ImageNet-normalised RGB -> SegOutput with logits
        (B,K,H,W); `features` and `fused` only when return_features, else None."""
        features = self.backbone(images)
        logits, fused = self.decode_head(features)
        logits = F.interpolate(logits, size=images.shape[2:], mode="bilinear", align_corners=False)
        if return_features:
            return SegOutput(logits, features, fused)
        return SegOutput(logits, None, None)


def build_backbone(
    name: str, pretrained: str | None = None, drop_path_rate: float = 0.1
) -> nn.Module:
    """Backbone by name; `pretrained` is a weights file for MiT or "imagenet" for the
    packaged EfficientNet-Lite0 weights (None = random init). The module returns four maps
    (B,C_i,H/s_i,W/s_i) and has `out_channels` and `strides`."""
    if name == "efficientnet_lite0":
        if pretrained not in (None, "imagenet"):
            raise OmudaError(
                f"efficientnet_lite0 takes pretrained='imagenet' or none, not {pretrained!r}."
            )
        return efficientnet_lite0(
            pretrained=pretrained == "imagenet", drop_path_rate=drop_path_rate
        )
    if name not in MIT_FACTORIES:
        raise OmudaError(f"Unknown backbone {name!r}; valid names: {', '.join(BACKBONE_NAMES)}.")
    if pretrained == "imagenet":
        raise OmudaError(
            f"{name} has no built-in ImageNet weights; pass the path of SegFormer's "
            f"{name}.pth or a Hugging Face nvidia/{name.replace('_', '-')} checkpoint."
        )
    backbone = MIT_FACTORIES[name](drop_path_rate)
    if pretrained is not None:
        report = load_backbone_weights(
            backbone, load_state_dict_file(pretrained), source=str(Path(pretrained))
        )
        if report.missing:
            raise OmudaError(f"{pretrained} leaves {name} incomplete: {report.summary()}")
    return backbone


def build_segmentor(
    backbone: str,
    num_classes: int = 19,
    decoder_channels: int = 256,
    drop_path_rate: float = 0.1,
    dropout: float = 0.1,
    pretrained: str | None = None,
    head_init: str = "mmcv",
) -> Segmentor:
    """Segmentor = backbone (by name, see BACKBONE_NAMES) + DAFormer head with
    `decoder_channels` embedding width (`head_init`: see DAFormerHead);
    images (B,3,H,W) -> logits (B,num_classes,H,W)."""
    encoder = build_backbone(backbone, pretrained=pretrained, drop_path_rate=drop_path_rate)
    head = DAFormerHead(
        encoder.out_channels,
        num_classes=num_classes,
        embed_dim=decoder_channels,
        dropout=dropout,
        init=head_init,
    )
    return Segmentor(encoder, head)
