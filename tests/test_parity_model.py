"""Parity with the original DAFormer model: MiT-B0 + DAFormerHead forward from its weights.

Golden vectors: `model_forward_mitb0` (README section 1), weights `mitb0_daformer_init`.
"""

from __future__ import annotations

import pytest
import torch

from omuda.models import build_segmentor, load_segmentor_weights

LOGITS = {"atol": 1e-4, "rtol": 1e-5}  # the README's suggested logit/feature tolerance


@pytest.fixture(scope="module")
def daformer_b0(golden):
    """Our MiT-B0 segmentor (drop path and dropout off) holding the original's weights."""
    state, meta = golden.load("mitb0_daformer_init")
    model = build_segmentor("mit_b0", drop_path_rate=0.0, dropout=0.0)
    report = load_segmentor_weights(model, state, source="golden")
    assert report.missing == [] and report.unexpected == []
    assert report.loaded == len(meta["keys"]) == len(model.state_dict())
    return model


def test_forward_eval_matches_original(golden, parity, daformer_b0):
    tensors, _ = golden.load("model_forward_mitb0")
    model = daformer_b0.eval()
    with torch.no_grad():
        features = model.backbone(tensors["img"])
        logits_quarter, _ = model.decode_head(features)
        logits_full = model(tensors["img"]).logits
    for stage in (1, 2, 3):  # the golden file holds stages 2-4 as feat1..feat3
        parity.close("model.features", features[stage], tensors[f"feat{stage}_eval"], **LOGITS)
    parity.close(
        "model.logits_quarter_eval", logits_quarter, tensors["logits_quarter_eval"], **LOGITS
    )
    parity.close("model.logits_full_eval", logits_full, tensors["logits_full_eval"], **LOGITS)


def test_forward_train_mode_uses_batch_statistics(golden, parity, daformer_b0):
    tensors, _ = golden.load("model_forward_mitb0")
    model = daformer_b0
    model.load_state_dict(golden.load("mitb0_daformer_init")[0])  # fresh running statistics
    model.train()
    with torch.no_grad():
        logits_quarter, _ = model.decode_head(model.backbone(tensors["img"]))
    parity.close(
        "model.logits_quarter_train", logits_quarter, tensors["logits_quarter_train"], **LOGITS
    )
    norm = model.decode_head.fuse_layer.bottleneck.bn
    parity.close(
        "model.bn_running_stats",
        torch.cat([norm.running_mean, norm.running_var]),
        torch.cat(
            [
                tensors["bottleneck_bn_running_mean_after_train_fwd"],
                tensors["bottleneck_bn_running_var_after_train_fwd"],
            ]
        ),
        atol=1e-6,
        rtol=1e-5,
    )
