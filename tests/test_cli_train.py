"""What `omuda train` says and keeps: the run header, train.log, best.pt beside latest.pt,
and `evaluate` naming the checkpoint it read."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import omuda.engine.train as train_module
from omuda.cli import main
from omuda.engine.evaluate import EvalResult
from omuda.errors import OmudaError

REPO = Path(__file__).resolve().parents[1]
SOURCE_ONLY = str(REPO / "configs/synthetic/source_only.yaml")


def scripted_evaluations(monkeypatch: pytest.MonkeyPatch, mious: list[float]) -> list[int]:
    """Each evaluation of the training loop returns the next mIoU of `mious` (every class
    at that IoU); returns the list the evaluated iterations' counts are appended to."""
    scores = iter(mious)
    calls: list[int] = []

    def fake_evaluate(*args, **kwargs) -> EvalResult:
        miou = next(scores)
        calls.append(1)
        return EvalResult([miou] * 19, miou, miou, miou, 0.5, 3)

    monkeypatch.setattr(train_module, "evaluate_as_configured", fake_evaluate)
    return calls


def train_argv(work: Path, tiny_run_args: list[str], *extra: str) -> list[str]:
    return ["train", SOURCE_ONLY, "--work-dir", str(work), *tiny_run_args, *extra]


def test_train_prints_a_header_and_keeps_the_console_in_train_log(tiny_run_args, tmp_path, capsys):
    work = tmp_path / "run"
    # not --quiet: the progress bars are drawn, and must not reach the log
    argv = train_argv(work, tiny_run_args, "train.iters=2", "train.eval_interval=1")
    assert main(argv) == 0
    shown = capsys.readouterr()
    console = shown.out
    assert f"run synthetic-source-only -> {work}" in console
    assert f"python {platform.python_version()}, torch {torch.__version__}, omuda" in console
    assert "device cpu, threads 1 (" in console
    assert "2 iterations, batch 2 source; evaluation every 1" in console
    assert "images: 8 source, 3 val" in console  # the prepared benchmark's sizes
    assert f"log {work / 'train.log'}" in console
    assert "it/s" in shown.err  # a progress bar was drawn on the console

    log = (work / "train.log").read_text()
    for line in console.splitlines():  # every line the console showed is in the log
        assert line in log, line
    assert "resolved config:" in log and "  train:\n    iters: 2\n" in log
    assert "iter 1/2: source " in log  # the progress bar's values, once per log interval
    assert "it/s" not in log and "\r" not in log and "\x1b" not in log
    assert "mIoU (16, SYNTHIA)" in log and "SYNTHIA->Cityscapes protocols" in log


def test_train_log_is_appended_on_resume_and_records_why_a_run_stopped(
    tiny_run_args, tmp_path, monkeypatch
):
    work = tmp_path / "run"
    assert main(["--quiet", *train_argv(work, tiny_run_args, "train.iters=1")]) == 0

    def failing_step(*args, **kwargs):
        raise OmudaError("a loss went wrong")

    monkeypatch.setattr(train_module, "train_step", failing_step)
    argv = train_argv(work, tiny_run_args, "train.iters=2", "--resume")
    assert main(["--quiet", *argv]) == 2
    log = (work / "train.log").read_text()
    assert log.count("==== ") == 2 and log.count("run synthetic-source-only") == 2
    assert "(resumed)" in log and "resumed from" in log
    assert log.rstrip().endswith("stopped: OmudaError: a loss went wrong")


def test_best_checkpoint_is_kept_by_val_miou_and_named_by_evaluate(
    tiny_run_args, tmp_path, capsys, monkeypatch
):
    """Evaluations at 2, 4, 6 score 30, 20, 25 mIoU: best.pt is iteration 2's weights, and
    the final evaluation (iteration 6) stays in eval.json."""
    scripted_evaluations(monkeypatch, [0.30, 0.20, 0.25])
    work = tmp_path / "run"
    extra = ("train.iters=6", "train.eval_interval=2", "train.checkpoint_interval=2")
    assert main(["--quiet", *train_argv(work, tiny_run_args, *extra)]) == 0
    out = capsys.readouterr().out
    assert "iter 2: mIoU 30.00 (best so far: checkpoints/best.pt)" in out
    assert "iter 4: mIoU 20.00\n" in out and "iter 6: mIoU 25.00\n" in out
    assert f"best:  val mIoU 30.00 at iteration 2, {work / 'checkpoints/best.pt'}" in out
    assert f"final: val mIoU 25.00 at iteration 6, {work / 'checkpoints/latest.pt'}" in out

    checkpoints = work / "checkpoints"
    assert (checkpoints / "best.pt").read_bytes() == (checkpoints / "iter_2.pt").read_bytes()
    best = json.loads((checkpoints / "best.json").read_text())
    assert best["iteration"] == 2 and best["eval"]["miou"] == pytest.approx(0.30)
    result = json.loads((work / "eval.json").read_text())
    assert result["eval"]["miou"] == pytest.approx(0.25)
    assert result["eval"]["iteration"] == 6
    assert result["eval"]["checkpoint"] == "checkpoints/latest.pt"
    assert result["best"] == {
        "iteration": 2,
        "miou": pytest.approx(0.30),
        "checkpoint": "checkpoints/best.pt",
    }

    # evaluate says which checkpoint it read, and where the best one is
    monkeypatch.undo()
    assert main(["--quiet", "evaluate", "--checkpoint", str(work)]) == 0
    out = capsys.readouterr().out
    assert f"evaluated {checkpoints / 'latest.pt'} (iteration 6, student weights)" in out
    assert f"(iteration 2, val mIoU 30.00) is {checkpoints / 'best.pt'}" in out
    saved = json.loads((checkpoints / "latest.eval.json").read_text())
    assert saved["checkpoint"] == str(checkpoints / "latest.pt") and saved["iteration"] == 6
    assert saved["classes"][:2] == ["road", "sidewalk"] and saved["weights"] == "student"


