"""What a training checkpoint holds for `--resume`, the check that a resumed run is the
same experiment, and putting the saved state back into the models, optimiser and step state."""

from __future__ import annotations

import torch
from torch import nn

from omuda.config import Config, config_to_dict
from omuda.engine.step import StepState
from omuda.errors import OmudaError


def training_state(
    cfg: Config,
    student: nn.Module,
    teacher: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    state: StepState,
) -> dict:
    """Everything `--resume` needs, in types `torch.load(weights_only=True)` accepts."""
    checkpoint = {
        "model": student.state_dict(),
        "optimizer": optimizer.state_dict(),
        "iteration": state.iteration,
        "config": config_to_dict(cfg),
        "class_disagreement": state.class_disagreement,
        "class_disagreement_updates": state.class_disagreement_updates,
    }
    if teacher is not None:
        checkpoint["teacher"] = teacher.state_dict()
    return checkpoint


def check_same_experiment(cfg: Config, checkpoint: dict) -> None:
    """--resume must continue the same experiment: only train.*, eval.*, data.root and
    data.workers may change."""
    saved = checkpoint.get("config", {})
    current = config_to_dict(cfg)
    movable = {"data.root", "data.workers"}  # where the data lives, how it is read
    changed = [
        f"{section}.{key}"
        for section in ("data", "model", "adaptation")
        for key in current[section]
        if saved.get(section, {}).get(key) != current[section][key]
        and f"{section}.{key}" not in movable
    ]
    if changed:
        raise OmudaError(
            "--resume with a different experiment than the checkpoint's: "
            + ", ".join(changed[:5])
            + " differ (only train.*, eval.*, data.root and data.workers may change)"
        )


def restore_training_state(
    checkpoint: dict,
    student: nn.Module,
    teacher: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    state: StepState,
    device: torch.device,
) -> None:
    """Load a `training_state` checkpoint into the models, optimiser and step state (on
    `device`); OmudaError when it does not fit this configuration's models."""
    try:
        student.load_state_dict(checkpoint["model"])
        if teacher is not None:
            teacher.load_state_dict(checkpoint["teacher"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state.iteration = int(checkpoint["iteration"])
        for key in ("class_disagreement", "class_disagreement_updates"):
            if checkpoint[key].shape != getattr(state, key).shape:
                raise ValueError(f"{key} has shape {tuple(checkpoint[key].shape)}")
            setattr(state, key, checkpoint[key].to(device))
    except (KeyError, RuntimeError, ValueError, TypeError) as error:
        raise OmudaError(
            f"the checkpoint does not match this configuration ({str(error).splitlines()[0]})"
        ) from None
