"""Mix Transformer (MiT-B0..B5), the SegFormer encoder that DAFormer uses as its backbone.

Parameter names follow SegFormer's `mix_transformer.py` exactly (`patch_embed1.proj`,
`block1.0.attn.kv`, `norm1`, ...) so that SegFormer's ImageNet files `mit_bN.pth` and the
`model.backbone.*` part of DAFormer/MIC checkpoints load without renaming.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# SegFormer builds the block and stage norms with eps 1e-6; the patch-embedding norm and the
# attention's reduced-sequence norm keep nn.LayerNorm's default (1e-5) there, and so do we,
# so that pretrained weights give exactly the original activations.
BLOCK_NORM_EPS = 1e-6
INNER_NORM_EPS = 1e-5


def drop_path(x: Tensor, drop_prob: float, training: bool) -> Tensor:
    """Stochastic depth: zero whole samples of a residual branch, rescale the kept ones.

    x (B,...) -> (B,...); each sample survives with probability 1 - drop_prob and is then
    divided by that probability so the expectation is unchanged.
    """
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1.0 - drop_prob
    keep_mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep_prob)
    return x * keep_mask / keep_prob


class DropPath(nn.Module):
    """Module form of `drop_path`: (B,...) -> (B,...)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        """x (B,...) -> (B,...)."""
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}"


class OverlapPatchEmbed(nn.Module):
    """Strided convolution with overlapping windows, then LayerNorm over channels.

    (B,C_in,H,W) -> tokens (B,H'*W',C_out) plus the new grid size (H', W').
    """

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            in_channels, embed_dim, patch_size, stride=stride, padding=patch_size // 2
        )
        self.norm = nn.LayerNorm(embed_dim, eps=INNER_NORM_EPS)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        """x (B,C_in,H,W) -> (tokens (B,H'*W',C_out), H', W')."""
        x = self.proj(x)
        height, width = x.shape[2:]
        tokens = self.norm(x.flatten(2).transpose(1, 2))
        return tokens, height, width


class EfficientSelfAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from a spatially reduced sequence.

    With sr_ratio > 1 a strided conv (kernel = stride = sr_ratio) shrinks the key/value grid
    by sr_ratio per side, making attention affordable at stride 4.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim, eps=INNER_NORM_EPS)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        """x (B,N,C) tokens of an HxW grid (N = H*W) -> (B,N,C)."""
        batch, num_tokens, channels = x.shape
        head_dim = channels // self.num_heads
        q = self.q(x).reshape(batch, num_tokens, self.num_heads, head_dim).transpose(1, 2)
        if self.sr_ratio > 1:
            grid = x.transpose(1, 2).reshape(batch, channels, height, width)
            x = self.norm(self.sr(grid).flatten(2).transpose(1, 2))
        kv = self.kv(x).reshape(batch, -1, 2, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, kv[0], kv[1])
        return self.proj(attended.transpose(1, 2).reshape(batch, num_tokens, channels))


class DepthwiseConvTokens(nn.Module):
    """3x3 depth-wise conv applied to tokens laid out on their HxW grid: (B,N,C) -> (B,N,C).

    The conv sits at `.dwconv` because SegFormer's parameter names nest it one level deeper.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        """x (B,N,C) tokens of an HxW grid (N = H*W) -> (B,N,C)."""
        batch, _, channels = x.shape
        grid = x.transpose(1, 2).reshape(batch, channels, height, width)
        return self.dwconv(grid).flatten(2).transpose(1, 2)


class MixFFN(nn.Module):
    """Linear -> 3x3 depth-wise conv -> GELU -> Linear; the conv supplies positional cues."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = DepthwiseConvTokens(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        """x (B,N,C) tokens of an HxW grid -> (B,N,C)."""
        return self.fc2(F.gelu(self.dwconv(self.fc1(x), height, width)))


class MixTransformerBlock(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mix_ffn(norm2(x))."""

    def __init__(
        self, dim: int, num_heads: int, sr_ratio: int, mlp_ratio: float, drop_path_prob: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.attn = EfficientSelfAttention(dim, num_heads, sr_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.mlp = MixFFN(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path_prob)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        """x (B,N,C) -> (B,N,C)."""
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x), height, width))


