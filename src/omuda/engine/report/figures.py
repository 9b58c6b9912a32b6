"""The report's figures drawn from what runs recorded (matplotlib, no display needed).

Each function returns a `matplotlib.figure.Figure` (never pyplot's global state) or None
when the runs hold nothing to draw; `save_figure` writes it as PNG and SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from omuda.data.labels import CLASS_NAMES, NUM_CLASSES, PALETTE
from omuda.engine.report.paper import PaperRow
from omuda.engine.report.runs import RunGroup, mean_std

# Colours of the runs (matplotlib's tab10); class colours are the Cityscapes palette.
RUN_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
CLASS_COLOURS = tuple(tuple(channel / 255 for channel in colour) for colour in PALETTE)
_CURVE_ORDER_LAST = ("lr", "pseudo_confidence")


def run_colour(index: int) -> str:
    """The colour of the index-th run group in every figure."""
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def save_figure(figure: Figure, folder: Path, stem: str) -> None:
    """Write `folder/stem.png` and `folder/stem.svg` (no timestamps: same runs, same files)."""
    folder.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)  # headless: Agg renders the PNG, never a display backend
    figure.savefig(folder / f"{stem}.png", dpi=100, metadata={"Software": None})
    figure.set_layout_engine("none")  # keep the layout just computed: the SVG needs no other
    figure.savefig(folder / f"{stem}.svg", metadata={"Date": None})


def group_series(group: RunGroup, record_group: str, key: str) -> tuple[np.ndarray, ...]:
    """(iterations, mean, std) of one recorded quantity over the group's seeds; an
    iteration some seeds lack is averaged over the others."""
    per_run = [run.series(record_group, key) for run in group.runs]
    iterations = np.array(sorted(set().union(*per_run)), dtype=np.int64)
    values = np.array(
        [[series.get(int(i), np.nan) for i in iterations] for series in per_run], dtype=np.float64
    )
    mean, std = mean_std(values) if len(iterations) else (np.array([]), np.array([]))
    return iterations, mean, std


def _plot_band(axes: object, iterations: np.ndarray, mean: np.ndarray, std: np.ndarray,
               colour: str, label: str) -> None:  # fmt: skip
    shown = ~np.isnan(mean)
    axes.plot(iterations[shown], mean[shown], color=colour, label=label, linewidth=1.4)
    if len(iterations[shown]) == 1:
        axes.plot(iterations[shown], mean[shown], "o", color=colour, markersize=3)
    spread = shown & (std > 0)
    if spread.any():
        low, high = mean - std, mean + std
        axes.fill_between(iterations, low, high, where=spread, color=colour, alpha=0.2)


def curve_keys(groups: Sequence[RunGroup]) -> list[tuple[str, str]]:
    """(record group, key) of every training curve: each loss term (the train record's
    plain keys), then learning rate, pseudo-label confidence and val mIoU (SYNTHIA sources:
    mIoU16)."""
    train_keys: list[str] = []
    for group in groups:
        for run in group.runs:
            for values in run.records.get("train", {}).values():
                # namespaced keys ("grad_share/source") are diagnostics, not curves of their own
                train_keys += [
                    key
                    for key in values
                    if key not in train_keys and key != "seconds" and "/" not in key
                ]
    losses = [key for key in train_keys if key not in _CURVE_ORDER_LAST]
    last = [key for key in _CURVE_ORDER_LAST if key in train_keys]
    synthia = all(group.first.source_kind == "synthia" for group in groups)
    return [("train", key) for key in losses + last] + [("val", "mIoU16" if synthia else "mIoU")]


def training_curves(groups: Sequence[RunGroup]) -> Figure | None:
    """One panel per loss term, learning rate, pseudo-label confidence and val mIoU; a
    line per run group (mean over seeds, band ± std)."""
    keys = curve_keys(groups)
    if not any(group_series(g, *key)[0].size for g in groups for key in keys):
        return None
    columns = 3
    rows = -(-len(keys) // columns)
    figure = Figure(figsize=(4.2 * columns, 2.8 * rows), layout="constrained")
    panels = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes, (record_group, key) in zip(panels, keys, strict=False):
        for index, group in enumerate(groups):
            iterations, mean, std = group_series(group, record_group, key)
            scale = 100.0 if record_group == "val" else 1.0
            _plot_band(axes, iterations, scale * mean, scale * std, run_colour(index), group.label)
        title = {"lr": "learning rate", "pseudo_confidence": "pseudo-label confidence"}.get(key)
        axes.set_title(title or (f"val {key} (%)" if record_group == "val" else f"loss: {key}"))
        axes.set_xlabel("iteration")
        axes.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        axes.grid(alpha=0.3)
    for axes in panels[len(keys) :]:
        axes.set_visible(False)
    panels[0].legend(fontsize=8)
    return figure


def class_iou_bars(groups: Sequence[RunGroup], paper_rows: Sequence[PaperRow]) -> Figure:
    """Final per-class IoU: a bar per run group (mean, ± std over seeds), the paper's rows
    as markers."""
    figure = Figure(figsize=(14, 4.2), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(NUM_CLASSES)
    width = 0.8 / max(len(groups), 1)
    for index, group in enumerate(groups):
        mean, std = mean_std(group.iou_matrix())
        offset = (index - (len(groups) - 1) / 2) * width
        axes.bar(positions + offset, np.nan_to_num(mean), width, yerr=np.nan_to_num(std),
                 color=run_colour(index), label=group.label, capsize=1.5)  # fmt: skip
    for marker, row in zip(("_", "x", "+", "1"), paper_rows, strict=False):
        values = np.array([np.nan if v is None else v for v in row.iou], dtype=np.float64)
        axes.plot(positions, values, marker, color="black", markersize=9, label=row.label)
    axes.set_xticks(positions, CLASS_NAMES, rotation=45, ha="right")
    axes.set_ylabel("IoU (%)")
    axes.set_ylim(0, 100)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8, ncols=min(4, len(groups) + len(paper_rows)))
    axes.set_title("Per-class IoU on the val split (mean ± std over seeds)")
    return figure


def class_spread(groups: Sequence[RunGroup], thing_classes: Sequence[int]) -> Figure:
    """Fig. 1(a) analogue: each seed's final IoU per class (dots) with the mean ± std,
    background and foreground classes in separate panels."""
    stuff = [c for c in range(NUM_CLASSES) if c not in thing_classes]
    things = [c for c in range(NUM_CLASSES) if c in thing_classes]
    figure = Figure(figsize=(12, 6.4), layout="constrained")
    panels = figure.subplots(2, 1, sharey=True)
    width = 0.8 / max(len(groups), 1)
    for axes, classes, title in (
        (panels[0], stuff, "background (stuff) classes"),
        (panels[1], things, "foreground (thing) classes"),
    ):
        positions = np.arange(len(classes))
        for index, group in enumerate(groups):
            matrix = group.iou_matrix()[:, classes]
            mean, std = mean_std(matrix)
            offset = (index - (len(groups) - 1) / 2) * width
            colour = run_colour(index)
            for seed_values in matrix:
                axes.plot(positions + offset, seed_values, ".", color=colour, alpha=0.6)
            axes.errorbar(positions + offset, mean, yerr=std, fmt="_", color=colour,
                          markersize=10, capsize=3, label=group.label)  # fmt: skip
        axes.set_xticks(positions, [CLASS_NAMES[c] for c in classes])
        axes.set_ylabel("IoU (%)")
        axes.set_title(f"{title}: IoU of each seed, mean ± std")
        axes.grid(axis="y", alpha=0.3)
    panels[0].legend(fontsize=8)
    return figure


def class_grid(
    groups: Sequence[RunGroup],
    record_group: str,
    prefix: str,
    title: str,
    thing_classes: Sequence[int],
    scale: float = 100.0,
) -> Figure | None:
    """One small panel per class of a per-class quantity over training (e.g. val
    "IoU/<class>"), a line per run group (mean over seeds, band ± std); None when no run
    recorded it. Foreground classes are titled in bold."""
    if not any(group_series(g, record_group, f"{prefix}/road")[0].size for g in groups):
        return None
    # A fixed grid: constrained layout of 20 panels costs seconds per figure.
    figure = Figure(figsize=(15, 10))
    figure.subplots_adjust(left=0.04, right=0.99, bottom=0.06, top=0.92, wspace=0.18, hspace=0.3)
    panels = figure.subplots(4, 5, sharex=True, sharey=True).ravel()
    panels[0].set_ylim(0, 1.05 * scale)
    panels[0].xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    for class_id, (axes, name) in enumerate(zip(panels, CLASS_NAMES, strict=False)):
        for index, group in enumerate(groups):
            iterations, mean, std = group_series(group, record_group, f"{prefix}/{name}")
            if iterations.size:
                _plot_band(axes, iterations, scale * mean, scale * std, run_colour(index),
                           group.label)  # fmt: skip
        weight = "bold" if class_id in thing_classes else "normal"
        axes.set_title(name, fontsize=10, fontweight=weight, color=_title_colour(class_id))
        axes.grid(alpha=0.3)
        axes.label_outer()  # shared axes: tick labels on the outer panels only
    legend_panel = panels[-1]
    handles, labels = panels[0].get_legend_handles_labels()
    legend_panel.axis("off")
    if handles:
        legend_panel.legend(handles, labels, loc="center", fontsize=9)
    figure.suptitle(f"{title} (bold: foreground classes)")
    figure.supxlabel("iteration")
    return figure


def _title_colour(class_id: int) -> tuple[float, float, float]:
    """The class colour, darkened enough to read on white."""
    colour = np.array(CLASS_COLOURS[class_id])
    return tuple(colour * min(1.0, 0.55 / max(colour.mean(), 1e-6)))
