"""The report's inference figures: qualitative rows (Figs. 3-4) and t-SNE panels (Fig. 5)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from omuda.data.labels import CLASS_NAMES, colorize
from omuda.engine.report.figures import CLASS_COLOURS
from omuda.engine.report.inference import Frames, PixelSample, differing

_PANEL_WIDTH = 480  # pixels of one image column at most; wider frames are shrunk


def outline(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """(h,w) bool -> (h,w) bool: the mask's pixels that touch a pixel outside it (4-neighbour),
    grown by `thickness - 1` pixels."""
    padded = np.pad(mask, 1, mode="edge")
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    edge = mask & ~inner
    for _ in range(thickness - 1):
        grown = np.pad(edge, 1)
        edge = edge | grown[:-2, 1:-1] | grown[2:, 1:-1] | grown[1:-1, :-2] | grown[1:-1, 2:]
    return edge


def highlighted(train_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Palette colours of (h,w) train ids with the outline of `mask` drawn in white, one
    pixel wide per 240 pixels of width."""
    colours = colorize(train_ids)
    colours[outline(mask, thickness=max(1, train_ids.shape[1] // 240))] = 255
    return colours


def qualitative_rows(
    frames: Frames,
    frame_rows: Sequence[int],
    predictions: dict[str, list[np.ndarray]],
) -> Figure:
    """Figs. 3-4 analogue: per frame, image | ground truth | one column per run, in the
    Cityscapes palette; where the runs differ (one run: where it is wrong) is outlined in
    white. predictions maps a column label to each frame's (h,w) prediction."""
    labels = list(predictions)
    height, width = frames.images[frame_rows[0]].shape[:2]
    step = max(1, int(np.ceil(width / _PANEL_WIDTH)))
    columns = 2 + len(labels)
    panel_inches = 3.0
    figure = Figure(
        figsize=(panel_inches * columns, panel_inches * height / width * len(frame_rows) + 0.6),
        layout="constrained",
    )
    grid = figure.subplots(len(frame_rows), columns, squeeze=False)
    for row, frame in enumerate(frame_rows):
        label = frames.labels[frame]
        runs = [predictions[name][frame] for name in labels]
        mask = differing(runs, label)[::step, ::step]
        shrunk = [run[::step, ::step] for run in runs]
        panels = [frames.images[frame][::step, ::step], colorize(label[::step, ::step])]
        panels += [highlighted(prediction, mask) for prediction in shrunk]
        titles = ["image", "ground truth", *labels]
        for axes, panel, title in zip(grid[row], panels, titles, strict=True):
            axes.imshow(panel, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title(title, fontsize=10)
        share = 100 * differing(runs, label).sum() / max(int((label != 255).sum()), 1)
        name = frames.names[frame].removesuffix("_leftImg8bit")
        grid[row][0].set_ylabel(f"{name}\n{share:.0f}% differ", fontsize=7)
    return figure


def tsne_panels(embeddings: dict[str, np.ndarray], pixels: PixelSample, per_class: int) -> Figure:
    """Fig. 5 analogue: one panel per run of its t-SNE embedding of decoder features at the
    same val pixels (up to `per_class` per class), coloured by ground-truth class."""
    names = list(embeddings)
    figure = Figure(figsize=(5.2 * len(names) + 2.2, 5.4), layout="constrained")
    panels = figure.subplots(1, len(names), squeeze=False)[0]
    for axes, name in zip(panels, names, strict=True):
        points = embeddings[name]
        colours = np.array([CLASS_COLOURS[k] for k in pixels.label]).reshape(-1, 3)
        axes.scatter(points[:, 0], points[:, 1], c=colours, s=6, linewidths=0)
        axes.set_title(name, fontsize=11)
        axes.set_xticks([])
        axes.set_yticks([])
    present = sorted(set(pixels.label.tolist()))
    handles = [
        Line2D([], [], marker="o", linestyle="", color=CLASS_COLOURS[k], label=CLASS_NAMES[k])
        for k in present
    ]
    figure.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    figure.suptitle(
        f"t-SNE of decoder features, up to {per_class} val pixels per class (the same pixels"
        " in every panel)",
        fontsize=10,
    )
    return figure
