"""DAFormer decoder: per-level linear embeddings fused by a depth-wise separable ASPP.

Module and parameter names equal those of DAFormer's `DAFormerHead` (mmseg 0.16 + mmcv
ConvModule naming: `.conv` / `.bn`), so the `decode_head.*` part of released DAFormer and
MIC checkpoints loads as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LinearEmbedding(nn.Module):
    """Per-pixel linear projection over channels: (B,C_in,H,W) -> (B,C_out,H,W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """x (B,C_in,H,W) -> (B,C_out,H,W)."""
        return self.proj(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvBNReLU(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU, named `conv` / `bn` like mmcv's ConvModule."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        super().__init__()
        padding = dilation * (kernel_size // 2)
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """x (B,C_in,H,W) -> (B,C_out,H,W)."""
        return F.relu(self.bn(self.conv(x)))


class DepthwiseSeparableConvBNReLU(nn.Module):
    """Dilated 3x3 depth-wise ConvBNReLU, then 1x1 point-wise ConvBNReLU."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__()
        self.depthwise_conv = ConvBNReLU(
            in_channels, in_channels, 3, dilation=dilation, groups=in_channels
        )
        self.pointwise_conv = ConvBNReLU(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """x (B,C_in,H,W) -> (B,C_out,H,W)."""
        return self.pointwise_conv(self.depthwise_conv(x))


class ContextAwareFusion(nn.Module):
    """DAFormer's fusion: parallel ASPP branches (1x1 for rate 1, separable 3x3 otherwise),
    concatenated and reduced by a 3x3 bottleneck. (B,C_in,H,W) -> (B,C_out,H,W)."""

    def __init__(self, in_channels: int, out_channels: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.aspp_modules = nn.ModuleList(
            ConvBNReLU(in_channels, out_channels, 1)
            if rate == 1
            else DepthwiseSeparableConvBNReLU(in_channels, out_channels, rate)
            for rate in dilations
        )
        self.bottleneck = ConvBNReLU(len(dilations) * out_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        """x (B,C_in,H,W) -> (B,C_out,H,W)."""
        return self.bottleneck(torch.cat([branch(x) for branch in self.aspp_modules], dim=1))


class DAFormerHead(nn.Module):
    """Multi-level features -> class logits at stride 4.

    Each level is embedded to `embed_dim` channels, upsampled to the stride-4 grid, the
    levels are concatenated and fused by `ContextAwareFusion`, then dropout and a 1x1
    classifier give the logits.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int = 19,
        embed_dim: int = 256,
        aspp_dilations: Sequence[int] = (1, 6, 12, 18),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embed_layers = nn.ModuleList(LinearEmbedding(c, embed_dim) for c in in_channels)
        self.fuse_layer = ContextAwareFusion(
            len(in_channels) * embed_dim, embed_dim, aspp_dilations
        )
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(embed_dim, num_classes, 1)
        # mmseg's decode-head initialisation of the classifier.
        nn.init.normal_(self.conv_seg.weight, 0.0, 0.01)
        nn.init.zeros_(self.conv_seg.bias)

    def forward(self, features: list[Tensor]) -> tuple[Tensor, Tensor]:
        """features: [(B,C_i,H/s_i,W/s_i)], first at stride 4 ->
        (logits (B,K,H/4,W/4), fused (B,embed_dim,H/4,W/4) before dropout and classifier)."""
        target_size = features[0].shape[2:]
        embedded = []
        for embed, feature in zip(self.embed_layers, features, strict=True):
            level = embed(feature)
            if level.shape[2:] != target_size:
                level = F.interpolate(level, size=target_size, mode="bilinear", align_corners=False)
            embedded.append(level)
        fused = self.fuse_layer(torch.cat(embedded, dim=1))
        return self.conv_seg(self.dropout(fused)), fused
