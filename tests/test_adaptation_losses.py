"""Cross-entropy averages by hand: mmseg's mean over all pixels and the labelled-only mean."""

from __future__ import annotations

import math

import pytest
import torch

from omuda.adaptation.losses import cross_entropy, weighted_cross_entropy


def test_averages_over_all_or_labelled_pixels():
    logits = torch.zeros(1, 2, 2, 2)  # CE = ln 2 at every pixel
    labels = torch.tensor([[[0, 1], [255, 255]]])
    assert cross_entropy(logits, labels).item() == pytest.approx(math.log(2) / 2)
    assert cross_entropy(logits, labels, average="labelled").item() == pytest.approx(math.log(2))
    ignored = torch.full((1, 2, 2), 255)
    assert cross_entropy(logits, ignored).item() == 0.0
    assert cross_entropy(logits, ignored, average="labelled").item() == 0.0
    with pytest.raises(ValueError, match="average"):
        cross_entropy(logits, labels, average="mean")


def test_weighted_mean_counts_every_pixel():
    logits = torch.zeros(1, 2, 2, 2)
    labels = torch.tensor([[[0, 1], [255, 0]]])
    weights = torch.tensor([[[1.0, 0.5], [1.0, 0.0]]])
    expected = math.log(2) * (1.0 + 0.5) / 4
    assert weighted_cross_entropy(logits, labels, weights).item() == pytest.approx(expected)
