"""End-to-end: synth -> prepare -> train / resume / evaluate / predict on a tiny benchmark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import TINY_DATA
from omuda.cli import main
from omuda.config import load_config
from omuda.data.synthetic import generate_benchmark
from omuda.engine.train import train

REPO = Path(__file__).resolve().parents[1]

TINY = [
    *TINY_DATA,
    "train.warmup_iters=5",
    "train.log_interval=5",
    "train.eval_interval=0",
    "train.checkpoint_interval=10",
    "model.decoder_channels=16",
    "adaptation.pseudo_ignore_top=2",
    "adaptation.pseudo_ignore_bottom=8",
    "adaptation.kd_max_cells=16",
    "adaptation.mask_block_size=8",
    "adaptation.cam_fine_block=4",
    "adaptation.cam_coarse_block=8",
]


@pytest.fixture(scope="module")
def tiny_benchmark(tmp_path_factory, prepared_benchmark) -> Path:
    """This module's copy of conftest's prepared benchmark (CAMix caches its spatial prior
    beside the source labels)."""
    return Path(shutil.copytree(prepared_benchmark, tmp_path_factory.mktemp("synthetic") / "data"))


def tiny_config(name: str, root: Path, *extra: str):
    return load_config(REPO / "configs" / "synthetic" / name, [*TINY, f"data.root={root}", *extra])


def test_omuda_resume_reproduces_uninterrupted_run(tiny_benchmark, tmp_path):
    """20 iterations in one go equal 10 + resume + 10 (all OMUDA components and dropout on)."""
    # threshold 0: every pseudo-label has weight 1, so CDM statistics move from the start
    extra = ("train.iters=20", "adaptation.pseudo_threshold=0.0")
    straight = tiny_config("omuda.yaml", tiny_benchmark, *extra)
    train(straight, tmp_path / "straight", progress=False)

    interrupted = tiny_config("omuda.yaml", tiny_benchmark, *extra)
    _train_until(interrupted, tmp_path / "resumed", stop_after=10)
    train(interrupted, tmp_path / "resumed", resume=True, progress=False)

    done = torch.load(tmp_path / "straight/checkpoints/latest.pt", weights_only=True)
    again = torch.load(tmp_path / "resumed/checkpoints/latest.pt", weights_only=True)
    assert done["iteration"] == again["iteration"] == 20
    for key in ("model", "teacher"):
        for name, tensor in done[key].items():
            assert torch.equal(tensor, again[key][name]), f"{key}.{name} differs after resume"
    for key in ("class_disagreement", "class_disagreement_updates"):
        assert torch.equal(done[key], again[key])
    assert done["class_disagreement"].sum() > 0  # CDM statistics were really updated


def _train_until(cfg, work_dir: Path, stop_after: int) -> None:
    """Run `train` but interrupt it after `stop_after` iterations (checkpoint at 10)."""
    import omuda.engine.train as train_module

    real_step = train_module.train_step

    def step_then_stop(*args, **kwargs):
        losses = real_step(*args, **kwargs)
        state = args[6]
        if state.iteration > stop_after:
            raise KeyboardInterrupt
        return losses

    train_module.train_step = step_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, work_dir, progress=False)
    finally:
        train_module.train_step = real_step
    assert (work_dir / "checkpoints" / "iter_10.pt").is_file()


def _train_source_only(work: Path, overrides: list[str]) -> int:
    config = str(REPO / "configs/synthetic/source_only.yaml")
    return main(["--quiet", "train", config, "--work-dir", str(work), *overrides])


def test_cli_train_evaluate_predict(tiny_benchmark, tmp_path, capsys):
    work = tmp_path / "run"
    overrides = [*TINY, f"data.root={tiny_benchmark}", "train.iters=4", "train.eval_interval=4"]
    assert _train_source_only(work, overrides) == 0
    result = json.loads((work / "eval.json").read_text())
    assert 0.0 <= result["eval"]["miou"] <= 1.0 and result["eval"]["num_images"] == 3
    assert (work / "config.yaml").is_file() and (work / "metrics.jsonl").is_file()
    checkpoint = torch.load(work / "checkpoints/latest.pt", weights_only=True)
    assert set(checkpoint) >= {"model", "optimizer", "iteration", "config"}
    assert checkpoint["config"]["train"]["iters"] == 4

    # evaluate takes its config from the checkpoint; a work dir stands for its latest.pt
    out = tmp_path / "eval.json"
    assert main(["--quiet", "evaluate", "--checkpoint", str(work), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["miou"] == pytest.approx(result["eval"]["miou"])

    # a source-only run has no EMA teacher to evaluate
    argv = ["--quiet", "evaluate", "--checkpoint", str(work / "checkpoints/latest.pt"),
            "--weights", "teacher"]  # fmt: skip
    assert main(argv) == 2
    assert "holds no teacher weights" in capsys.readouterr().err

    frames = tiny_benchmark / "cityscapes/leftImg8bit/val"
    assert (
        main(
            [
                "--quiet",
                "predict",
                "--checkpoint",
                str(work / "checkpoints/latest.pt"),
                "--out",
                str(tmp_path / "pred"),
                str(frames),
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "pred").glob("*_pred.png"))) == 3

    # a second train into the same work dir without --resume is refused, nothing lost
    assert _train_source_only(work, overrides) == 2
    assert "--resume" in capsys.readouterr().err
    assert (work / "checkpoints/latest.pt").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "missing.yaml"], "config file not found"),
        (["train", "configs/synthetic/omuda.yaml", "train.itres=3"], "did you mean train.iters"),
        (["prepare", "gta", "/nonexistent/gta"], "/nonexistent/gta"),
        (["evaluate", "--checkpoint", "/nonexistent.pt"], "checkpoint not found"),
        (["evaluate", "--checkpoint", "configs"], "without checkpoints/latest.pt"),
    ],
)
def test_cli_bad_input_is_one_line(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("omuda: error:") and message in err and "\n" not in err


def test_cli_wrong_weight_file(tmp_path, capsys):
    bogus = tmp_path / "weights.pt"
    bogus.write_text("not a checkpoint")
    assert main(["--quiet", "evaluate", "--checkpoint", str(bogus)]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_missing_prepare_is_reported(tmp_path, capsys):
    generate_benchmark(
        tmp_path, num_source=2, num_target_train=2, num_target_val=1, num_synthia=0, progress=False
    )
    config = REPO / "configs/synthetic/source_only.yaml"
    assert (
        main(
            [
                "--quiet",
                "train",
                str(config),
                "--work-dir",
                str(tmp_path / "w"),
                f"data.root={tmp_path}",
                "train.iters=1",
            ]
        )
        == 2
    )
    assert "omuda prepare" in capsys.readouterr().err


def test_two_process_training_keeps_ranks_identical(tiny_benchmark, tmp_path):
    """torchrun, 2 CPU processes (gloo): student, EMA teacher and CDM statistic stay identical."""
    import os
    import subprocess
    import sys

    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(REPO / "tests" / "ddp_worker.py"), str(REPO / "configs/synthetic/omuda.yaml"),
        str(tmp_path / "work"), str(tmp_path), *TINY, f"data.root={tiny_benchmark}",
        "train.iters=3", "train.threads=1",
        "adaptation.pseudo_threshold=0.0",  # every pixel confident: the CDM statistic moves
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for part in ("student", "teacher", "cdm"):
        for name, tensor in rank0[part].items():
            assert torch.equal(tensor, rank1[part][name]), f"{part}.{name} differs across ranks"
    # only rank 0 wrote the checkpoint and logs, and training really changed the weights
    assert (tmp_path / "work/checkpoints/latest.pt").is_file()
    initial = torch.load(tmp_path / "work/checkpoints/latest.pt", weights_only=True)["model"]
    assert initial.keys() == rank0["student"].keys()
    assert rank0["cdm"]["updates"].sum() > 0


def test_evaluate_released_daformer_checkpoint(tiny_benchmark, tmp_path, capsys):
    """A DAFormer/MIC UDA checkpoint (model./ema_model./imnet_model. keys) evaluates as is."""
    from omuda.models import build_segmentor

    student = build_segmentor("mit_b5")
    state = {f"model.{k}": v for k, v in student.state_dict().items()}
    state.update({f"ema_model.{k}": v for k, v in student.state_dict().items()})
    state.update({f"imnet_model.{k}": v for k, v in student.backbone.state_dict().items()})
    path = tmp_path / "daformer_gta.pth"
    torch.save({"meta": {"iter": 40000}, "state_dict": state}, path)
    out = tmp_path / "eval.json"
    argv = ["--quiet", "evaluate", "--checkpoint", str(path), "--out", str(out),
            f"data.root={tiny_benchmark}", "data.val.scale=[64,32]"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(out.read_text())["num_images"] == 3
    assert "mIoU (19)" in capsys.readouterr().out


def test_prepare_resize_copy_is_picked_up_at_the_configured_scale(tmp_path, capsys):
    from omuda.engine.builders import build_train_dataset, build_val_dataset

    root = tmp_path / "data"
    generate_benchmark(
        root, num_source=3, num_target_train=2, num_target_val=2, num_synthia=0, progress=False
    )
    argv = ["--quiet", "prepare", "cityscapes", str(root / "cityscapes"), "--resize", "128", "64"]
    assert main(argv) == 0
    assert "4 pairs, 0 problems" in capsys.readouterr().out  # both splits
    cfg = tiny_config("daformer.yaml", root)
    target = build_train_dataset(cfg, cfg.data.target, labelled=False)
    assert target.resized_copy == (root / "cityscapes", root / "cityscapes/resized_128x64")
    bad = ["--quiet", "prepare", "gta", str(root / "gta"), "--resize", "0", "720"]
    assert main(bad) == 2 and "positive width and height" in capsys.readouterr().err
    assert build_val_dataset(cfg).resized_copy is not None
    other_scale = tiny_config("daformer.yaml", root, "data.target.scale=[64,32]")
    assert build_train_dataset(other_scale, other_scale.data.target).resized_copy is None


@pytest.mark.parametrize("config", ["daformer_fst.yaml", "daformer_camix.yaml", "dacs.yaml"])
def test_comparison_systems_train(tiny_benchmark, tmp_path, config):
    """FST's look-ahead, CAMix (its prior computed from the source labels and cached beside
    them, its crops placed by the loader's windows) and DACS run end to end."""
    extra = ("train.iters=2", "adaptation.camix_warmup_iters=0", "adaptation.pseudo_threshold=0.0")
    cfg = tiny_config(config, tiny_benchmark, *extra)
    train(cfg, tmp_path / "run", progress=False)
    records = [
        json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()
    ]
    first = next(r for r in records if r["group"] == "train")
    assert first["target"] > 0 and first["grad_share/target"] > 0
    if config == "daformer_camix.yaml":
        assert (tiny_benchmark / "gta" / "spatial_prior_32x64.npz").is_file()
