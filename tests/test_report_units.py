"""`omuda report` without training: reading and grouping runs, the tables' numbers, the
paper's rows, frame picking and pixel sampling, and one error line for each bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from omuda.cli import main
from omuda.data.labels import CLASS_NAMES
from omuda.engine.recording import evenly_spaced
from omuda.engine.report import ReportOptions, build_report
from omuda.engine.report.figures import curve_keys
from omuda.engine.report.inference import differing, pick_frames, sample_pixels
from omuda.engine.report.paper import PAPER_ROWS
from omuda.engine.report.runs import find_runs, group_runs, mean_std, read_records, read_run
from omuda.engine.report.visuals import outline
from omuda.errors import OmudaError


def fake_run(
    folder: Path,
    ious: list[list[float]],
    *,
    name: str = "synthetic-omuda",
    seed: int = 0,
    source: str = "gta",
    threads: int = 1,
) -> Path:
    """A work dir as `omuda train` leaves it: config.yaml and metrics.jsonl with train
    records at iterations 1 and 2 and one val record per entry of `ious` (K IoUs each)."""
    folder.mkdir(parents=True)
    config = {
        "name": name,
        "data": {"root": "nowhere", "source": {"kind": source}, "thing_classes": [11, 13]},
        "adaptation": {"class_decoupling": "none"},
        "train": {"seed": seed, "threads": threads},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    lines = [
        {"iter": i, "group": "train", "source": 1.0 / i, "lr": 0.1, "grad_share/source": 1.0}
        for i in (1, 2)
    ]
    for step, iou in enumerate(ious, start=1):
        per_class = {f"IoU/{c}": v for c, v in zip(CLASS_NAMES, iou, strict=True)}
        lines.append({"iter": 2 * step, "group": "val", "mIoU": float(np.mean(iou)), **per_class})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_paper_rows_average_to_their_tables_miou():
    for rows in PAPER_ROWS.values():
        for row in rows:
            present = [value for value in row.iou if value is not None]
            assert len(present) == (16 if "Table II" in row.table else 19)
            assert abs(sum(present) / len(present) - row.miou) < 0.06, row.label
    # spot checks against the tables: Table I OMUDA train 81.6; Table II OMUDA bus 64.2,
    # motorcycle 57.9, no terrain
    assert PAPER_ROWS["gta"][1].iou[16] == 81.6
    synthia = PAPER_ROWS["synthia"][1].iou
    assert synthia[15] == 64.2 and synthia[17] == 57.9 and synthia[9] is None


def test_mean_std_leaves_nan_out():
    mean, std = mean_std(np.array([[10.0, math.nan, math.nan], [20.0, 4.0, math.nan]]))
    assert mean[:2].tolist() == [15.0, 4.0] and math.isnan(mean[2])
    assert std[0] == pytest.approx(math.sqrt(50.0)) and std[1] == 0.0 and math.isnan(std[2])


def test_records_later_iteration_wins_and_bad_lines_are_counted(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"iter": 5, "group": "val", "mIoU": 0.1}\n'
        "not json\n"
        '{"iter": 5, "group": "val", "mIoU": null, "note": "text"}\n'  # resumed: logged again
        '{"iter": 6, "group": "train"'  # a line being written
    )
    records, skipped = read_records(path)
    assert list(records) == ["val"] and skipped == 2
    assert math.isnan(records["val"][5]["mIoU"]) and "note" not in records["val"][5]


def test_seeds_of_one_config_form_one_group(tmp_path):
    zeros, halves = [0.0] * 19, [0.5] * 19
    fake_run(tmp_path / "abl/methods/omuda/seed1", [halves], seed=1, threads=2)
    fake_run(tmp_path / "abl/methods/omuda/seed0", [zeros], seed=0)
    fake_run(tmp_path / "abl/methods/daformer/seed0", [zeros], name="synthetic-daformer")
    # the same run reached twice (ablation rows that are one experiment are links)
    (tmp_path / "abl/table4/all").mkdir(parents=True)
    (tmp_path / "abl/table4/all/seed0").symlink_to(tmp_path / "abl/methods/omuda/seed0")
    runs = [read_run(path) for path in find_runs([tmp_path / "abl"])]
    assert len(runs) == 3
    groups = group_runs(runs)
    assert [(g.label, g.seeds) for g in groups] == [("daformer", [0]), ("omuda", [0, 1])]
    assert groups[1].iou_matrix()[:, 0].tolist() == [0.0, 50.0]


def test_table_numbers_by_hand(tmp_path):
    # seed 0: IoU of class k = k %, seed 1: 50 % everywhere
    fake_run(tmp_path / "omuda/seed0", [[0.0] * 19, [k / 100 for k in range(19)]], seed=0)
    fake_run(tmp_path / "omuda/seed1", [[0.5] * 19], seed=1)
    index = build_report([tmp_path / "omuda"], tmp_path / "out", ReportOptions(inference=False))
    text = index.read_text()
    # road: 0 and 50 -> 25.0 ± 35.4; mIoU (19): 9 and 50 -> 29.5 ± 29.0
    assert "<td>25.0 ± 35.4</td>" in text
    assert "mIoU (19) (headline)</td><td>29.5 ± 29.0</td>" in text
    assert "(paper, Table" not in text  # synthetic: no paper rows
    assert "--no-inference" in text and "one seed" not in text
    for stem in ("class_iou", "training_curves", "fig1a_class_spread",
                 "fig1c_val_iou_over_training"):  # fmt: skip
        assert (tmp_path / "out/figures" / f"{stem}.png").stat().st_size > 1000
        assert (tmp_path / "out/figures" / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    assert "eval.pseudo_label_diagnostic=true" in text  # says how to record Fig. 1(d)
    groups = group_runs([read_run(tmp_path / "omuda/seed0")])
    assert curve_keys(groups) == [("train", "source"), ("train", "lr"), ("val", "mIoU")]


@pytest.fixture
def no_drawing(monkeypatch):
    """Tests of the page's text skip drawing the figures (seconds each)."""
    from omuda.engine.report import figures

    monkeypatch.setattr(figures, "save_figure", lambda figure, folder, stem: None)


