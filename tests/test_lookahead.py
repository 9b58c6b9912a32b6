"""Look-ahead (FST): virtual steps by hand, the real model and optimiser untouched afterwards."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from omuda.adaptation.future_teacher import lookahead_ema_alphas
from omuda.adaptation.teacher import update_teacher
from omuda.engine.lookahead import look_ahead


def _linear(weights: list[float]) -> nn.Linear:
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([weights]))
    return model


def _squared_output(model: nn.Module):
    """Gradients of (w . x)^2 at x = (1, 1): 2 (w1 + w2) for each weight."""
    x = torch.ones(1, 2)

    def compute_gradients(k: int) -> None:
        (model(x) ** 2).sum().backward()

    return compute_gradients


def test_one_sgd_step_by_hand():
    model = _linear([1.0, 2.0])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # w.x = 3, gradient 6 per weight: w' = (1, 2) - 0.1 * 6 = (0.4, 1.4); w'.x = 1.8.
    future = look_ahead(
        model,
        optimizer,
        _squared_output(model),
        steps=1,
        readout=lambda: (model.weight.detach().clone(), model(torch.ones(1, 2)).item()),
    )
    assert torch.allclose(future[0], torch.tensor([[0.4, 1.4]]))
    assert future[1] == pytest.approx(1.8)
    assert model.weight.tolist() == [[1.0, 2.0]] and model.weight.grad is None


def test_two_sgd_steps_by_hand():
    model = _linear([1.0, 2.0])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # Second step: w'.x = 1.8, gradient 3.6 per weight: (0.4, 1.4) - 0.36 = (0.04, 1.04).
    future = look_ahead(
        model, optimizer, _squared_output(model), steps=2, readout=lambda: model.weight.tolist()[0]
    )
    assert future == pytest.approx([0.04, 1.04])
    assert model.weight.tolist() == [[1.0, 2.0]]


def test_zero_steps_reads_the_current_model():
    model = _linear([1.0, 2.0])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    assert look_ahead(
        model, optimizer, _squared_output(model), 0, lambda: model.weight.tolist()
    ) == [[1.0, 2.0]]
    with pytest.raises(ValueError):
        look_ahead(model, optimizer, _squared_output(model), -1, lambda: None)


class _NormNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(x))


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    return {
        "model": {name: value.clone() for name, value in model.state_dict().items()},
        "optimizer": [
            {key: value.clone() for key, value in optimizer.state[param].items()}
            for param in model.parameters()
        ],
        "lr": [group["lr"] for group in optimizer.param_groups],
    }


def _assert_bit_identical(before: dict, after: dict) -> None:
    assert before["model"].keys() == after["model"].keys()
    for name in before["model"]:
        assert torch.equal(before["model"][name], after["model"][name]), name
    for state_before, state_after in zip(before["optimizer"], after["optimizer"], strict=True):
        assert state_before.keys() == state_after.keys()
        for key in state_before:
            assert torch.equal(state_before[key], state_after[key]), key
    assert before["lr"] == after["lr"]


def _adamw_after_one_real_step(seed: int) -> tuple[_NormNet, torch.optim.AdamW, torch.Tensor]:
    torch.manual_seed(seed)
    model = _NormNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    x = torch.randn(5, 3)
    model(x).square().mean().backward()
    optimizer.step()
    return model, optimizer, x


def test_model_buffers_and_adamw_state_are_restored_bit_for_bit():
    model, optimizer, x = _adamw_after_one_real_step(seed=0)
    before = _snapshot(model, optimizer)
    inputs = torch.randn(3, 5, 3)

    def compute_gradients(k: int) -> None:
        model(inputs[k]).square().mean().backward()

    future = look_ahead(model, optimizer, compute_gradients, 3, lambda: model.linear.weight.clone())
    assert not torch.equal(future, before["model"]["linear.weight"])  # it did move
    _assert_bit_identical(before, _snapshot(model, optimizer))
    assert all(param.grad is None for param in model.parameters())

    # The next real step is the one a run without the look-ahead takes.
    reference, reference_optimizer, _ = _adamw_after_one_real_step(seed=0)
    for net, opt in ((model, optimizer), (reference, reference_optimizer)):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    _assert_bit_identical(_snapshot(reference, reference_optimizer), _snapshot(model, optimizer))


def test_first_step_state_is_removed_again():
    model = _linear([1.0, 2.0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    look_ahead(model, optimizer, _squared_output(model), 1, lambda: None)
    assert len(optimizer.state) == 0


def test_restored_on_error():
    model = _linear([1.0, 2.0])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def fail() -> None:
        raise RuntimeError("readout failed")

    with pytest.raises(RuntimeError):
        look_ahead(model, optimizer, _squared_output(model), 1, fail)
    assert model.weight.tolist() == [[1.0, 2.0]]


def test_kept_optimizer_state_carries_the_virtual_gradients():
    # FST's published code restores the weights only: SGD momentum keeps the virtual step.
    model = _linear([1.0, 2.0])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    compute_gradients = _squared_output(model)
    look_ahead(model, optimizer, compute_gradients, 1, lambda: None, restore_optimizer=False)
    assert model.weight.tolist() == [[1.0, 2.0]]
    assert optimizer.state[model.weight]["momentum_buffer"].tolist() == [[6.0, 6.0]]
    # Real step: gradient 6 again, buffer 0.9 * 6 + 6 = 11.4, w = (1, 2) - 1.14.
    compute_gradients(0)
    optimizer.step()
    assert model.weight.detach() == pytest.approx(torch.tensor([[-0.14, 0.86]]))


def test_kept_buffers_follow_the_virtual_forwards():
    model = _NormNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(4, 3)
    look_ahead(
        model,
        optimizer,
        lambda k: model(x).sum().backward(),
        1,
        lambda: None,
        restore_buffers=False,
    )
    assert model.norm.num_batches_tracked.item() == 1


def test_fst_d_teacher_averages_the_virtual_student():
    student = _linear([1.0, 2.0])
    teacher = _linear([0.0, 0.0])
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    alphas = lookahead_ema_alphas(iteration=1, steps=1)
    assert alphas == pytest.approx([0.5, 2.0 / 3.0])
    look_ahead(
        student,
        optimizer,
        _squared_output(student),
        steps=1,
        before_step=lambda k: update_teacher(teacher, student, alphas[k]),
        readout=lambda: update_teacher(teacher, student, alphas[-1]),
        restore_optimizer=False,
        restore_buffers=False,
    )
    # Before the step: 0.5 * 0 + 0.5 * (1, 2) = (0.5, 1). After it, from w' = (0.4, 1.4):
    # 2/3 * (0.5, 1) + 1/3 * (0.4, 1.4) = (0.4667, 1.1333).
    assert teacher.weight.detach() == pytest.approx(torch.tensor([[1.4 / 3, 3.4 / 3]]))
    assert student.weight.tolist() == [[1.0, 2.0]]


def test_lookahead_ema_alphas_count_every_optimiser_step():
    assert lookahead_ema_alphas(0, 3) == []
    assert lookahead_ema_alphas(5, 0) == []
    # Iteration 1 follows one real step: n = 1, 2, 3, 4 -> 1 - 1/(n+1).
    assert lookahead_ema_alphas(1, 3) == pytest.approx([1 / 2, 2 / 3, 3 / 4, 4 / 5])
    # Iteration 2 follows 1 + 4 steps: n = 5 .. 8.
    assert lookahead_ema_alphas(2, 3) == pytest.approx([5 / 6, 6 / 7, 7 / 8, 8 / 9])
    assert lookahead_ema_alphas(1000, 3, alpha_max=0.999) == [0.999] * 4
