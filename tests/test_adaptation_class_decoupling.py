"""CDM: class-decoupled CE, class weights in both directions, disagreement EMA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from omuda.adaptation.class_decoupling import (
    class_balanced_cross_entropy,
    class_weights,
    debiased_disagreement,
    update_disagreement,
)


def _toy() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (1,3,2,3), labels with class 0 on 4 pixels, class 1 on 1, one ignore, no 2."""
    logits = torch.tensor(
        [[[2.0, 0.0, 1.0], [0.5, -1.0, 3.0]], [[0.0, 1.0, 0.0], [1.0, 2.0, 0.0]], [[0.0] * 3] * 2]
    ).unsqueeze(0)
    y_pseudo = torch.tensor([[[0, 0, 0], [0, 1, 255]]])
    ce = F.cross_entropy(logits, y_pseudo, ignore_index=255, reduction="none")
    return logits, y_pseudo, ce


def test_uniform_weights_give_mean_of_class_means():
    logits, y_pseudo, ce = _toy()
    pixel_weight = torch.ones(1, 2, 3)
    loss = class_balanced_cross_entropy(logits, y_pseudo, pixel_weight, torch.ones(3))
    class0_mean = (ce[0, 0, 0] + ce[0, 0, 1] + ce[0, 0, 2] + ce[0, 1, 0]) / 4
    expected = (class0_mean + ce[0, 1, 1]) / 2  # class 2 is absent and adds nothing
    torch.testing.assert_close(loss, expected)
    # The absent class's weight does not matter.
    other = class_balanced_cross_entropy(logits, y_pseudo, pixel_weight, torch.tensor([1, 1, 50.0]))
    torch.testing.assert_close(other, expected)


def test_weighted_value_by_hand_with_pixel_weights():
    logits, y_pseudo, ce = _toy()
    pixel_weight = torch.tensor([[[0.5, 0.5, 0.5], [0.0, 0.25, 0.5]]])
    class_weight = torch.tensor([0.2, 0.6, 0.9])
    loss = class_balanced_cross_entropy(logits, y_pseudo, pixel_weight, class_weight)
    class0_mean = 0.5 * (ce[0, 0, 0] + ce[0, 0, 1] + ce[0, 0, 2]) / 4  # zero-weight pixel counts
    class1_mean = 0.25 * ce[0, 1, 1]
    expected = (0.2 * class0_mean + 0.6 * class1_mean) / (0.2 + 0.6)
    torch.testing.assert_close(loss, expected)


def test_balance_zero_puts_class_weights_on_the_pixel_mean():
    logits, y_pseudo, ce = _toy()
    pixel_weight = torch.tensor([[[0.5, 0.5, 0.5], [0.0, 0.25, 0.5]]])
    class_weight = torch.tensor([0.2, 0.6, 0.9])
    loss = class_balanced_cross_entropy(logits, y_pseudo, pixel_weight, class_weight, balance=0.0)
    class0_sum = 0.5 * (ce[0, 0, 0] + ce[0, 0, 1] + ce[0, 0, 2])
    class1_sum = 0.25 * ce[0, 1, 1]
    expected = (0.2 * class0_sum + 0.6 * class1_sum) / (0.2 * 4 + 0.6 * 1)
    torch.testing.assert_close(loss, expected)
    # Uniform weights: the plain mean over the 5 valid pixels.
    uniform = class_balanced_cross_entropy(
        logits, y_pseudo, pixel_weight, torch.ones(3), balance=0.0
    )
    torch.testing.assert_close(uniform, (class0_sum + class1_sum) / 5)


def test_half_balance_shares_grow_as_square_root_of_counts():
    logits, y_pseudo, ce = _toy()
    pixel_weight = torch.ones(1, 2, 3)
    loss = class_balanced_cross_entropy(logits, y_pseudo, pixel_weight, torch.ones(3), balance=0.5)
    class0_mean = (ce[0, 0, 0] + ce[0, 0, 1] + ce[0, 0, 2] + ce[0, 1, 0]) / 4
    expected = (2.0 * class0_mean + 1.0 * ce[0, 1, 1]) / (2.0 + 1.0)  # sqrt(4), sqrt(1)
    torch.testing.assert_close(loss, expected)


def test_single_class_equals_plain_weighted_ce_and_gradient_flows():
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    y_pseudo = torch.full((2, 3, 3), 2)
    pixel_weight = torch.rand(2, 3, 3)
    plain = (F.cross_entropy(logits, y_pseudo, reduction="none") * pixel_weight).mean()
    for balance in (0.0, 0.5, 1.0):
        loss = class_balanced_cross_entropy(
            logits, y_pseudo, pixel_weight, torch.rand(4) + 0.1, balance=balance
        )
        torch.testing.assert_close(loss, plain)
    loss.backward()
    assert torch.all(torch.isfinite(logits.grad))


