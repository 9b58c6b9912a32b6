"""Checkpoints: atomic writes, loadable with `torch.load(path, weights_only=True)`."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omuda.config import Config, config_from_dict
from omuda.engine.builders import build_student
from omuda.errors import OmudaError, shorten
from omuda.models.weights import load_segmentor_weights


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write `state` (tensors, dicts, lists, numbers, strings only) to `path` atomically.

    A temporary file in the same folder is flushed to disk (`fsync`) and renamed over the
    target, so an interrupted save or a full disk never leaves a truncated checkpoint and
    never loses the previous one; the temporary file is removed on failure.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    except PermissionError:
        raise OmudaError(f"cannot read {path}: permission denied") from None
    except Exception as error:  # torch raises many types for bad files
        code = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if code:  # never suggest torch's way around the refusal
            raise OmudaError(
                f"{path} holds the Python object {code.group(1)[:80]}, not only"
                " tensors and plain data: refused, since loading it could run code"
            ) from None
        raise OmudaError(
            f"{path} is not a readable checkpoint (truncated, damaged or not a PyTorch file)"
        ) from None
    if not isinstance(state, dict):
        raise OmudaError(f"{path} does not hold a checkpoint dict")
    _check_fields(state, path)
    return state


def _check_fields(state: dict[str, Any], path: Path) -> None:
    """The fields omuda writes must have their types: a damaged or crafted file fails here,
    in one line, not later in a traceback. Other formats (DAFormer's) lack these keys."""

    def refuse(key: str, what: str) -> None:
        raise OmudaError(
            f"{path} is not a valid checkpoint: {key!r} must be {what}, got {shorten(state[key])}"
        )

    iteration = state.get("iteration", 0)
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        refuse("iteration", "a non-negative integer")
    for key in ("config", "optimizer", "model", "teacher"):
        if key in state and not isinstance(state[key], dict):
            refuse(key, "a dict")
    for key in ("model", "teacher"):
        weights = state.get(key, {})
        if not all(isinstance(k, str) and torch.is_tensor(v) for k, v in weights.items()):
            refuse(key, "a dict of named tensors")
    for key in ("class_disagreement", "class_disagreement_updates"):
        if key in state and not torch.is_tensor(state[key]):
            refuse(key, "a tensor")
    if "config" in state:
        try:
            config_from_dict(state["config"])
        except OmudaError as error:
            raise OmudaError(f"{path} holds an invalid 'config': {error}") from None


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
        try:
            os.link(path, latest_tmp)
        except OSError:
            shutil.copyfile(path, latest_tmp)
        os.replace(latest_tmp, folder / "latest.pt")
    except BaseException:
        latest_tmp.unlink(missing_ok=True)
        raise
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
