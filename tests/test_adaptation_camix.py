"""CAMix: spatial prior, contextual mask with its class relations, reverse mix, significance."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from omuda.adaptation.camix import (
    accumulate_spatial_counts,
    camix,
    contextual_class_mask,
    contextual_labels,
    prior_for_crops,
    significance_mask,
    significance_threshold,
    significance_weighted_cross_entropy,
    spatial_prior,
)


def test_counts_are_class_fractions_per_cell_and_decay():
    # Left cell (columns 0-1): 0, 0, 1, 1. Right cell (columns 2-3): 1, ignore, 1, 1.
    labels = torch.tensor([[[0, 0, 1, 255], [1, 1, 1, 1]]])
    counts = accumulate_spatial_counts(torch.zeros(2, 1, 2), labels)
    assert torch.allclose(counts[0], torch.tensor([[0.5, 0.0]]))
    assert torch.allclose(counts[1], torch.tensor([[0.5, 0.75]]))
    decayed = accumulate_spatial_counts(counts, labels, decay=0.5)
    assert torch.allclose(decayed[0], torch.tensor([[0.75, 0.0]]))
    assert torch.allclose(decayed[1], torch.tensor([[0.75, 1.125]]))


def test_counts_add_over_the_batch():
    labels = torch.tensor([[[0, 0]], [[1, 0]]])  # two 1x2 images, a 1x1 grid
    counts = accumulate_spatial_counts(torch.zeros(2, 1, 1), labels)
    assert torch.allclose(counts[:, 0, 0], torch.tensor([1.5, 0.5]))


def test_prior_normalises_cells_and_is_uniform_where_empty():
    counts = torch.tensor([[[0.5, 0.0, 0.0]], [[0.5, 0.75, 0.0]]])
    prior = spatial_prior(counts)
    assert torch.allclose(prior[:, 0, 0], torch.tensor([0.5, 0.5]))
    assert torch.allclose(prior[:, 0, 1], torch.tensor([0.0, 1.0]))
    assert torch.allclose(prior[:, 0, 2], torch.tensor([0.5, 0.5]))


def test_prior_for_crops_windows_and_flip():
    prior = torch.tensor([[[0.0, 1.0]]])  # K=1, h=1, w=2: 0 on the left, 1 on the right
    whole = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    assert prior_for_crops(prior, whole, (1, 2)).flatten().tolist() == [0.0, 1.0]
    flipped = prior_for_crops(prior, whole, (1, 2), torch.tensor([True]))
    assert flipped.flatten().tolist() == [1.0, 0.0]
    right_half = torch.tensor([[0.0, 0.5, 1.0, 1.0]])
    left_half = torch.tensor([[0.0, 0.0, 1.0, 0.5]])
    both = prior_for_crops(prior, torch.cat([right_half, left_half]), (1, 1))
    assert both.flatten().tolist() == [1.0, 0.0]
    # The whole window resized: bilinear with half-pixel centres, border-clamped.
    resized = prior_for_crops(prior, whole, (1, 4)).flatten()
    assert torch.allclose(resized, torch.tensor([0.0, 0.25, 0.75, 1.0]))
    assert torch.allclose(
        resized, F.interpolate(prior[None], size=(1, 4), mode="bilinear").flatten()
    )
    vertical = torch.tensor([[[0.0], [1.0]]])  # top 0, bottom 1
    bottom_half = torch.tensor([[0.5, 0.0, 1.0, 1.0]])
    assert prior_for_crops(vertical, bottom_half, (1, 1)).item() == 1.0


def test_prior_overrules_a_weak_teacher_preference():
    probs = torch.tensor([0.6, 0.4]).view(1, 2, 1, 1)
    prior = torch.tensor([0.2, 0.8]).view(1, 2, 1, 1)
    # 0.6 * 0.2 = 0.12 < 0.4 * 0.8 = 0.32: class 1, though the teacher's argmax is 0.
    assert contextual_labels(probs, prior).tolist() == [[[1]]]
    assert contextual_labels(probs, torch.ones_like(prior)).tolist() == [[[0]]]


def test_pole_links_lights_and_signs():
    labels = torch.tensor([[[5, 6, 7, 5]]])  # two of three classes chosen, then all three
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        assert contextual_class_mask(labels, generator).sum() == 4


def test_lights_and_signs_without_a_pole_stay_apart():
    labels = torch.tensor([[[6, 7]]])  # one of two chosen, no pole to link them
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        assert contextual_class_mask(labels, generator).sum() == 1


def test_rider_brings_bicycle_but_not_the_reverse():
    labels = torch.tensor([[[0, 12, 18]]])  # two of three chosen
    generator = torch.Generator().manual_seed(3)
    seen = set()
    for _ in range(40):
        mask = contextual_class_mask(labels, generator)[0, 0, 0]
        seen.add(frozenset(labels[0, 0][mask > 0].tolist()))
    # {0, 12} would be a rider without its bicycle; {0, 18} is a bicycle without a rider.
    assert seen == {frozenset({12, 18}), frozenset({0, 12, 18}), frozenset({0, 18})}


def test_plain_classes_half_chosen_ignore_never():
    labels = torch.tensor([[[0, 1, 2, 3, 255, 255]]])
    mask = contextual_class_mask(labels, torch.Generator().manual_seed(1))
    assert mask.shape == (1, 1, 1, 6) and mask.dtype == torch.float32
    assert mask.sum() == 2 and mask[0, 0, 0, 4:].sum() == 0


def test_camix_pastes_target_onto_source():
    x_src, x_tgt = torch.ones(1, 3, 1, 2), torch.zeros(1, 3, 1, 2)
    y_src, y_pseudo = torch.tensor([[[4, 255]]]), torch.tensor([[[9, 9]]])
    w_pseudo = torch.full((1, 1, 2), 0.3)
    target_mask = torch.tensor([[[[1.0, 0.0]]]])
    x_mix, y_mix, w_mix, source_region = camix(x_src, y_src, x_tgt, y_pseudo, w_pseudo, target_mask)
    assert x_mix[0, :, 0].tolist() == [[0.0, 1.0]] * 3
    assert y_mix.tolist() == [[[9, 255]]]
    assert torch.allclose(w_mix, torch.tensor([[[0.3, 1.0]]]))
    assert source_region.tolist() == [[[[0.0, 1.0]]]]


def test_significance_threshold_ramp():
    log19 = math.log(19)
    assert significance_threshold(0, 100, 19) == pytest.approx((0.75 + 0.25 * math.exp(-5)) * log19)
    assert significance_threshold(50, 100, 19) == pytest.approx(
        (0.75 + 0.25 * math.exp(-1.25)) * log19
    )
    assert significance_threshold(100, 100, 19) == pytest.approx(log19)
    assert significance_threshold(7, 0, 19) == pytest.approx(log19)


def test_significance_mask_from_entropy():
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]]).T.reshape(1, 2, 1, 2)  # pixel 0 certain
    assert significance_mask(probs, 0.5).tolist() == [[[1.0, 0.0]]]  # ln 2 = 0.69 >= 0.5
    assert significance_mask(probs, 1.0).tolist() == [[[1.0, 1.0]]]


def test_significance_weighted_cross_entropy():
    # Pixel 0: logits (0, 0), label 0 -> CE ln 2. Pixel 1: logits (ln 3, 0), label 0 -> ln 4/3.
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]]).reshape(1, 2, 1, 2)
    labels = torch.tensor([[[0, 0]]])
    weight = torch.tensor([[[1.0, 0.5]]])
    first_only = significance_weighted_cross_entropy(
        logits, labels, weight, torch.tensor([[[1.0, 0.0]]])
    )
    assert first_only.item() == pytest.approx(math.log(2.0))
    both = significance_weighted_cross_entropy(logits, labels, weight, torch.ones(1, 1, 2))
    assert both.item() == pytest.approx((math.log(2.0) + 0.5 * math.log(4.0 / 3.0)) / 2)
    none = significance_weighted_cross_entropy(logits, labels, weight, torch.zeros(1, 1, 2))
    assert none.item() == 0.0
