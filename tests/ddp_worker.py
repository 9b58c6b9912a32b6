"""Run under torchrun by tests/test_train.py: train a few iterations, dump each rank's weights."""

import sys
from pathlib import Path

import torch

import omuda.engine.train as train_module
from omuda.config import load_config

config_path, work_dir, dump_dir, *overrides = sys.argv[1:]
cfg = load_config(config_path, overrides)
real_step = train_module.train_step


def step_and_dump(*args, **kwargs):
    losses = real_step(*args, **kwargs)
    student, teacher, state = args[2], args[3], args[6]
    if state.iteration == cfg.train.iters:
        rank = torch.distributed.get_rank()
        torch.save(
            {
                "student": student.state_dict(),
                "teacher": teacher.state_dict(),
                "cdm": {
                    "rate": state.class_disagreement,
                    "updates": state.class_disagreement_updates,
                },
            },
            Path(dump_dir) / f"rank{rank}.pt",
        )
    return losses


train_module.train_step = step_and_dump
train_module.train(cfg, Path(work_dir), progress=False)
