"""Pseudo-labels: argmax, confidence fraction per image or batch, ignored rows."""

from __future__ import annotations

import torch

from omuda.adaptation.pseudo_labels import pseudo_labels


def _logits_with_confidence(confident: torch.Tensor) -> torch.Tensor:
    """(B,H,W) bool -> (B,2,H,W) logits: class 1 with p=0.99 where True, p~0.73 elsewhere."""
    margin = torch.where(confident, 5.0, 1.0)
    return torch.stack([torch.zeros_like(margin), margin], dim=1)


def test_labels_and_per_image_weight():
    confident = torch.zeros(2, 4, 5, dtype=torch.bool)
    confident[0, :2] = True  # 10 of 20 pixels
    confident[1, 0, :1] = True  # 1 of 20 pixels
    logits = _logits_with_confidence(confident)
    logits[1, 0, 3, 3] = 9.0  # class 0 wins here, confidently
    y_pseudo, w_pseudo = pseudo_labels(logits, threshold=0.968, ignore_top=0, ignore_bottom=0)
    assert y_pseudo.dtype == torch.long and y_pseudo.shape == (2, 4, 5)
    assert y_pseudo[1, 3, 3] == 0 and y_pseudo[0].eq(1).all()
    assert w_pseudo.dtype == torch.float32
    assert torch.allclose(w_pseudo[0], torch.full((4, 5), 0.5))
    assert torch.allclose(w_pseudo[1], torch.full((4, 5), 2 / 20))


def test_batch_weight_is_one_scalar():
    confident = torch.zeros(2, 4, 5, dtype=torch.bool)
    confident[0, :2] = True
    confident[1, 0, :1] = True
    _, w_pseudo = pseudo_labels(
        _logits_with_confidence(confident), ignore_top=0, ignore_bottom=0, per_image=False
    )
    assert torch.allclose(w_pseudo, torch.full((2, 4, 5), 11 / 40))


def test_ignored_rows():
    logits = _logits_with_confidence(torch.ones(1, 10, 3, dtype=torch.bool))
    _, w_pseudo = pseudo_labels(logits, ignore_top=2, ignore_bottom=3)
    expected_rows = torch.tensor([0, 0, 1, 1, 1, 1, 1, 0, 0, 0], dtype=torch.float32)
    assert torch.equal(w_pseudo[0, :, 0], expected_rows)
    assert torch.equal(w_pseudo[0, :, 2], expected_rows)
    # Ignored rows do not change q, which counts every pixel of the image.
    _, w_none = pseudo_labels(logits, ignore_top=0, ignore_bottom=0)
    assert torch.equal(w_none, torch.ones(1, 10, 3))


def test_no_host_reads():
    # Meta tensors have no data: any .item(), nonzero() or Python branch on values would fail.
    y_pseudo, w_pseudo = pseudo_labels(torch.empty(2, 19, 16, 16, device="meta"), per_image=False)
    assert y_pseudo.shape == w_pseudo.shape == (2, 16, 16)
