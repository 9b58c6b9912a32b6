"""What `omuda report` reads from a run, recorded while it trains.

At every evaluation: the per-class val IoU (metrics.jsonl group "val", keys `IoU/<class>`),
TensorBoard prediction strips (image | prediction | ground truth) of a few fixed val frames,
and, opt-in (`eval.pseudo_label_diagnostic`), the EMA teacher's per-class IoU on the target
train split (group "pseudo"): how good its pseudo-labels are, class by class. At every log
interval with CDM on: CDM's class weights and disagreement rates (group "cdm").
None of it feeds training: the teacher's buffers are restored after the diagnostic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from omuda.adaptation.class_decoupling import class_weights, debiased_disagreement
from omuda.config import Config
from omuda.data.labels import CLASS_NAMES, colorize
from omuda.data.transforms import normalize
from omuda.engine import builders
from omuda.engine.distributed import DistInfo
from omuda.engine.evaluate import EvalResult, evaluate_as_configured, infer_logits
from omuda.engine.logging import EventFile, MetricLogger
from omuda.engine.step import StepState

# Val frames shown in TensorBoard at each evaluation, and the widest panel written there.
PREVIEW_FRAMES = 3
_PREVIEW_MAX_WIDTH = 512


def per_class(prefix: str, values: Sequence[float]) -> dict[str, float]:
    """{"<prefix>/<class name>": value} for K per-class values (K = 19: Cityscapes names)."""
    names = CLASS_NAMES if len(values) == len(CLASS_NAMES) else [str(i) for i in range(len(values))]
    return {f"{prefix}/{name}": float(value) for name, value in zip(names, values, strict=True)}


def val_record(result: EvalResult) -> dict[str, float]:
    """The metrics.jsonl "val" record of one evaluation: mIoU, mIoU16 and IoU/<class>."""
    return {"mIoU": result.miou, "mIoU16": result.miou16, **per_class("IoU", result.iou)}


def evenly_spaced(count: int, wanted: int) -> list[int]:
    """`wanted` indices spread evenly over range(count), first and last included (all of
    them when wanted is 0 or at least count)."""
    if wanted <= 0 or wanted >= count:
        return list(range(count))
    if wanted == 1:
        return [0]
    return sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)})


def pseudo_label_dataset(cfg: Config, world_size: int = 1) -> Dataset:
    """The target train split as an evaluation dataset (whole images at the target scale,
    labels at full size), `eval.pseudo_label_images` of them evenly spaced, as many as a
    multiple of `world_size` (a teacher with SyncBatchNorm in batch-statistics mode needs
    every rank to run the same number of forwards)."""
    as_val = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, val=cfg.data.target))
    dataset = builders.build_val_dataset(as_val)
    indices = evenly_spaced(len(dataset), cfg.eval.pseudo_label_images)
    return Subset(dataset, indices[: len(indices) - len(indices) % world_size])


def prediction_strip(image: np.ndarray, prediction: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(h,w,3) uint8 image, (h,w) prediction and label train ids -> (h', 3w', 3) uint8:
    image | prediction | ground truth in the Cityscapes palette, at most 512 pixels wide
    per panel (nearest-neighbour shrinking keeps the label colours exact)."""
    step = max(1, int(np.ceil(image.shape[1] / _PREVIEW_MAX_WIDTH)))
    panels = [image, colorize(prediction), colorize(label)]
    return np.concatenate([panel[::step, ::step] for panel in panels], axis=1)


