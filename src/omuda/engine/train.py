"""The iteration-based training loop: data, models, schedule, evaluation, checkpoints.

Setup lives beside it: `batches` (endless loaders on the device), `precision` (autocast),
`resume` (what a checkpoint holds and restoring it), `distributed.gradient_averager`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from omuda.config import Config, save_config
from omuda.data.io import atomic_write_bytes
from omuda.engine import builders
from omuda.engine.batches import infinite_loader
from omuda.engine.checkpoint import BestCheckpoint, load_checkpoint, save_training_checkpoint
from omuda.engine.distributed import (
    all_reduce_sum_,
    barrier,
    cleanup,
    gradient_averager,
    init_distributed,
)
from omuda.engine.evaluate import EvalResult, evaluate_as_configured
from omuda.engine.gradient_ledger import GradientLedger, shared_parameters
from omuda.engine.logging import MetricLogger
from omuda.engine.optim import lr_factor, set_learning_rate
from omuda.engine.precision import amp_dtype, autocast_factory
from omuda.engine.recording import RunRecorder, val_record
from omuda.engine.resume import check_same_experiment, restore_training_state, training_state
from omuda.engine.run_log import (
    checkpoints_summary,
    console_copied_to,
    resolved_config,
    run_header,
)
from omuda.engine.step import StepState, train_step
from omuda.engine.threads import balanced_threads
from omuda.engine.workdir_lock import hold_work_dir
from omuda.errors import OmudaError


def train(cfg: Config, work_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    """Train as configured; returns the final evaluation as a dict (main process).

    The main process holds the work dir for the whole run: a second run into it stops at
    once (`hold_work_dir`). A loss or weight that is not finite stops the run with
    OmudaError before it reaches a checkpoint.
    """
    with contextlib.ExitStack() as on_exit:
        if os.environ.get("RANK", "0") == "0":  # torchrun's RANK, before its group exists
            on_exit.enter_context(hold_work_dir(work_dir))
        return _train(cfg, work_dir, resume, progress, on_exit)


def _train(
    cfg: Config, work_dir: Path, resume: bool, progress: bool, on_exit: contextlib.ExitStack
) -> dict:
    checkpoint_path = work_dir / "checkpoints" / "latest.pt"
    if resume and not checkpoint_path.is_file():
        raise OmudaError(f"--resume given but {checkpoint_path} does not exist")
    if not resume and checkpoint_path.is_file():
        raise OmudaError(
            f"{work_dir} already holds checkpoints: pass --resume to continue,"
            " or choose another --work-dir"
        )
    if work_dir.exists() and not work_dir.is_dir():
        raise OmudaError(f"--work-dir {work_dir} exists and is not a folder")
    console = None  # rank 0 copies what it prints into WORK_DIR/train.log
    if os.environ.get("RANK", "0") == "0":
        console = on_exit.enter_context(console_copied_to(work_dir / "train.log"))
    dist_info = init_distributed(cfg.train.device)
    device = dist_info.device
    main = dist_info.rank == 0
    # CPU threads: a fair share of the CPUs among the omuda runs on this machine.
    balancer = on_exit.enter_context(
        balanced_threads(cfg.train.threads, on_cpu=device.type == "cpu")
    )
    adaptation = cfg.adaptation
    uses_target = adaptation.self_training

    # Data.
    source = builders.build_train_dataset(cfg, cfg.data.source)
    class_pixels = builders.source_class_pixels(cfg, source)
    target = (
        builders.build_train_dataset(cfg, cfg.data.target, labelled=False) if uses_target else None
    )
    spatial_prior = None
    if uses_target and adaptation.mix == "camix":
        if not main:  # the main process computes and caches it first
            barrier()
        spatial_prior = builders.source_spatial_prior(cfg, source).to(device)
        if main:
            barrier()
    val = builders.build_val_dataset(cfg)  # evaluated every eval_interval and at the end
    if main:
        sizes = {"source": len(source), "target": len(target or []), "val": len(val)}
        print(run_header(cfg, work_dir, dist_info, balancer, sizes, resume))
    if console is not None:
        console.write_line(resolved_config(cfg))

    # Models: student, EMA teacher, frozen ImageNet extractor.
    torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
    if adaptation.feature_distillation != "none" and cfg.model.pretrained is None and main:
        print("warning: feature distillation with a randomly initialised 'ImageNet' model")
    models = builders.build_training_models(
        cfg, device, sync_batchnorm=device.type == "cuda" and dist_info.world_size > 1
    )
    student, teacher, imagenet, optimizer = (
        models.student,
        models.teacher,
        models.imagenet,
        models.optimizer,
    )
    generator = torch.Generator(device=device)
    state = StepState.initial(generator, cfg.model.num_classes, device)

    if resume:
        checkpoint = load_checkpoint(checkpoint_path)
        check_same_experiment(cfg, checkpoint)
        restore_training_state(checkpoint, student, teacher, optimizer, state, device)
        if main:
            print(f"resumed from {checkpoint_path} at iteration {state.iteration}")
        if state.iteration >= cfg.train.iters:
            raise OmudaError(
                f"{work_dir} is already at train.iters={cfg.train.iters}: raise train.iters"
                " to continue training"
            )
    if main:
        save_config(cfg, work_dir / "config.yaml")
    # Compile after restoring weights; the step reads the unwrapped module for the EMA.
    step_student = torch.compile(student) if cfg.train.compile else student

    consumed = state.iteration * cfg.data.batch_size
    source_sampler = builders.build_source_sampler(
        cfg, class_pixels, consumed, dist_info.rank, dist_info.world_size, verbose=main
    )
    source_batches = infinite_loader(
        source, source_sampler, cfg.data.batch_size, cfg.data.workers, device
    )
    on_exit.callback(source_batches.close)  # the workers stop when training ends or fails
    target_batches = None
    if target is not None:
        target_sampler = builders.build_target_sampler(
            cfg, len(target), consumed, dist_info.rank, dist_info.world_size
        )
        target_batches = infinite_loader(
            target, target_sampler, cfg.data.batch_size, cfg.data.workers, device
        )
        on_exit.callback(target_batches.close)

    logger = MetricLogger(work_dir, enabled=main)
    dtype = amp_dtype(cfg, device)
    recorder = RunRecorder(cfg, work_dir, val, teacher, dist_info, dtype)
    autocast = autocast_factory(device, dtype)
    average_gradients = gradient_averager(student, dist_info)
    train_cfg = cfg.train
    bar = tqdm(
        total=train_cfg.iters,
        initial=state.iteration,
        disable=not (progress and main),
        dynamic_ncols=True,
    )
    last_eval: EvalResult | None = None
    best = BestCheckpoint(work_dir, resume)  # checkpoints/best.pt, by val mIoU
    started = time.perf_counter()
    # Whether every loss since the last check was finite, kept on the device: it is read
    # (one host sync) only before a log line or a checkpoint.
    losses_finite = torch.ones((), dtype=torch.bool, device=device)
    checked = state.iteration
    while state.iteration < train_cfg.iters:
        iteration = state.iteration
        factor = lr_factor(
            iteration,
            train_cfg.iters,
            train_cfg.warmup_iters,
            train_cfg.warmup_ratio,
            train_cfg.poly_power,
        )
        set_learning_rate(optimizer, factor)
        # Every draw of this iteration is a function of (seed, rank, iteration): resuming
        # reproduces an uninterrupted run exactly, with no RNG state to carry.
        global_seed, step_seed = _iteration_seeds(train_cfg.seed, dist_info.rank, iteration)
        torch.manual_seed(global_seed)  # dropout, drop-path
        state.generator.manual_seed(step_seed)  # mixing, augmentation, masks, KD cells
        batch_src = next(source_batches)
        batch_tgt = next(target_batches) if target_batches is not None else None
        student.train()
        done = iteration + 1
        log_now = train_cfg.log_interval and (done % train_cfg.log_interval == 0 or done == 1)
        # Logged iterations also measure each loss term's share of the backbone's gradient.
        ledger = GradientLedger(shared_parameters(student)) if log_now else None
        losses = train_step(
            batch_src,
            batch_tgt,
            step_student,
            teacher,
            imagenet,
            optimizer,
            state,
            adaptation,
            cfg.data.thing_classes,
            autocast,
            average_gradients,
            gradient_ledger=ledger,
            spatial_prior=spatial_prior,
        )
        losses_finite &= torch.stack([loss.float() for loss in losses.values()]).isfinite().all()
        is_last = done == train_cfg.iters
        interval = train_cfg.checkpoint_interval
        save_now = is_last or bool(interval and done % interval == 0)
        if log_now or save_now:
            weights = [model for model in (student, teacher) if model is not None]
            _stop_unless_finite(losses_finite, weights if save_now else [], checked, done)
            checked = done
        if log_now:
            values = {key: float(value) for key, value in losses.items()}
            values["lr"] = optimizer.param_groups[0]["lr"]
            values["seconds"] = time.perf_counter() - started
            logger.log(done, "train", values)
            recorder.log_class_weights(logger, done, state)
            shown = {k: f"{v:.3f}" for k, v in values.items() if k in losses and "/" not in k}
            bar.set_postfix(shown)
            if console is not None:  # the bar's values, as a line of the log
                terms = " ".join(f"{key} {value}" for key, value in shown.items())
                console.write_line(f"iter {done}/{train_cfg.iters}: {terms} lr {values['lr']:.3g}")
        bar.update(1)
        if balancer is not None and (change := balancer.refresh()) and main:
            bar.write(change)
        # Checkpoint before evaluating: a failing evaluation must not lose the iterations.
        saved = None
        if main and save_now:
            saved = save_training_checkpoint(
                work_dir, done, training_state(cfg, student, teacher, optimizer, state)
            )
        if val is not None and (
            is_last or (train_cfg.eval_interval and done % train_cfg.eval_interval == 0)
        ):
            last_eval = evaluate_as_configured(
                student, val, cfg, dist_info, dtype, progress and main
            )
            logger.log(done, "val", val_record(last_eval))
            recorder.after_evaluation(logger, done, student, progress and main)
            if main:
                weights_now = functools.partial(
                    training_state, cfg, student, teacher, optimizer, state
                )
                kept = best.update(done, last_eval.to_dict(), saved, weights_now)
                note = " (best so far: checkpoints/best.pt)" if kept else ""
                bar.write(f"iter {done}: mIoU {100 * last_eval.miou:.2f}{note}")
    bar.close()
    logger.close()
    recorder.close()
    result = {"iterations": state.iteration, "seconds": time.perf_counter() - started}
    if last_eval is not None:
        final = {"iteration": state.iteration, "checkpoint": "checkpoints/latest.pt"}
        result["eval"] = {**last_eval.to_dict(), **final}
        if best.iteration is not None:
            result["best"] = {
                "iteration": best.iteration,
                "miou": best.miou,
                "checkpoint": "checkpoints/best.pt",
            }
        if main:
            atomic_write_bytes(work_dir / "eval.json", json.dumps(result, indent=2).encode())
            print(last_eval.table())
            print(checkpoints_summary(work_dir, state.iteration, last_eval.miou, best))
    cleanup()
    return result


def _stop_unless_finite(
    losses_finite: torch.Tensor, models: list[nn.Module], checked: int, done: int
) -> None:
    """OmudaError when a loss of iterations checked+1..done, or a weight of `models`, is NaN
    or infinite (on any rank), so that it never reaches a checkpoint. One host sync."""
    weights_finite = torch.ones_like(losses_finite)
    for model in models:
        for tensor in model.parameters():
            weights_finite &= tensor.isfinite().all()
    bad = torch.stack([~losses_finite, ~weights_finite]).float()
    bad_loss, bad_weights = (all_reduce_sum_(bad) > 0).tolist()
    kept = "the last good checkpoint (if any) stays checkpoints/latest.pt"
    if bad_loss:
        raise OmudaError(
            f"a training loss was not finite (NaN or inf) between iteration {checked + 1} and"
            f" {done}; stopped, {kept} (a lower train.lr may help)"
        )
    if bad_weights:
        raise OmudaError(
            f"the weights are not finite (NaN or inf) after iteration {done}; stopped before"
            f" saving them, {kept} (a lower train.lr may help)"
        )


def _iteration_seeds(seed: int, rank: int, iteration: int) -> tuple[int, int]:
    """Two independent seeds (global RNG, step generator) for one rank and iteration."""
    states = np.random.SeedSequence([seed, rank, iteration]).generate_state(2, np.uint64)
    return int(states[0] >> 1), int(states[1] >> 1)
