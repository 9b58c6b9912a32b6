"""Parity of the adaptation mechanisms with the original DAFormer / MIC functions.

Golden vectors: `seg_ce_loss`, `fd_loss`, `pseudo_labels`, `classmix`, `rcs`,
`mic_masking` (README sections 2-6 and "Extra"). Label maps are uint8 there.
"""

from __future__ import annotations

import shutil

import numpy as np
import torch
import torch.nn.functional as F

from omuda.adaptation.classmix import (
    candidate_classes,
    class_mask,
    classes_table,
    classmix,
    sample_mix_classes,
)
from omuda.adaptation.feature_distance import (
    downscale_label_majority,
    feature_distance_loss,
    thing_cell_mask,
)
from omuda.adaptation.losses import cross_entropy, weighted_cross_entropy
from omuda.adaptation.masking import apply_mask, block_mask
from omuda.adaptation.pseudo_labels import pseudo_labels
from omuda.data.datasets import class_pixel_counts
from omuda.data.labels import THING_CLASSES
from omuda.data.prepare import STATS_FILE, load_class_stats
from omuda.data.sampling import SourceSampler, class_probabilities

LOSS_RTOL = 1e-5


def _upsample(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # What Segmentor.forward does to the head's stride-4 logits (mmseg's `resize`).
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def test_decode_head_cross_entropy_divides_by_all_pixels(golden, parity):
    tensors, meta = golden.load("seg_ce_loss")
    labels = tensors["seg_label"][:, 0].long()
    logits = _upsample(tensors["seg_logit"], tuple(labels.shape[-2:]))
    loss = cross_entropy(logits, labels)
    parity.close("ce.loss_seg", loss, meta["loss_seg"], rtol=LOSS_RTOL)
    weighted = weighted_cross_entropy(logits, labels, tensors["seg_weight"])
    parity.close("ce.loss_seg_weighted", weighted, meta["loss_seg_weighted"], rtol=LOSS_RTOL)
    # The other average divides the same sum by the labelled pixels only.
    labelled = cross_entropy(logits, labels, average="labelled")
    share = (meta["n_pixels"] - meta["n_ignore"]) / meta["n_pixels"]
    torch.testing.assert_close(labelled * share, loss)


def test_feature_distance_on_thing_cells(golden, parity):
    tensors, meta = golden.load("fd_loss")
    labels = tensors["gt"][:, 0].long()
    cells = downscale_label_majority(labels, meta["scale_factor"], meta["num_classes"], 0.75)
    assert torch.equal(cells, tensors["gt_rescaled"][:, 0].long())
    assert tuple(meta["fdist_classes"]) == THING_CLASSES
    mask = thing_cell_mask(cells, THING_CLASSES)
    assert torch.equal(mask, tensors["fdist_mask"][:, 0].bool())
    assert int(mask.sum()) == meta["n_mask_pixels"]
    student = tensors["feat_student_last"].clone().requires_grad_()
    distance = feature_distance_loss(student, tensors["feat_imnet_last"], labels, THING_CLASSES)
    loss = meta["fdist_lambda"] * distance
    loss.backward()
    parity.close("fd.loss", loss, tensors["loss"], rtol=LOSS_RTOL)
    gradient = tensors["grad_feat_student_last"]
    parity.close("fd.grad", student.grad, gradient, atol=1e-6 * gradient.abs().max().item())


def test_pseudo_labels_and_batch_confidence_weight(golden, parity):
    tensors, meta = golden.load("pseudo_labels")
    logits = tensors["teacher_logits"]
    label, weight = pseudo_labels(logits, 0.968, ignore_top=0, ignore_bottom=0, per_image=False)
    assert torch.equal(label, tensors["pseudo_label"].long())
    parity.close("pseudo.weight_128", weight, tensors["pseudo_weight"])  # one scalar per batch
    assert round(weight[0, 0, 0].item() * 2 * 128 * 128) == meta["n_pixels_ge_threshold_128"]
    _, cropped = pseudo_labels(logits, 0.968, ignore_top=15, ignore_bottom=120, per_image=False)
    assert meta["pseudo_weight_128_croppl_all_zero"] and not cropped.any()
    large = logits.repeat_interleave(2, 2).repeat_interleave(2, 3)
    label, weight = pseudo_labels(large, 0.968, ignore_top=15, ignore_bottom=120, per_image=False)
    upsampled = tensors["pseudo_label"].long().repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert torch.equal(label, upsampled)
    kept = meta["pseudo_weight_256_croppl"]
    expected = torch.zeros(256)
    expected[15:136] = kept["value_rows_15_to_135"]
    parity.close("pseudo.weight_256", weight, expected.view(1, 256, 1).expand_as(weight))
    parity.close("pseudo.weight_256_sum", weight.sum(), kept["sum"], rtol=1e-6)


def test_classmix_with_the_recorded_classes(golden, parity):
    tensors, meta = golden.load("classmix")
    labels = tensors["gt_src"][:, 0].long()
    candidates = candidate_classes(labels, scope="batch")
    batch_classes = tensors["batch_unique_classes"].tolist()
    assert torch.equal(candidates, classes_table([batch_classes] * 2))  # 255 included
    chosen = classes_table(meta["chosen_classes"])
    x_mix, y_mix, w_mix, mask = classmix(
        tensors["img_src"],
        labels,
        tensors["img_trg"],
        tensors["pseudo_label_trg"].long(),
        tensors["pseudo_weight_trg"],
        chosen,
    )
    assert torch.equal(mask, tensors["mask"].float())
    assert torch.equal(x_mix, tensors["mixed_img"])
    assert torch.equal(y_mix, tensors["mixed_lbl"][:, 0].long())
    parity.close("classmix.mixed_weight", w_mix, tensors["mixed_weight"][:, 0])
    # Our draw: ceil(9 / 2) = 5 of the batch's 9 values per image, 255 among the candidates.
    drawn = sample_mix_classes(labels, torch.Generator().manual_seed(0), scope="batch")
    assert drawn.sum(dim=1).tolist() == [len(meta["chosen_classes"][0])] * 2
    assert bool((drawn <= candidates).all())
    assert torch.equal(class_mask(labels, drawn), class_mask(labels, drawn & candidates))


def test_rare_class_sampling_probabilities_and_files(golden, parity, tmp_path):
    tensors, meta = golden.load("rcs")
    shutil.copy(golden.root / "rcs_sample_class_stats.json", tmp_path / STATS_FILE)
    stats = load_class_stats(tmp_path)
    class_pixels = class_pixel_counts(stats)
    fraction = class_pixels.sum(0) / class_pixels.sum()
    probabilities = class_probabilities(
        "rcs", fraction, THING_CLASSES, (), rcs_temperature=meta["class_temp"]
    )
    classes = tensors["rcs_classes"].numpy()
    assert sorted(np.flatnonzero(probabilities).tolist()) == sorted(classes.tolist())
    # The original computes softmax((1 - f) / 0.01) in float32: logits up to 100 carry
    # ~6e-6 relative rounding; ours is float64.
    parity.close(
        "rcs.class_probabilities",
        probabilities[classes],
        tensors["rcs_classprob"],
        atol=1e-9,
        rtol=2e-5,
    )
    sampler = SourceSampler(
        class_pixels, "rcs", seed=0, probabilities=probabilities, min_pixels=meta["min_pixels"]
    )
    names = [entry["file"].split("/")[-1] for entry in stats]
    for class_id, files in meta["samples_with_class"].items():
        holders = sampler.images_with_class[int(class_id)]
        assert [names[index] for index in holders] == files


def test_mic_block_mask_and_masked_loss(golden, parity):
    tensors, meta = golden.load("mic_masking")
    shape = (meta["image_shape"][0], *meta["image_shape"][2:])
    block = meta["mask_block_size"]
    keep = block_mask(shape, block, meta["mask_ratio"], torch.Generator().manual_seed(0))
    lowres = tensors["mask_lowres"]
    assert torch.equal(keep, lowres.repeat_interleave(block, 2).repeat_interleave(block, 3))
    assert torch.equal(lowres, (tensors["rand_lowres"] > meta["mask_ratio"]).float())
    assert keep.mean().item() == meta["mask_kept_fraction"]
    assert torch.equal(apply_mask(torch.ones(2, 3, *shape[1:]), keep), keep.expand(-1, 3, -1, -1))
    logits = tensors["student_logits"].clone().requires_grad_()
    labels = tensors["pseudo_label"].long()
    loss = weighted_cross_entropy(
        _upsample(logits, tuple(labels.shape[-2:])), labels, tensors["pseudo_weight"]
    )
    loss.backward()
    parity.close("mic.masked_loss", loss, meta["masked_loss"], rtol=LOSS_RTOL)
    gradient = tensors["grad_student_logits"]
    parity.close(
        "mic.masked_loss_grad", logits.grad, gradient, atol=1e-6 * gradient.abs().max().item()
    )