class MixTransformer(nn.Module):
    """Hierarchical MiT encoder: image (B,3,H,W) -> four NCHW maps at strides 4/8/16/32.

    Map i has `out_channels[i]` channels and spatial size ceil(H/stride) x ceil(W/stride)
    (any H, W work; no multiple of 32 is needed). Input is ImageNet-normalised RGB.
    """

    strides: tuple[int, ...] = (4, 8, 16, 32)

    def __init__(
        self,
        embed_dims: Sequence[int],
        depths: Sequence[int],
        num_heads: Sequence[int] = (1, 2, 5, 8),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        self.out_channels: tuple[int, ...] = tuple(embed_dims)
        self.depths: tuple[int, ...] = tuple(depths)
        # Stochastic depth grows linearly over all blocks of all stages.
        drop_probs = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        # Registration order follows SegFormer (all patch embeddings, then blocks and norms
        # per stage) so saved state dicts list their keys in the original order.
        stage_inputs = (3, *embed_dims[:-1])
        stage_dims = zip(stage_inputs, embed_dims, strict=True)
        for stage, (in_channels, dim) in enumerate(stage_dims, start=1):
            patch_size, stride = (7, 4) if stage == 1 else (3, 2)
            embed = OverlapPatchEmbed(in_channels, dim, patch_size, stride)
            setattr(self, f"patch_embed{stage}", embed)
        first_block = 0
        for stage, (dim, depth) in enumerate(zip(embed_dims, depths, strict=True), start=1):
            blocks = nn.ModuleList(
                MixTransformerBlock(
                    dim,
                    num_heads[stage - 1],
                    sr_ratios[stage - 1],
                    mlp_ratio,
                    drop_probs[first_block + j],
                )
                for j in range(depth)
            )
            setattr(self, f"block{stage}", blocks)
            setattr(self, f"norm{stage}", nn.LayerNorm(dim, eps=BLOCK_NORM_EPS))
            first_block += depth
        self.apply(_init_weights)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x (B,3,H,W) -> [(B,C1,H/4,W/4), (B,C2,H/8,W/8), (B,C3,H/16,W/16), (B,C4,H/32,W/32)]."""
        features = []
        for stage in range(1, 5):
            tokens, height, width = getattr(self, f"patch_embed{stage}")(x)
            for block in getattr(self, f"block{stage}"):
                tokens = block(tokens, height, width)
            tokens = getattr(self, f"norm{stage}")(tokens)
            x = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width).contiguous()
            features.append(x)
        return features


def _init_weights(module: nn.Module) -> None:
    """SegFormer's initialisation: truncated-normal linears, He-style (fan-out) convs."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
        fan_out //= module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def mit_b0(drop_path_rate: float = 0.1) -> MixTransformer:
    """MiT-B0: channels 32/64/160/256, depths 2/2/2/2 (3.3M parameters)."""
    return MixTransformer((32, 64, 160, 256), (2, 2, 2, 2), drop_path_rate=drop_path_rate)


def mit_b1(drop_path_rate: float = 0.1) -> MixTransformer:
    """MiT-B1: channels 64/128/320/512, depths 2/2/2/2."""
    return MixTransformer((64, 128, 320, 512), (2, 2, 2, 2), drop_path_rate=drop_path_rate)


def mit_b2(drop_path_rate: float = 0.1) -> MixTransformer:
    """MiT-B2: channels 64/128/320/512, depths 3/4/6/3."""
    return MixTransformer((64, 128, 320, 512), (3, 4, 6, 3), drop_path_rate=drop_path_rate)


def mit_b3(drop_path_rate: float = 0.1) -> MixTransformer:
    """MiT-B3: channels 64/128/320/512, depths 3/4/18/3."""
    return MixTransformer((64, 128, 320, 512), (3, 4, 18, 3), drop_path_rate=drop_path_rate)


def mit_b4(drop_path_rate: float = 0.1) -> MixTransformer:
    """MiT-B4: channels 64/128/320/512, depths 3/8/27/3."""
    return MixTransformer((64, 128, 320, 512), (3, 8, 27, 3), drop_path_rate=drop_path_rate)


def mit_b5(drop_path_rate: float = 0.1) -> MixTransformer:
    """MiT-B5 (DAFormer's backbone): channels 64/128/320/512, depths 3/6/40/3."""
    return MixTransformer((64, 128, 320, 512), (3, 6, 40, 3), drop_path_rate=drop_path_rate)
