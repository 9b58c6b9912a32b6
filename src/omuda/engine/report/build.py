"""`omuda report`: read runs, draw the figures, write `OUT/index.html` and `OUT/figures/`."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

from omuda.data.io import atomic_write_bytes
from omuda.data.labels import NUM_CLASSES, SYNTHIA_16_CLASSES, THING_CLASSES
from omuda.engine.report import page
from omuda.engine.report.contents import draw_inferred, draw_recorded
from omuda.engine.report.paper import PAPER_ROWS
from omuda.engine.report.runs import (
    RunGroup,
    check_one_label_set,
    find_runs,
    group_runs,
    is_synthetic,
    read_run,
)
from omuda.errors import OmudaError

FIGURES = "figures"


@dataclass
class ReportOptions:
    """What the inference figures look at: chosen frames (or `rows` picked among `scan`
    evenly spaced val frames), t-SNE pixels per class, the device."""

    frames: list[str] = field(default_factory=list)
    rows: int = 4
    scan: int = 50
    tsne_pixels: int = 100
    inference: bool = True
    device: str = "auto"

    def check(self) -> None:
        """OmudaError for a number out of range."""
        for name, low in (("rows", 1), ("scan", 1), ("tsne_pixels", 5)):
            if getattr(self, name) < low:
                flag = "--" + name.replace("_", "-")
                raise OmudaError(f"{flag} must be at least {low}, got {getattr(self, name)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise OmudaError(f"--device must be auto, cpu or cuda, got {self.device!r}")


def prepare_output(out: Path) -> Path:
    """The figures folder of a new report in `out`: a new or empty folder, or one holding an
    earlier report (its figures are replaced). Anything else is left alone."""
    index = out / "index.html"
    if out.exists() and not out.is_dir():
        raise OmudaError(f"--out {out} is a file; give a folder for the report")
    if out.is_dir() and any(out.iterdir()):
        try:
            ours = f'content="{page.GENERATOR}"' in index.read_text(errors="replace")[:2000]
        except OSError:
            ours = False
        if not ours:
            raise OmudaError(
                f"--out {out} holds other files (no earlier report's index.html); choose a new"
                " or empty folder"
            )
    figures = out / FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    for old in [*figures.glob("*.png"), *figures.glob("*.svg")]:
        old.unlink()
    # Marks the folder as a report's at once, so a report that fails halfway can be redone.
    placeholder = page.page("omuda run report", "being written (or stopped halfway)", [], [])
    atomic_write_bytes(index, placeholder.encode("utf-8"))
    return figures


def build_report(inputs: list[Path], out: Path, options: ReportOptions | None = None) -> Path:
    """Write the report of the runs named by `inputs` (runs or folders of runs) into `out`;
    returns the path of its index.html. OmudaError for input it cannot report on."""
    options = options or ReportOptions()
    options.check()
    notes: list[str] = []
    runs = [read_run(path) for path in find_runs(inputs)]
    evaluated = [run for run in runs if run.evaluated]
    if not evaluated:
        what = (
            f"{runs[0].path} has no" if len(runs) == 1 else f"none of the {len(runs)} runs has an"
        )
        raise OmudaError(
            f"{what} evaluation yet (no val record in metrics.jsonl, no eval.json): train"
            " past train.eval_interval or to the end first"
        )
    for run in runs:
        if not run.evaluated:
            notes.append(f"{run.path}: no evaluation yet, left out of the report.")
        if run.skipped_lines:
            notes.append(f"{run.path}: {run.skipped_lines} unreadable metrics.jsonl lines skipped.")
    check_one_label_set(evaluated)
    groups = group_runs(evaluated)
    figures = prepare_output(out)

    source = groups[0].first.source_kind
    synthia = source == "synthia"
    headline = "mIoU (16)" if synthia else "mIoU (19)"
    scored = SYNTHIA_16_CLASSES if synthia else tuple(range(NUM_CLASSES))
    real = [group for group in groups if not is_synthetic(group.first)]
    paper_rows = PAPER_ROWS["synthia" if synthia else "gta"] if real else ()
    things = tuple(groups[0].first.config.get("data", {}).get("thing_classes", THING_CLASSES))

    entries = draw_recorded(groups, paper_rows, things, figures, notes)
    if options.inference:
        entries += draw_inferred(groups, options, figures, notes)
    else:
        notes.append("Qualitative rows and t-SNE skipped (--no-inference).")

    seeds = sum(len(group.runs) for group in groups)
    summary = (
        f"{seeds} run{'s' if seeds > 1 else ''} in {len(groups)} config"
        f"{'s' if len(groups) > 1 else ''}, scored on"
        f" {'16 classes (SYNTHIA source)' if synthia else '19 classes'}; written"
        f" {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}"
    )
    sections = [
        ("Runs", page.runs_table(groups, headline)),
        (
            "Per-class IoU (%) on the val split",
            _class_section(groups, paper_rows, things, scored, headline),
        ),  # fmt: skip
        ("Figures", "".join(page.figure_html(entry) for entry in entries)),
    ]
    index = out / "index.html"
    text = page.page("omuda run report", summary, notes, sections)
    atomic_write_bytes(index, text.encode("utf-8"))
    return index


def _class_section(
    groups: list[RunGroup],
    paper_rows: tuple,
    things: tuple[int, ...],
    scored: tuple[int, ...],
    headline: str,
) -> str:
    explanation = (
        "<p>Final evaluation of each run; a config's seeds as mean ± std (sample standard"
        ' deviation). <span class="fg">fg</span>: foreground (thing) classes.'
    )
    if paper_rows:
        explanation += (
            f" Shaded: the paper's rows ({paper_rows[0].table}; MiT-B5, 40k iterations) from"
            " OMUDA: Omni-level Masking for Unsupervised Domain Adaptation in Semantic"
            " Segmentation (arXiv:2512.12303)."
        )
    explanation += "</p>"
    return explanation + page.class_table(groups, paper_rows, things, scored, headline)