def test_real_data_runs_get_the_papers_rows(tmp_path, no_drawing):
    fake_run(tmp_path / "gta", [[0.5] * 19], name="gta2cs-omuda")
    text = build_report([tmp_path / "gta"], tmp_path / "out", ReportOptions(inference=False))
    text = text.read_text()
    assert "DAFormer+OMUDA (paper, Table I)" in text and '<td class="paper">96.9</td>' in text
    assert '<td class="paper">72.0</td>' in text  # Table I's own mIoU
    fake_run(tmp_path / "syn", [[0.5] * 19], name="syn2cs-omuda", source="synthia")
    text = build_report([tmp_path / "syn"], tmp_path / "out2", ReportOptions(inference=False))
    text = text.read_text()
    assert "DAFormer+OMUDA (paper, Table II)" in text and '<td class="paper">65.0</td>' in text
    assert "mIoU (16) (headline)" in text and '<tr class="unscored"><td>' in text


def test_a_run_without_evaluation_is_named_on_the_page(tmp_path, no_drawing):
    fake_run(tmp_path / "runs/done", [[0.5] * 19])
    fake_run(tmp_path / "runs/started", [], name="synthetic-daformer")
    text = build_report([tmp_path / "runs"], tmp_path / "out", ReportOptions(inference=False))
    assert "started: no evaluation yet, left out of the report." in text.read_text()


