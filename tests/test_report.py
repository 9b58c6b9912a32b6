"""`omuda report` end to end: what tiny trainings record, the report built from two of them,
and that report opened in headless Chromium."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from omuda.cli import main
from omuda.data.labels import CLASS_NAMES
from omuda.engine.report.runs import read_run

REPO = Path(__file__).resolve().parents[1]
# Tiny OMUDA: every pseudo-label counts (threshold 0), so CDM's statistics move at once.
OMUDA = (
    "adaptation.pseudo_ignore_top=2",
    "adaptation.pseudo_ignore_bottom=8",
    "adaptation.kd_max_cells=16",
    "adaptation.cam_fine_block=4",
    "adaptation.cam_coarse_block=8",
    "adaptation.pseudo_threshold=0.0",
)
# 3 iterations of `tiny_run_args` (conftest), evaluated at 2 and 3, logged at each.
THREE_ITERATIONS = ("train.iters=3", "train.eval_interval=2", "train.log_interval=1")


@pytest.fixture(scope="module")
def report_run_args(tiny_run_args) -> list[str]:
    """Three tiny iterations on conftest's prepared synthetic benchmark."""
    return [*tiny_run_args, *THREE_ITERATIONS]


def _train(config: str, work_dir: Path, args: list[str], *extra: str) -> Path:
    argv = ["--quiet", "train", str(REPO / "configs/synthetic" / config), "--work-dir"]
    assert main([*argv, str(work_dir), *args, *extra]) == 0
    return work_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory, report_run_args) -> dict[str, Path]:
    """Source-only and OMUDA (with the pseudo-label diagnostic) after 3 tiny iterations."""
    root = tmp_path_factory.mktemp("report_runs")
    return {
        "omuda": _train(
            "omuda.yaml",
            root / "omuda",
            report_run_args,
            *OMUDA,
            "eval.pseudo_label_diagnostic=true",
        ),  # fmt: skip
        "source_only": _train("source_only.yaml", root / "source_only", report_run_args),
    }


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    argv = ["--quiet", "report", str(runs["source_only"]), str(runs["omuda"]), "--out", str(out)]
    assert main([*argv, "--scan", "3", "--rows", "2", "--tsne-pixels", "10"]) == 0
    return out


def test_training_records_per_class_iou_pseudo_labels_and_cdm_weights(runs):
    run = read_run(runs["omuda"])
    assert sorted(run.records["val"]) == [2, 3] and sorted(run.records["pseudo"]) == [2, 3]
    assert sorted(run.records["cdm"]) == [1, 2, 3]
    for group in ("val", "pseudo"):
        for values in run.records[group].values():
            ious = [values[f"IoU/{name}"] for name in CLASS_NAMES]
            present = [v for v in ious if not np.isnan(v)]
            assert all(0.0 <= v <= 1.0 for v in present)
            # the mIoU recorded beside them is their mean
            assert values["mIoU"] == pytest.approx(sum(present) / len(present))
    weights = np.array([run.records["cdm"][3][f"weight/{name}"] for name in CLASS_NAMES])
    beta = np.array([run.records["cdm"][3][f"beta/{name}"] for name in CLASS_NAMES])
    # w_k = beta_k ("difficulty"), floored at 0.05 and capped at 1
    assert np.allclose(weights, np.clip(beta, 0.05, 1.0)) and beta.max() > 0.05
    assert "pseudo" not in read_run(runs["source_only"]).records  # no teacher, no diagnostic


def test_pseudo_label_diagnostic_never_feeds_training(runs, report_run_args, tmp_path):
    plain = _train("omuda.yaml", tmp_path / "plain", report_run_args, *OMUDA)
    with_diagnostic = torch.load(runs["omuda"] / "checkpoints/latest.pt", weights_only=True)
    without = torch.load(plain / "checkpoints/latest.pt", weights_only=True)
    for key in ("model", "teacher"):  # buffers included: BatchNorm statistics
        for name, tensor in without[key].items():
            assert torch.equal(tensor, with_diagnostic[key][name]), f"{key}.{name}"
    assert torch.equal(without["class_disagreement"], with_diagnostic["class_disagreement"])


def test_tensorboard_has_per_class_iou_and_prediction_strips(runs):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    def tags(folder: Path) -> dict[str, list[object]]:
        found: dict[str, list[object]] = {}
        for path in folder.glob("events.out.tfevents.*"):
            for event in EventFileLoader(str(path)).Load():
                for value in event.summary.value:
                    found.setdefault(value.tag, []).append((event.step, value))
        return found

    scalars = tags(runs["omuda"] / "tensorboard")
    assert [step for step, _ in scalars["val/IoU/road"]] == [2, 3]
    assert "pseudo/IoU/car" in scalars and "cdm/weight/car" in scalars
    images = tags(runs["omuda"] / "tensorboard/predictions")
    assert len(images) == 3  # three fixed val frames, each at both evaluations
    for strips in images.values():
        assert [step for step, _ in strips] == [2, 3]
        step, value = strips[0]
        strip = np.asarray(Image.open(io.BytesIO(value.tensor.string_val[2])))
        # image | prediction | ground truth, 128x64 each
        assert strip.shape == (64, 3 * 128, 3)


def test_report_of_two_runs(report):
    text = (report / "index.html").read_text()
    sources = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert sources and not [s for s in sources if "://" in s and not s.startswith("data:")]
    for source in sources:
        if not source.startswith("data:"):
            assert (report / source).is_file(), source
    stems = {path.stem for path in (report / "figures").glob("*.png")}
    assert stems == {path.stem for path in (report / "figures").glob("*.svg")}
    assert stems >= {
        "class_iou", "training_curves", "fig1a_class_spread", "fig1c_val_iou_over_training",
        "fig1d_pseudo_label_iou", "fig1d_cdm_class_weights", "fig3_qualitative", "fig5_tsne",
    }  # fmt: skip
    assert "source_only" in text and "omuda" in text


def test_report_in_headless_chromium(report, tmp_path):
    from chromium import check_pages, find_chromium

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium not found: the report's browser check is skipped")
    # A page that must fail the same checks, so they are known to catch problems.
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="missing.png"><script>console.error("boom")</script></body></html>'
    )
    page, bad = check_pages(chromium, [report / "index.html", broken])
    assert bad.broken_images == ["missing.png"] and any("boom" in e for e in bad.errors)
    assert page.errors == [] and page.broken_images == []
    assert page.image_count >= 8
    screenshot = Image.open(io.BytesIO(page.screenshot)).convert("RGB")
    screenshot.save(tmp_path / "report.png")
    pixels = np.asarray(screenshot)
    assert screenshot.height > 2000  # the whole page, not one screen
    colours = np.unique(pixels.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 200 and pixels.std() > 20  # not blank
