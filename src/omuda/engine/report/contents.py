"""Which figures a report holds, with their captions, and notes for those it cannot draw."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from omuda.engine.report import figures as plots
from omuda.engine.report.page import FigureEntry
from omuda.engine.report.paper import PaperRow
from omuda.engine.report.runs import RunGroup
from omuda.errors import OmudaError

if TYPE_CHECKING:
    from omuda.engine.report.build import ReportOptions


def _save(figure: object, folder: Path, stem: str, title: str, caption: str) -> FigureEntry:
    plots.save_figure(figure, folder, stem)
    return FigureEntry(stem, title, caption)


def draw_recorded(
    groups: Sequence[RunGroup],
    paper_rows: Sequence[PaperRow],
    things: Sequence[int],
    folder: Path,
    notes: list[str],
) -> list[FigureEntry]:
    """The figures drawn from metrics.jsonl alone; a note for each one the runs lack."""
    entries = [
        _save(
            plots.class_iou_bars(groups, paper_rows), folder, "class_iou", "Per-class IoU",
            "The table above as bars; error bars: ± std over seeds"
            + ("; markers: the paper's rows." if paper_rows else "."),
        )
    ]  # fmt: skip
    curves = plots.training_curves(groups)
    if curves is not None:
        entries.append(_save(
            curves, folder, "training_curves", "Training curves",
            "Each loss term, the learning rate, the pseudo-label confidence (share of target"
            " pixels above the threshold) and val mIoU; line: mean over seeds, band: ± std.",
        ))  # fmt: skip
    if all(len(group.runs) == 1 for group in groups):
        notes.append(
            "Each config has one seed: Fig. 1(a)'s spread across seeds needs two or more"
            " (e.g. omuda ablation methods --seeds 0 1 2)."
        )
    entries.append(_save(
        plots.class_spread(groups, things), folder, "fig1a_class_spread",
        "Fig. 1(a): per-class IoU across seeds",
        "Each seed's final IoU (dots) and the mean ± std, background and foreground classes"
        " apart. The paper observes a larger spread on foreground classes (Fig. 1a).",
    ))  # fmt: skip
    over_training = plots.class_grid(groups, "val", "IoU", "Val IoU per class over training",
                                     things)  # fmt: skip
    if over_training is None:
        notes.append(
            "Fig. 1(c): no per-class val IoU over training (these runs were trained before"
            " omuda recorded it at every evaluation)."
        )
    else:
        entries.append(_save(
            over_training, folder, "fig1c_val_iou_over_training",
            "Fig. 1(c): per-class val IoU over training",
            "Val IoU of every class at each evaluation; the paper shows foreground classes"
            " degrading early while background classes stay stable (Fig. 1c).",
        ))  # fmt: skip
    pseudo = plots.class_grid(groups, "pseudo", "IoU",
                              "Teacher pseudo-label IoU per class on the target train split",
                              things)  # fmt: skip
    if pseudo is None:
        notes.append(
            "Fig. 1(d) pseudo-label quality: not recorded. Train with"
            " eval.pseudo_label_diagnostic=true (self-training runs; the target train split"
            " needs labels, as the synthetic benchmark and Cityscapes have)."
        )
    else:
        entries.append(_save(
            pseudo, folder, "fig1d_pseudo_label_iou",
            "Fig. 1(d): pseudo-label quality per class over training",
            "IoU of the EMA teacher's predictions (the pseudo-labels before the confidence"
            " threshold) against the target train labels at each evaluation: how reliable"
            " each class's pseudo-labels are (Fig. 1d). A diagnostic only; it never feeds"
            " training.",
        ))  # fmt: skip
    weights = plots.class_grid(groups, "cdm", "weight", "CDM class weight w_k over training",
                               things, scale=1.0)  # fmt: skip
    uses_cdm = any(
        g.first.config.get("adaptation", {}).get("class_decoupling", "none") != "none"
        for g in groups
    )
    if weights is not None:
        entries.append(_save(
            weights, folder, "fig1d_cdm_class_weights", "CDM class weights over training",
            "The class weights w_k of OMUDA's class decoupling (from the debiased per-class"
            " disagreement rate beta_k, floored at 0.05) at each log interval.",
        ))  # fmt: skip
    elif uses_cdm:
        notes.append("CDM class weights: not recorded by these runs (trained before omuda"
                     " logged them).")  # fmt: skip
    else:
        notes.append("CDM class weights: no run uses CDM (adaptation.class_decoupling=none).")
    return entries


def draw_inferred(
    groups: Sequence[RunGroup], options: ReportOptions, folder: Path, notes: list[str]
) -> list[FigureEntry]:
    """Qualitative rows and t-SNE from each config's first seed's checkpoint."""
    from omuda.engine.checkpoint import load_model_for_inference
    from omuda.engine.report import inference, visuals

    models = {}
    for group in groups:
        run = group.first
        column = group.label if len(group.runs) == 1 else f"{group.label} (seed {run.seed})"
        if run.checkpoint is None:
            notes.append(
                f"{run.path}: no checkpoints/latest.pt, left out of the inference figures."
            )
            continue
        try:
            models[column] = load_model_for_inference(run.checkpoint)
        except OmudaError as error:
            notes.append(f"{run.path}: its checkpoint does not load ({error}).")
    if not models:
        notes.append("Qualitative rows and t-SNE: no run has a loadable checkpoint.")
        return []
    first_cfg = next(iter(models.values()))[0]
    try:
        frames = inference.load_frames(first_cfg, options.frames, options.scan)
    except inference.FramesNotFound as error:
        notes.append(f"Qualitative rows and t-SNE need the val split: {error}")
        return []
    device = _device(options.device)
    pixels = inference.sample_pixels(frames.labels, options.tsne_pixels)
    predictions, features = {}, {}
    with torch.no_grad():
        for column, (cfg, model) in models.items():
            predictions[column], features[column] = inference.run_model(
                model, cfg, frames, pixels, device
            )
    chosen = [frames.names.index(name) for name in frames.chosen]
    rows = inference.pick_frames(list(predictions.values()), frames.labels, options.rows, chosen)
    how = "chosen with --frames" if chosen else (
        "picked among the scanned val frames as those where the runs differ most"
        if len(models) > 1 else "picked as those the run gets most wrong"
    )  # fmt: skip
    entries = [_save(
        visuals.qualitative_rows(frames, rows, predictions), folder, "fig3_qualitative",
        "Figs. 3-4: qualitative rows",
        f"Val frames ({how}): image, ground truth and each config's prediction in the"
        " Cityscapes palette; white outlines: pixels where the runs' predictions differ"
        " (one run: where it is wrong). Left: the frame and the share of its labelled"
        " pixels that differ.",
    )]  # fmt: skip
    if len(pixels.label) < 5:
        notes.append("t-SNE: fewer than 5 labelled val pixels in the scanned frames.")
        return entries
    embeddings = {column: inference.tsne_embedding(values) for column, values in features.items()}
    per_class = np.bincount(pixels.label).max()
    entries.append(_save(
        visuals.tsne_panels(embeddings, pixels, int(per_class)), folder, "fig5_tsne",
        "Fig. 5: t-SNE of decoder features",
        f"Decoder features (the fused map before the classifier) of {len(pixels.label)} val"
        f" pixels, up to {options.tsne_pixels} per class from {len(frames.names)} frames, the"
        " same pixels for every run, coloured by their ground-truth class. The paper reads"
        " tighter, better separated class clusters as better adaptation (Fig. 5).",
    ))  # fmt: skip
    return entries


def _device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise OmudaError("--device cuda: no CUDA device is available")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)
