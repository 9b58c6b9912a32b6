"""Checkpoints: atomic writes, loadable with `torch.load(path, weights_only=True)`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omuda.config import Config, config_from_dict
from omuda.engine.builders import build_student
from omuda.errors import OmudaError
from omuda.models.weights import load_segmentor_weights


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write `state` (tensors, dicts, lists, numbers, strings only) to `path` atomically.

    A temporary file in the same folder is renamed over the target, so an interrupted
    save never leaves a truncated checkpoint and never loses the previous one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file, or a work dir standing for its `checkpoints/latest.pt`."""
    if path.is_dir():
        latest = path / "checkpoints" / "latest.pt"
        if not latest.is_file():
            raise OmudaError(f"{path} is a folder without checkpoints/latest.pt")
        return latest
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; never unpickles code."""
    if not path.is_file():
        raise OmudaError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for bad files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise OmudaError(f"{path} is not a readable checkpoint ({first_line})") from None
    if not isinstance(state, dict):
        raise OmudaError(f"{path} does not hold a checkpoint dict")
    return state


def save_training_checkpoint(work_dir: Path, iteration: int, state: dict[str, Any]) -> Path:
    """`WORK_DIR/checkpoints/iter_N.pt`, and `latest.pt` pointing at the same bytes.

    `latest.pt` is a hard link swapped in atomically (a copy where links are unsupported).
    """
    folder = work_dir / "checkpoints"
    path = folder / f"iter_{iteration}.pt"
    save_checkpoint(state, path)
    latest_tmp = folder / ".latest.pt.tmp"
    latest_tmp.unlink(missing_ok=True)
    try:
        os.link(path, latest_tmp)
    except OSError:
        shutil.copyfile(path, latest_tmp)
    os.replace(latest_tmp, folder / "latest.pt")
    return path


def load_model_for_inference(
    path: Path, overrides: list[str] | tuple[str, ...] = (), weights: str = "student"
) -> tuple[Config, nn.Module]:
    """A checkpoint's network, ready for evaluation, with the config it was trained with.

    Accepts omuda checkpoints (config inside, the student under `model`, the EMA teacher
    under `teacher`) and released DAFormer / MIC checkpoints (`state_dict` with `model.` /
    `ema_model.` / `imnet_model.` prefixes; the `model.` student is loaded and the default
    GTA5->Cityscapes config applies). `weights="teacher"` picks the EMA teacher, whose
    predictions on the target train split are the pseudo-labels.
    """
    checkpoint = load_checkpoint(path)
    if isinstance(checkpoint.get("config"), dict):
        cfg = config_from_dict(checkpoint["config"], overrides)
        key = "teacher" if weights == "teacher" else "model"
        if key not in checkpoint:
            raise OmudaError(f"{path} holds no {weights} weights (trained without a teacher?)")
        state = checkpoint[key]
    elif weights == "teacher":
        raise OmudaError(f"{path} is not an omuda checkpoint: only its student can be loaded")
    else:
        cfg = config_from_dict({}, overrides)
        state = checkpoint
    if not isinstance(state, dict):
        raise OmudaError(f"{path} holds no model weights")
    cfg.model.pretrained = None  # the checkpoint supplies every weight
    model = build_student(cfg)
    report = load_segmentor_weights(model, state)
    if report.missing:
        raise OmudaError(f"{path} lacks weights for this model: {report.summary()}")
    return cfg, model