def test_all_ignored_gives_zero():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = class_balanced_cross_entropy(
        logits, torch.full((1, 2, 2), 255), torch.ones(1, 2, 2), torch.ones(3)
    )
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_class_weights_both_directions_and_floor():
    disagreement = torch.tensor([0.0, 0.3, 1.0])
    torch.testing.assert_close(
        class_weights(disagreement, "difficulty"), torch.tensor([0.05, 0.3, 1.0])
    )
    torch.testing.assert_close(
        class_weights(disagreement, "reliability"), torch.tensor([1.0, 0.7, 0.05])
    )
    with pytest.raises(ValueError, match="difficulty.*reliability"):
        class_weights(disagreement, "uncertainty")


def test_disagreement_ema_by_hand():
    running = torch.tensor([0.5, 0.2, 0.9])
    y_pseudo = torch.tensor([[[0, 0, 0, 0], [1, 1, 255, 0]]])
    pred_student = torch.tensor([[[0, 1, 2, 0], [1, 1, 0, 2]]])
    valid = y_pseudo != 255
    valid[0, 1, 3] = False  # an invalid pixel never counts
    updated, updates = update_disagreement(
        running, torch.zeros(3), pred_student, y_pseudo, valid, momentum=0.9
    )
    # Class 0: 2 of 4 valid pixels disagree -> 0.5; class 1: 0 of 2 -> 0; class 2 absent.
    torch.testing.assert_close(
        updated, torch.tensor([0.9 * 0.5 + 0.1 * 0.5, 0.9 * 0.2 + 0.1 * 0.0, 0.9])
    )
    assert torch.equal(running, torch.tensor([0.5, 0.2, 0.9]))  # not in place
    assert torch.equal(updates, torch.tensor([1.0, 1.0, 0.0]))  # class 2 was not seen


def test_disagreement_counts_pass_through_the_reducer():
    # A reducer standing for a second rank whose batch held 2 class-1 pixels, both disputed.
    other_rank = torch.tensor([[0.0, 2.0, 0.0], [0.0, 2.0, 0.0]])
    y_pseudo = torch.tensor([[[0, 1]]])
    pred_student = torch.tensor([[[0, 1]]])  # this rank: both agree
    updated, updates = update_disagreement(
        torch.zeros(3),
        torch.zeros(3),
        pred_student,
        y_pseudo,
        y_pseudo != 255,
        momentum=0.0,
        reduce_sum=lambda totals: totals + other_rank,
    )
    torch.testing.assert_close(updated, torch.tensor([0.0, 2.0 / 3.0, 0.0]))
    assert torch.equal(updates, torch.tensor([1.0, 1.0, 0.0]))


def test_debiased_disagreement_recovers_the_rate_of_rarely_seen_classes():
    momentum = 0.99
    running, updates = torch.zeros(3), torch.zeros(3)
    y_pseudo = torch.tensor([[[0, 0, 1, 1]]])
    pred_student = torch.tensor([[[1, 1, 1, 0]]])  # class 0 always wrong, class 1 half wrong
    for _ in range(5):
        running, updates = update_disagreement(
            running, updates, pred_student, y_pseudo, y_pseudo != 255, momentum
        )
    # raw EMA after 5 updates is only 1 - 0.99^5 = 4.9% of the rate; the corrected one is exact
    torch.testing.assert_close(running[:2], (1 - momentum**5) * torch.tensor([1.0, 0.5]))
    debiased = debiased_disagreement(running, updates, momentum)
    torch.testing.assert_close(debiased, torch.tensor([1.0, 0.5, 0.0]))


def test_no_host_reads():
    # Meta tensors have no data: any .item(), nonzero() or Python branch on values would fail.
    logits = torch.empty(2, 19, 8, 8, device="meta", requires_grad=True)
    y_pseudo = torch.empty(2, 8, 8, dtype=torch.long, device="meta")
    running = torch.empty(19, device="meta")
    weights = class_weights(running, "difficulty")
    class_balanced_cross_entropy(
        logits, y_pseudo, torch.empty(2, 8, 8, device="meta"), weights
    ).backward()
    updated, _ = update_disagreement(
        running, torch.zeros_like(running), y_pseudo, y_pseudo, y_pseudo != 255
    )
    assert updated.shape == (19,)