def test_best_checkpoint_survives_a_resume_and_is_written_between_checkpoints(
    tiny_run_args, tmp_path, monkeypatch
):
    """Evaluations at 1 and 2 (checkpoints only at 2) score 10 and 5: best.pt is written
    anew at iteration 1; after a resume, 8 at iteration 3 does not replace it, 40 at 4 does."""
    scripted_evaluations(monkeypatch, [0.10, 0.05, 0.08, 0.40])
    work = tmp_path / "run"
    extra = ("train.eval_interval=1", "train.checkpoint_interval=2")
    assert main(["--quiet", *train_argv(work, tiny_run_args, "train.iters=2", *extra)]) == 0
    best = torch.load(work / "checkpoints/best.pt", weights_only=True)
    assert best["iteration"] == 1 and not (work / "checkpoints/iter_1.pt").exists()

    argv = train_argv(work, tiny_run_args, "train.iters=3", *extra, "--resume")
    assert main(["--quiet", *argv]) == 0
    assert json.loads((work / "checkpoints/best.json").read_text())["iteration"] == 1
    argv = train_argv(work, tiny_run_args, "train.iters=4", *extra, "--resume")
    assert main(["--quiet", *argv]) == 0
    best_bytes = (work / "checkpoints/best.pt").read_bytes()
    assert best_bytes == (work / "checkpoints/iter_4.pt").read_bytes()


def test_with_only_the_final_evaluation_best_pt_is_the_final_checkpoint(tiny_run_args, tmp_path):
    work = tmp_path / "run"
    assert main(["--quiet", *train_argv(work, tiny_run_args, "train.iters=1")]) == 0
    checkpoints = work / "checkpoints"
    # the same file (a hard link where the file system has them): no extra disk
    assert (checkpoints / "best.pt").read_bytes() == (checkpoints / "iter_1.pt").read_bytes()
    assert json.loads((checkpoints / "best.json").read_text())["iteration"] == 1


def test_the_sampling_table_says_what_it_is(capsys):
    from omuda.config import load_config
    from omuda.engine.builders import build_source_sampler

    cfg = load_config(REPO / "configs/synthetic/omuda.yaml")
    # Every class equally frequent: CAM picks the foreground group with probability 10/19,
    # then one of its 10 classes; the background group 9/19, one of 9: 1/19 each.
    class_pixels = np.full((4, 19), 1000, dtype=np.int64)
    build_source_sampler(cfg, class_pixels, 0, 0, 1, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("source sampling 'cam': each source crop is drawn for one class")
    assert len(lines) == 1 + 1 + 19  # explanation, column titles, one row per class
    probabilities = [float(re.search(r"\d\.\d{4}", line).group()) for line in lines[2:]]
    assert probabilities == [round(1 / 19, 4)] * 19


def test_a_console_redirected_into_train_log_is_not_copied_twice(tiny_run_args, tmp_path):
    """`omuda ablation` sends each run's output into its train.log: every line once."""
    work = tmp_path / "run"
    work.mkdir()
    command = [sys.executable, "-m", "omuda.cli", *train_argv(work, tiny_run_args, "train.iters=1")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with (work / "train.log").open("a") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=300)
    assert done.returncode == 0
    lines = (work / "train.log").read_text().splitlines()
    assert sum(line.startswith("run synthetic-source-only ->") for line in lines) == 1
    assert sum(line.startswith("mIoU (19)") for line in lines) == 1
    # the log-only lines still come, after what was printed before them
    assert lines.index("resolved config:") > next(
        i for i, line in enumerate(lines) if line.startswith("  log ")
    )
