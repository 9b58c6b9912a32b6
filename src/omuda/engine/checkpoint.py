"""Checkpoints: atomic writes, loadable with `torch.load(path, weights_only=True)`."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omuda.config import Config, config_from_dict
from omuda.data.io import atomic_write_bytes
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
    _link_atomically(path, folder / "latest.pt")
    return path


def _link_atomically(source: Path, target: Path) -> None:
    """`target` becomes a hard link to `source` (a copy where links are unsupported),
    swapped in with one rename: readers see the old file or the new one, never a part."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


BEST_CHECKPOINT = "best.pt"
BEST_RECORD = "best.json"  # beside best.pt: its iteration and evaluation


def read_best_record(work_dir: Path) -> dict[str, Any] | None:
    """`{"iteration": N, "checkpoint": "checkpoints/best.pt", "eval": {...}}` of the run's
    best checkpoint by val mIoU, or None when the run kept none (or the record is
    unreadable)."""
    folder = work_dir / "checkpoints"
    if not (folder / BEST_CHECKPOINT).is_file():
        return None
    try:
        record = json.loads((folder / BEST_RECORD).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("eval"), dict):
        return None
    return record


def best_checkpoint_hint(given: Path, iteration: int | None) -> str | None:
    """For a work dir given as `--checkpoint` (read as its latest.pt, at `iteration`): where
    its best checkpoint by val mIoU is, when that is another iteration; else None."""
    best = read_best_record(given) if given.is_dir() else None
    if best is None or best.get("iteration") == iteration:
        return None
    miou = best["eval"].get("miou")
    score = f", val mIoU {100 * miou:.2f}" if isinstance(miou, float) else ""
    return (
        f"the best by val mIoU (iteration {best.get('iteration')}{score}) is"
        f" {given / 'checkpoints' / BEST_CHECKPOINT}: pass it as --checkpoint to use it"
    )


class BestCheckpoint:
    """Keeps `checkpoints/best.pt`: the weights of the evaluation with the highest val
    mIoU so far, with `best.json` (iteration, evaluation) beside it. Both are replaced
    atomically; a resumed run continues from the recorded best."""

    def __init__(self, work_dir: Path, resume: bool) -> None:
        self.folder = work_dir / "checkpoints"
        record = read_best_record(work_dir) if resume else None
        miou = record["eval"].get("miou") if record else None
        self.miou = float(miou) if isinstance(miou, (int, float)) else -math.inf
        self.iteration = int(record["iteration"]) if record else None

    def update(
        self,
        iteration: int,
        evaluation: dict[str, Any],
        saved: Path | None,
        state: Callable[[], dict[str, Any]],
    ) -> bool:
        """Keep this evaluation's weights when its mIoU beats the best so far: a link to
        `saved` (the checkpoint written at this iteration) or else `state()` written anew.
        Returns whether best.pt changed."""
        miou = evaluation.get("miou")
        if not isinstance(miou, float) or not math.isfinite(miou) or miou <= self.miou:
            return False
        path = self.folder / BEST_CHECKPOINT
        if saved is not None:
            _link_atomically(saved, path)
        else:
            save_checkpoint(state(), path)
        record = {
            "iteration": iteration,
            "checkpoint": f"checkpoints/{BEST_CHECKPOINT}",
            "eval": evaluation,
        }
        atomic_write_bytes(self.folder / BEST_RECORD, json.dumps(record, indent=2).encode())
        self.miou, self.iteration = miou, iteration
        return True


def load_model_for_inference(
    path: Path, overrides: list[str] | tuple[str, ...] = (), weights: str = "student"
) -> tuple[Config, nn.Module]:
    """A checkpoint's network and config (`load_inference_model` without the iteration)."""
    loaded = load_inference_model(path, overrides, weights)
    return loaded.cfg, loaded.model


@dataclass
class InferenceModel:
    """A checkpoint's network with its config and the iteration it was saved at (None when
    the file does not say)."""

    cfg: Config
    model: nn.Module
    iteration: int | None


def load_inference_model(
    path: Path, overrides: list[str] | tuple[str, ...] = (), weights: str = "student"
) -> InferenceModel:
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
    meta = checkpoint.get("meta")  # DAFormer / MIC: {"iter": N, ...}
    iteration = checkpoint.get("iteration", meta.get("iter") if isinstance(meta, dict) else None)
    return InferenceModel(cfg, model, iteration if isinstance(iteration, int) else None)
