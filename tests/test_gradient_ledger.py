"""The gradient ledger: each backward's own gradient from snapshots, by hand."""

import json

import pytest
import torch
from torch import nn

from omuda.engine.gradient_ledger import (
    GradientLedger,
    last_logged_shares,
    median_shares,
    share_table,
    shared_parameters,
)


def test_each_term_is_the_difference_of_snapshots():
    a = nn.Parameter(torch.zeros(2))
    b = nn.Parameter(torch.zeros(1))
    ledger = GradientLedger([a, b])
    (3.0 * a[0]).backward()  # b has no gradient yet: counted as 0
    ledger.record("source")
    (4.0 * a[1] + 0.0 * b[0]).backward()
    ledger.record("fd")
    (12.0 * b[0] - 3.0 * a[0]).backward()  # cancels the source term's gradient on a[0]
    ledger.record("target")
    norms = {term: norm.item() for term, norm in ledger.term_norms.items()}
    assert norms == pytest.approx({"source": 3.0, "fd": 4.0, "target": (144 + 9) ** 0.5})
    # accumulated: (3,0,0) -> (3,4,0) -> (0,4,12)
    assert [n.item() for n in ledger.cumulative_norms] == pytest.approx([3.0, 5.0, 160**0.5])
    summary = {key: value.item() for key, value in ledger.summary().items()}
    total = 3.0 + 4.0 + 153**0.5
    assert summary["grad_norm/fd"] == pytest.approx(4.0)
    assert summary["grad_share/source"] == pytest.approx(3.0 / total)
    assert summary["grad_share/target"] == pytest.approx(153**0.5 / total)
    with pytest.raises(ValueError, match="twice"):
        ledger.record("fd")


def test_a_term_without_gradient_has_share_zero_and_nothing_is_divided_by_zero():
    weight = nn.Parameter(torch.ones(3))
    ledger = GradientLedger([weight])
    ledger.record("source")  # nothing ran backward yet
    summary = ledger.summary()
    assert summary["grad_norm/source"].item() == 0.0 and summary["grad_share/source"].item() == 0.0
    assert GradientLedger([]).summary() == {}


def test_shared_parameters_are_the_backbone_of_any_wrapper():
    class Segmentor(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Linear(2, 2)
            self.decode_head = nn.Linear(2, 2)

    model = Segmentor()
    wrapped = nn.Module()
    wrapped.module = model
    expected = [model.backbone.weight, model.backbone.bias]
    assert shared_parameters(model) == expected
    assert shared_parameters(wrapped) == expected


def test_medians_and_the_compare_block(tmp_path):
    records = [
        {"grad_norm/source": 1.0, "grad_share/source": 0.5, "grad_norm/fd": 1.0},
        {"grad_norm/source": 3.0, "grad_share/source": 0.7, "grad_norm/fd": 2.0},
        {"grad_norm/source": 2.0, "grad_share/source": 0.6, "grad_norm/fd": 3.0},
    ]
    for record in records:
        record["grad_share/fd"] = 1.0 - record["grad_share/source"]
    medians = median_shares(records)
    assert list(medians) == ["source", "fd"]
    assert medians["source"] == pytest.approx((2.0, 0.6))
    assert medians["fd"] == pytest.approx((2.0, 0.4))

    metrics = tmp_path / "metrics.jsonl"
    lines = [
        {"iter": 1, "group": "train", "source": 2.0, "grad_share/source": 1.0},
        {"iter": 50, "group": "train", "source": 1.0, "grad_share/source": 0.75,
         "grad_share/target": 0.25},
        {"iter": 50, "group": "val", "mIoU": 0.3},
    ]  # fmt: skip
    metrics.write_text("\n".join(json.dumps(line) for line in lines) + '\n{"iter": 5')
    assert last_logged_shares(metrics) == (50, {"source": 0.75, "target": 0.25})
    assert last_logged_shares(tmp_path / "missing.jsonl") is None
    table = share_table(
        {"omuda": (50, {"source": 0.75, "target": 0.25}), "src": (10, {"source": 1.0})}
    )
    lines = table.splitlines()
    assert lines[0].startswith("gradient shares (last logged)")
    assert lines[1].split() == ["term", "omuda", "src"]
    assert lines[2].split() == ["iteration", "50", "10"]
    assert lines[3].split() == ["source", "75.00", "100.00"]
    assert lines[4].split() == ["target", "25.00", "-"]


def test_compare_shows_the_last_logged_shares_under_the_table(tmp_path, capsys):
    from omuda.cli import main

    iou = [0.5] * 19
    for name, shares in (("daformer", {"source": 0.9, "fd": 0.1}), ("old", None)):
        run = tmp_path / name
        run.mkdir()
        (run / "eval.json").write_text(json.dumps({"eval": {"miou": 0.5, "iou": iou}}))
        if shares is not None:
            record = {
                "iter": 25,
                "group": "train",
                **{f"grad_share/{k}": v for k, v in shares.items()},
            }
            (run / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    assert main(["compare", str(tmp_path / "daformer"), str(tmp_path / "old")]) == 0
    out = capsys.readouterr().out
    block = out[out.index("gradient shares (last logged)") :].splitlines()
    assert block[1].split() == ["term", "daformer"]  # runs without shares are left out
    assert block[3].split() == ["source", "90.00"] and block[4].split() == ["fd", "10.00"]
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "old")]) == 0
    assert "gradient shares" not in capsys.readouterr().out