def test_a_run_recorded_before_per_class_logging_reads_eval_json(tmp_path, no_drawing):
    run = fake_run(tmp_path / "old", [])
    (run / "metrics.jsonl").write_text('{"iter": 4, "group": "val", "mIoU": 0.3}\n')
    (run / "eval.json").write_text(json.dumps({"eval": {"iou": [0.3] * 18 + [None]}}))
    text = build_report([run], tmp_path / "out", ReportOptions(inference=False)).read_text()
    assert "<td>30.0</td>" in text and "Fig. 1(c): no per-class val IoU" in text


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_bad_inputs_end_in_one_error_line(tmp_path, capsys):
    out = str(tmp_path / "out")
    (tmp_path / "empty").mkdir()
    fake_run(tmp_path / "fresh", [])
    fake_run(tmp_path / "gta", [[0.5] * 19])
    fake_run(tmp_path / "syn", [[0.5] * 19], source="synthia")
    cases = {
        "not found": [str(tmp_path / "missing")],
        "is not a run folder": [str(tmp_path / "empty")],
        "has no evaluation yet": [str(tmp_path / "fresh")],
        "runs of different label sets": [str(tmp_path / "gta"), str(tmp_path / "syn")],
    }
    for expected, runs in cases.items():
        assert main(["report", *runs, "--out", out, "--no-inference"]) == 2
        assert expected in _error_line(capsys)
    (tmp_path / "fresh/config.yaml").write_text("[unclosed")
    assert main(["report", str(tmp_path / "fresh"), "--out", out]) == 2
    assert "not a readable run config" in _error_line(capsys)
    assert main(["report", str(tmp_path / "gta"), "--out", out, "--rows", "0"]) == 2
    assert "--rows must be at least 1" in _error_line(capsys)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/notes.txt").write_text("mine")
    assert main(["report", str(tmp_path / "gta"), "--out", str(tmp_path / "busy")]) == 2
    assert "holds other files" in _error_line(capsys)
    assert (tmp_path / "busy/notes.txt").read_text() == "mine"


def test_differing_pixels_and_frame_picking():
    label = np.array([[0, 0], [1, 255]], dtype=np.uint8)
    same = np.array([[0, 0], [1, 1]], dtype=np.uint8)
    other = np.array([[0, 2], [2, 2]], dtype=np.uint8)
    # two runs: where they differ (the unlabelled pixel never counts)
    assert differing([same, other], label).tolist() == [[False, True], [True, False]]
    # one run: where it is wrong
    assert differing([other], label).tolist() == [[False, True], [True, False]]
    labels = [label, label, label]
    run_a = [same, same, same]
    run_b = [same, other, np.array([[1, 0], [1, 0]], dtype=np.uint8)]  # 0, 2, 1 of 3 differ
    assert pick_frames([run_a, run_b], labels, rows=2) == [1, 2]
    assert pick_frames([run_a, run_b], labels, rows=2, fixed=[0]) == [0]


def test_pixel_sample_is_capped_per_class_and_hits_its_class():
    labels = [np.zeros((4, 5), dtype=np.uint8), np.full((4, 5), 255, dtype=np.uint8)]
    labels[0][1:3, 1:4] = 13  # 6 car pixels, 14 road pixels
    labels[1][0, 0] = 13
    sample = sample_pixels(labels, per_class=10)
    assert np.bincount(sample.label, minlength=19)[[0, 13]].tolist() == [10, 7]
    found = [
        labels[f][r, c] for f, r, c in zip(sample.frame, sample.row, sample.column, strict=True)
    ]
    assert found == sample.label.tolist()
    pairs = set(
        zip(sample.frame.tolist(), sample.row.tolist(), sample.column.tolist(), strict=True)
    )
    assert len(pairs) == 17  # without replacement


def test_outline_of_a_square():
    mask = np.zeros((5, 5), dtype=bool)
    mask[1:4, 1:4] = True
    expected = mask.copy()
    expected[2, 2] = False  # the one pixel with all four neighbours inside
    assert (outline(mask) == expected).all()


def test_evenly_spaced_indices():
    assert evenly_spaced(10, 3) == [0, 4, 9]  # round(4.5) is 4
    assert evenly_spaced(4, 0) == [0, 1, 2, 3] and evenly_spaced(2, 5) == [0, 1]
    assert evenly_spaced(7, 1) == [0]


def test_report_options_are_checked():
    with pytest.raises(OmudaError, match="--tsne-pixels must be at least 5"):
        ReportOptions(tsne_pixels=2).check()
