"""DAFormer decoder: per-level linear embeddings fused by a depth-wise separable ASPP.

Module and parameter names equal those of DAFormer's `DAFormerHead` (mmseg 0.16 + mmcv
ConvModule naming: `.conv` / `.bn`), so the `decode_head.*` part of released DAFormer and
MIC checkpoints loads as is.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HEAD_INITS: tuple[str, ...] = ("mmcv", "pytorch")


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


class _DepthwiseConv3x3(torch.autograd.Function):
    """Dilated 3x3 depth-wise convolution whose backward is two plain convolutions.

    oneDNN's own depth-wise backward is its slowest kernel here; written as a depth-wise
    conv of the output gradient with the flipped kernel (input gradient) and a grouped conv
    of the padded input with the output gradient (weight gradient), the backward takes
    about half the time (docs/PERFORMANCE.md). x (B,C,H,W), weight (C,1,3,3) -> (B,C,H,W).
    """

    @staticmethod
    def forward(ctx: typing.Any, x: Tensor, weight: Tensor, dilation: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.dilation = dilation
        channels = x.shape[1]
        return F.conv2d(x, weight, padding=dilation, dilation=dilation, groups=channels)

    @staticmethod
    def backward(ctx: typing.Any, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        x, weight = ctx.saved_tensors
        d = ctx.dilation
        batch, channels, height, width = x.shape
        grad_out = grad_out.contiguous()
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            flipped = weight.flip(-1, -2)
            grad_x = F.conv2d(grad_out, flipped, padding=d, dilation=d, groups=channels)
        if ctx.needs_input_grad[1]:
            # grad_w[c,a,b] = sum_{n,i,j} x_pad[n,c,i+d*a,j+d*b] * grad_out[n,c,i,j]: a conv of
            # each padded input channel with its own output gradient, sampled at stride d.
            padded = F.pad(x, (d, d, d, d)).reshape(1, batch * channels, height + 2 * d, -1)
            kernels = grad_out.reshape(batch * channels, 1, height, width)
            per_image = F.conv2d(padded, kernels, stride=d, groups=batch * channels)
            grad_weight = per_image.reshape(batch, channels, 1, 3, 3).sum(0).to(weight.dtype)
        return grad_x, grad_weight, None


class DepthwiseConvBNReLU(ConvBNReLU):
    """Dilated 3x3 depth-wise ConvBNReLU; on CPU with the faster backward of
    `_DepthwiseConv3x3` (same parameters, same result). (B,C,H,W) -> (B,C,H,W)."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__(channels, channels, 3, dilation=dilation, groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        """x (B,C,H,W) -> (B,C,H,W)."""
        if x.device.type != "cpu":
            return super().forward(x)
        # NCHW weight: a channels-last one (train.channels_last) makes the output channels-last.
        weight = self.conv.weight.contiguous()
        if torch.is_autocast_enabled("cpu"):
            dtype = torch.get_autocast_dtype("cpu")
            x, weight = x.to(dtype), weight.to(dtype)
        with torch.autocast("cpu", enabled=False):
            out = _DepthwiseConv3x3.apply(x.contiguous(), weight, self.conv.dilation[0])
        return F.relu(self.bn(out))


class DepthwiseSeparableConvBNReLU(nn.Module):
    """Dilated 3x3 depth-wise ConvBNReLU, then 1x1 point-wise ConvBNReLU."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__()
        self.depthwise_conv = DepthwiseConvBNReLU(in_channels, dilation)
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

    init "mmcv" (DAFormer): the fusion's convolutions are initialised as mmcv's ConvModule
    does (Kaiming normal, fan_out, ReLU gain; BatchNorm weight 1, bias 0); "pytorch": the
    layers' own defaults. Either way the embedding Linears keep PyTorch's default (as in
    DAFormer) and the classifier gets mmseg's N(0, 0.01^2), bias 0.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int = 19,
        embed_dim: int = 256,
        aspp_dilations: Sequence[int] = (1, 6, 12, 18),
        dropout: float = 0.1,
        init: str = "mmcv",
    ) -> None:
        super().__init__()
        if init not in HEAD_INITS:
            raise ValueError(f"init must be one of {HEAD_INITS}, got {init!r}")
        self.embed_layers = nn.ModuleList(LinearEmbedding(c, embed_dim) for c in in_channels)
        self.fuse_layer = ContextAwareFusion(
            len(in_channels) * embed_dim, embed_dim, aspp_dilations
        )
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(embed_dim, num_classes, 1)
        if init == "mmcv":
            for module in self.fuse_layer.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
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
            if level.device.type == "cpu":
                # The embedding leaves a channels-last view; oneDNN's dilated depth-wise convs
                # in the fusion are 2-4x slower on channels-last input (docs/PERFORMANCE.md).
                level = level.contiguous()
            if level.shape[2:] != target_size:
                level = F.interpolate(level, size=target_size, mode="bilinear", align_corners=False)
            embedded.append(level)
        fused = self.fuse_layer(torch.cat(embedded, dim=1))
        return self.conv_seg(self.dropout(fused)), fused