def _label_at(label: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Full-size label (H,W) -> (h,w) uint8 by nearest neighbour (255 stays ignore)."""
    resized = torch.nn.functional.interpolate(label[None, None].float(), size=size, mode="nearest")
    return resized[0, 0].to(torch.uint8).numpy()


class RunRecorder:
    """Records the report's inputs during `train`: see the module docstring.

    Every rank calls `after_evaluation` (the diagnostic is a distributed evaluation); only
    the main process writes.
    """

    def __init__(
        self,
        cfg: Config,
        work_dir: Path,
        val: Dataset | None,
        teacher: nn.Module | None,
        dist_info: DistInfo,
        amp_dtype: torch.dtype | None,
    ) -> None:
        self.cfg = cfg
        self.main = dist_info.rank == 0
        self.dist_info = dist_info
        self.amp_dtype = amp_dtype
        self.teacher = teacher
        self.pseudo_labels = None
        if cfg.eval.pseudo_label_diagnostic and teacher is not None:
            # built now, so that missing labels stop the run at its start
            self.pseudo_labels = pseudo_label_dataset(cfg, dist_info.world_size)
        elif cfg.eval.pseudo_label_diagnostic and self.main:
            print("note: eval.pseudo_label_diagnostic skipped: no EMA teacher in this run")
        self.val = val
        self.preview = evenly_spaced(len(val), PREVIEW_FRAMES)[:PREVIEW_FRAMES] if val else []
        self._images = None
        if self.main and self.preview:
            self._images = EventFile(work_dir / "tensorboard" / "predictions")

    def log_class_weights(self, logger: MetricLogger, iteration: int, state: StepState) -> None:
        """CDM's class weights w_k and debiased disagreement beta_k (group "cdm")."""
        adaptation = self.cfg.adaptation
        if adaptation.class_decoupling == "none":
            return
        beta = debiased_disagreement(
            state.class_disagreement, state.class_disagreement_updates, adaptation.cdm_momentum
        )
        weights = class_weights(beta, adaptation.class_decoupling)
        values = {**per_class("weight", weights.tolist()), **per_class("beta", beta.tolist())}
        logger.log(iteration, "cdm", values)

    def after_evaluation(
        self, logger: MetricLogger, iteration: int, student: nn.Module, progress: bool
    ) -> None:
        """TensorBoard prediction strips of the student; the pseudo-label diagnostic."""
        if self._images is not None:
            self._write_previews(iteration, student)
        if self.pseudo_labels is not None:
            result = self._score_teacher(progress)
            logger.log(iteration, "pseudo", {"mIoU": result.miou, **per_class("IoU", result.iou)})

    def _score_teacher(self, progress: bool) -> EvalResult:
        # A teacher with batch-statistics BatchNorm updates its running statistics on every
        # forward; they are put back so the diagnostic leaves no trace in the run.
        saved = [buffer.clone() for buffer in self.teacher.buffers()]
        try:
            return evaluate_as_configured(
                self.teacher, self.pseudo_labels, self.cfg, self.dist_info, self.amp_dtype, progress
            )
        finally:
            with torch.no_grad():
                for buffer, value in zip(self.teacher.buffers(), saved, strict=True):
                    buffer.copy_(value)

    @torch.no_grad()
    def _write_previews(self, iteration: int, student: nn.Module) -> None:
        cfg = self.cfg
        was_training = student.training
        student.eval()
        try:
            for index in self.preview:
                item = self.val[index]
                image = item["image"].unsqueeze(0).to(self.dist_info.device)
                autocast = (
                    torch.autocast(device_type=image.device.type, dtype=self.amp_dtype)
                    if self.amp_dtype is not None
                    else torch.autocast(device_type=image.device.type, enabled=False)
                )
                with autocast:
                    logits = infer_logits(
                        student,
                        normalize(image),
                        cfg.eval.mode,
                        cfg.eval.crop_size,
                        cfg.eval.stride,
                        cfg.model.num_classes,
                    )
                prediction = logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()
                label = _label_at(item["label"], prediction.shape)
                strip = prediction_strip(item["image"].permute(1, 2, 0).numpy(), prediction, label)
                self._images.add_image(iteration, f"val/prediction/{item['name']}", strip)
        finally:
            student.train(was_training)

    def close(self) -> None:
        """Close the TensorBoard image file."""
        if self._images is not None:
            self._images.close()
            self._images = None
