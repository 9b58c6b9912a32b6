"""Backbones, DAFormer head and segmentor: names, shapes, gradients, real ImageNet weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from omuda.errors import OmudaError
from omuda.models import (
    BACKBONE_NAMES,
    DAFormerHead,
    build_backbone,
    build_segmentor,
    efficientnet_lite0,
    mit_b0,
    mit_b5,
)
from omuda.models.efficientnet_lite import imagenet_weights_path
from omuda.models.mit import drop_path

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _reference(shared_dir: Path, name: str) -> dict:
    path = shared_dir / "reference" / name
    if not path.is_file():
        pytest.skip(f"reference key list {path} not found")
    return json.loads(path.read_text())


@pytest.mark.parametrize("factory", [mit_b0, mit_b5], ids=["mit_b0", "mit_b5"])
def test_mit_state_dict_equals_segformer_names_and_shapes(factory, shared_dir):
    reference = _reference(shared_dir, f"{factory.__name__}_keys.json")
    backbone = factory()
    ours = {key: list(tensor.shape) for key, tensor in backbone.state_dict().items()}
    assert list(ours) == list(reference)
    assert ours == reference
    millions = {"mit_b0": 3.3, "mit_b5": 81.4}[factory.__name__]
    assert sum(p.numel() for p in backbone.parameters()) / 1e6 == pytest.approx(millions, abs=0.1)


@pytest.mark.parametrize("height,width", [(128, 256), (100, 60)])
def test_mit_features_at_strides_for_any_input_size(height, width):
    backbone = mit_b0().eval()
    with torch.no_grad():
        features = backbone(torch.randn(1, 3, height, width))
    assert backbone.strides == (4, 8, 16, 32)
    for feature, channels, stride in zip(
        features, backbone.out_channels, backbone.strides, strict=True
    ):
        assert feature.shape == (1, channels, math.ceil(height / stride), math.ceil(width / stride))


def test_mit_drop_path_grows_linearly_over_all_blocks():
    backbone = mit_b0(drop_path_rate=0.1)
    probs = [
        block.drop_path.drop_prob
        for stage in range(1, 5)
        for block in getattr(backbone, f"block{stage}")
    ]
    assert probs == pytest.approx(torch.linspace(0, 0.1, 8).tolist())


def test_drop_path_keeps_whole_samples_and_rescales():
    x = torch.ones(1000, 3)
    out = drop_path(x, 0.25, training=True)
    kept = out[:, 0] != 0
    assert torch.equal(out[kept], torch.full_like(out[kept], 1 / 0.75))
    assert (out[~kept] == 0).all()
    assert 0.65 < kept.float().mean() < 0.85
    assert torch.equal(drop_path(x, 0.25, training=False), x)


@pytest.mark.parametrize("name", ["mit_b0", "efficientnet_lite0"])
def test_small_backbones_forward_backward(name):
    backbone = build_backbone(name, pretrained=None)
    features = backbone(torch.randn(2, 3, 64, 64))
    assert [f.shape[1] for f in features] == list(backbone.out_channels)
    assert [64 // f.shape[2] for f in features] == list(backbone.strides)
    sum(f.mean() for f in features).backward()
    grads = [p.grad for p in backbone.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(
    "name,millions", [("mit_b1", 13.2), ("mit_b2", 24.2), ("mit_b3", 44.1), ("mit_b4", 60.8)]
)
def test_larger_mit_variants_build_and_run(name, millions):
    backbone = build_backbone(name).eval()
    assert sum(p.numel() for p in backbone.parameters()) / 1e6 == pytest.approx(millions, abs=0.1)
    with torch.no_grad():
        features = backbone(torch.randn(1, 3, 32, 32))
    assert [f.shape[1:] for f in features] == [(64, 8, 8), (128, 4, 4), (320, 2, 2), (512, 1, 1)]


def test_efficientnet_lite0_converts_imagenet_input_to_lite_normalisation():
    backbone = efficientnet_lite0(pretrained=False)
    rgb = torch.rand(1, 3, 4, 4)
    imagenet_input = (rgb - IMAGENET_MEAN) / IMAGENET_STD
    lite_input = imagenet_input * backbone.input_scale + backbone.input_shift
    assert torch.allclose(lite_input, (255 * rgb - 127) / 128, atol=1e-5)
    assert "input_scale" not in backbone.state_dict()


def test_efficientnet_lite0_imagenet_weights_all_land():
    raw = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    backbone = efficientnet_lite0(pretrained=True)
    state = backbone.state_dict()
    assert torch.equal(state["stem.conv.weight"], raw["_conv_stem.weight"])
    assert torch.equal(
        state["blocks.15.project.bn.running_var"], raw["_blocks.15._bn2.running_var"]
    )
    assert torch.equal(state["blocks.4.expand.conv.weight"], raw["_blocks.4._expand_conv.weight"])
    assert backbone.out_channels == (24, 40, 112, 320)
    assert backbone.feature_block_indices == (2, 4, 10, 15)


def _imagenet_top5(backbone, image_imagenet_normalised):
    """Classify with the backbone plus the package's own head conv, pooling and classifier."""
    raw = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    with torch.no_grad():
        stride32 = backbone(image_imagenet_normalised)[-1]
        head = F.conv2d(stride32, raw["_conv_head.weight"])
        head = F.batch_norm(
            head,
            raw["_bn1.running_mean"],
            raw["_bn1.running_var"],
            raw["_bn1.weight"],
            raw["_bn1.bias"],
            eps=1e-3,
        )
        pooled = F.relu6(head).mean(dim=(2, 3))
        probs = F.linear(pooled, raw["_fc.weight"], raw["_fc.bias"]).softmax(dim=1)[0]
    return probs.topk(5)


def test_efficientnet_lite0_recognises_a_street_scene(shared_dir):
    frame_path = shared_dir / "samples" / "frames" / "cityscapes_frame_1024x512.png"
    if not frame_path.is_file():
        pytest.skip("Cityscapes sample frame not found")
    frame = Image.open(frame_path).convert("RGB").resize((224, 224), Image.BILINEAR)
    rgb = torch.from_numpy(np.array(frame)).permute(2, 0, 1)[None].float() / 255
    backbone = efficientnet_lite0(pretrained=True).eval()
    top_probs, top_classes = _imagenet_top5(backbone, (rgb - IMAGENET_MEAN) / IMAGENET_STD)
    # The frame shows a bus/tram on a city street: streetcar, trolleybus, traffic light, ...
    street_classes = {468, 475, 479, 511, 609, 627, 654, 675, 704, 705, 734, 751, 817, 829}
    street_classes |= {874, 919, 920, 436, 466}
    assert street_classes & set(top_classes.tolist())
    # Real weights with the right normalisation are confident (0.85 measured on streetcar).
    assert top_classes[0].item() in street_classes and top_probs[0] > 0.5


def test_daformer_head_outputs_and_checkpoint_names(shared_dir):
    head = DAFormerHead((64, 128, 320, 512), num_classes=19)
    reference = _reference(shared_dir, "daformer_uda_checkpoint_keys.json")["model_keys"]
    expected = {
        key.removeprefix("model.decode_head."): shape
        for key, shape in reference.items()
        if key.startswith("model.decode_head.")
    }
    assert {key: list(t.shape) for key, t in head.state_dict().items()} == expected

    small = DAFormerHead((8, 16, 24, 32), num_classes=5, embed_dim=16)
    features = [
        torch.randn(2, c, 16 // s, 20 // s)
        for c, s in zip((8, 16, 24, 32), (1, 2, 4, 8), strict=True)
    ]
    logits, fused = small(features)
    assert logits.shape == (2, 5, 16, 20)
    assert fused.shape == (2, 16, 16, 20)


def test_daformer_head_init_follows_mmcv_conv_module():
    torch.manual_seed(0)
    head = DAFormerHead((64, 128, 320, 512), num_classes=19)
    fusion = head.fuse_layer
    # Kaiming normal, fan_out, ReLU gain: std = sqrt(2 / (out_channels * kh * kw)), no bias
    for conv in (fusion.bottleneck.conv, fusion.aspp_modules[0].conv):
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        assert conv.bias is None
        assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.02)
        assert abs(conv.weight.mean().item()) < 0.1 * (2 / fan_out) ** 0.5
    depthwise = fusion.aspp_modules[1].depthwise_conv.conv  # fan_out counts C * 9, not / groups
    assert depthwise.weight.std().item() == pytest.approx((2 / (1024 * 9)) ** 0.5, rel=0.05)
    norm = fusion.bottleneck.bn
    assert torch.equal(norm.weight, torch.ones(256)) and torch.equal(norm.bias, torch.zeros(256))
    assert head.conv_seg.weight.std().item() == pytest.approx(0.01, rel=0.05)
    # The layers' own defaults stay available: PyTorch's Kaiming uniform, a = sqrt(5).
    plain = DAFormerHead((64, 128, 320, 512), num_classes=19, init="pytorch")
    bound = (1 / (1024 * 9)) ** 0.5  # fan_in of the bottleneck
    assert plain.fuse_layer.bottleneck.conv.weight.abs().max().item() <= bound


@pytest.mark.parametrize(
    ("shape", "dilation"), [((2, 3, 7, 6), 1), ((1, 2, 5, 4), 2), ((2, 2, 3, 9), 6)]
)
def test_depthwise_conv_backward_passes_gradcheck(shape, dilation):
    # batch 1, odd sizes, a dilation larger than the map
    from omuda.models.daformer_head import _DepthwiseConv3x3

    x = torch.randn(*shape, dtype=torch.double, requires_grad=True)
    weight = torch.randn(shape[1], 1, 3, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: _DepthwiseConv3x3.apply(a, b, dilation), (x, weight)
    )


@pytest.mark.parametrize("dilation", [1, 3])
def test_depthwise_conv_fast_backward_equals_autograd(dilation, monkeypatch):
    from omuda.models import daformer_head
    from omuda.models.daformer_head import DepthwiseConvBNReLU

    calls = []
    fast = daformer_head._DepthwiseConv3x3.apply
    monkeypatch.setattr(
        daformer_head._DepthwiseConv3x3, "apply", lambda *a: calls.append(1) or fast(*a)
    )
    module = DepthwiseConvBNReLU(4, dilation).double()
    x = torch.randn(2, 4, 9, 7, dtype=torch.double, requires_grad=True)
    module(x).pow(2).sum().backward()
    conv = module.conv
    expected = F.conv2d(x, conv.weight, padding=dilation, dilation=dilation, groups=4)
    expected = F.relu(module.bn(expected))
    grads = torch.autograd.grad(expected.pow(2).sum(), (x, conv.weight))
    torch.testing.assert_close(module(x), expected)
    torch.testing.assert_close(x.grad, grads[0])
    torch.testing.assert_close(conv.weight.grad, grads[1])
    assert calls  # the CPU path really went through the fast backward
    # under bf16 autocast: computed in bf16, close to PyTorch's own bf16 conv
    module.float().zero_grad()
    xf = x.detach().float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(xf)
        native = F.conv2d(xf, conv.weight, padding=dilation, dilation=dilation, groups=4)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), F.relu(module.bn(native.float())), atol=0.05, rtol=0.05)
    out.float().sum().backward()
    assert conv.weight.grad.dtype == torch.float32


def test_daformer_head_fused_map_feeds_classifier_in_eval():
    head = DAFormerHead((8, 16), num_classes=3, embed_dim=8, aspp_dilations=(1, 2)).eval()
    logits, fused = head([torch.randn(1, 8, 6, 6), torch.randn(1, 16, 3, 3)])
    assert torch.allclose(logits, head.conv_seg(fused))


@pytest.mark.parametrize("name", ["mit_b0", "efficientnet_lite0"])
@pytest.mark.parametrize("height,width", [(64, 64), (57, 83)])
def test_segmentor_logits_at_input_size(name, height, width):
    model = build_segmentor(name, num_classes=7, decoder_channels=32)
    output = model(torch.randn(1, 3, height, width))
    assert output.logits.shape == (1, 7, height, width)
    assert output.features is None and output.fused is None
    output.logits.mean().backward()


def test_segmentor_return_features_advertised_channels_and_strides():
    model = build_segmentor("mit_b0", num_classes=4, decoder_channels=16).eval()
    with torch.no_grad():
        output = model(torch.randn(2, 3, 64, 96), return_features=True)
    backbone = model.backbone
    assert len(output.features) == 4
    for feature, channels, stride in zip(
        output.features, backbone.out_channels, backbone.strides, strict=True
    ):
        assert feature.shape == (2, channels, 64 // stride, 96 // stride)
    assert output.fused.shape == (2, 16, 16, 24)


def test_unknown_backbone_names_the_valid_ones():
    with pytest.raises(OmudaError, match="mit_b5.*efficientnet_lite0"):
        build_segmentor("resnet50")
    assert set(BACKBONE_NAMES) == {f"mit_b{i}" for i in range(6)} | {"efficientnet_lite0"}


def test_mit_imagenet_shortcut_is_refused_with_a_hint():
    with pytest.raises(OmudaError, match="mit_b0.pth"):
        build_backbone("mit_b0", pretrained="imagenet")
