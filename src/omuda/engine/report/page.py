"""The report's HTML page: one self-contained file beside its `figures/` folder (no script,
no network, nothing outside the report folder)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from omuda.data.labels import CLASS_NAMES, NUM_CLASSES, SYNTHIA_13_CLASSES, SYNTHIA_16_CLASSES
from omuda.engine.report.paper import PaperRow
from omuda.engine.report.runs import RunGroup, mean_std, nan_mean

GENERATOR = "omuda report"
_SUMMARIES = (
    ("mIoU (19)", tuple(range(NUM_CLASSES))),
    ("mIoU (16)", SYNTHIA_16_CLASSES),
    ("mIoU (13)", SYNTHIA_13_CLASSES),
)
_STYLE = """
body { font-family: sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1400px;
  color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f0f0f0; } tr.summary td { background: #f7f7f7; font-weight: bold; }
td.paper, th.paper { background: #fbf7e9; } tr.unscored td { color: #aaa; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.4em;
  vertical-align: middle; border: 1px solid #999; }
.fg { font-size: 11px; color: #a33; margin-left: 0.3em; }
.notes { background: #fff6e0; border: 1px solid #e8c66a; padding: 0.5em 1.5em; }
figure { margin: 2em 0; }
figure img { max-width: 100%; box-sizing: border-box; border: 1px solid #ddd; }
figcaption { color: #444; max-width: 1100px; } code { background: #f3f3f3; padding: 0 3px; }
"""


@dataclass
class FigureEntry:
    """A written figure: `figures/<stem>.png` and `.svg`, its heading and caption."""

    stem: str
    title: str
    caption: str


def _number(value: float, std: float | None = None) -> str:
    if value is None or math.isnan(value):
        return "–"
    if std is None or math.isnan(std):
        return f"{value:.1f}"
    return f"{value:.1f} ± {std:.1f}"


def _seeds(group: RunGroup) -> str:
    return ", ".join(map(str, group.seeds))


def runs_table(groups: Sequence[RunGroup], headline: str) -> str:
    """One row per group: seeds, iterations recorded, final headline mIoU and folders."""
    rows = []
    for group in groups:
        iterations = [max(run.records.get("val", {0: None})) for run in group.runs]
        key = "mIoU (16)" if headline == "mIoU (16)" else "mIoU (19)"
        classes = dict(_SUMMARIES)[key]
        per_seed = np.array(
            [nan_mean(np.array(run.final_iou)[list(classes)]) for run in group.runs]
        )
        mean, std = mean_std(100 * per_seed)
        spread = float(std) if len(group.runs) > 1 else None
        folders = "<br>".join(html.escape(str(run.path)) for run in group.runs)
        rows.append(
            f"<tr><td>{html.escape(group.label)}</td><td>{_seeds(group)}</td>"
            f"<td>{', '.join(map(str, iterations))}</td><td>{_number(float(mean), spread)}</td>"
            f"<td>{folders}</td></tr>"
        )
    head = (
        "<tr><th>config</th><th>seeds</th><th>last evaluated iteration</th>"
        f"<th>val {headline}</th><th>run folders</th></tr>"
    )
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def class_table(
    groups: Sequence[RunGroup],
    paper_rows: Sequence[PaperRow],
    thing_classes: Sequence[int],
    scored: Sequence[int],
    headline: str,
) -> str:
    """Per-class IoU (%) of each group (mean ± std over seeds; the best group of a row in
    bold), the paper's rows beside them, then the mIoU rows (each seed's mean first)."""
    matrices = [group.iou_matrix() for group in groups]
    stats = [mean_std(matrix) for matrix in matrices]
    head = "<th>class</th>" + "".join(
        f"<th>{html.escape(g.label)}<br><small>seeds {_seeds(g)}</small></th>" for g in groups
    )
    head += "".join(f'<th class="paper">{html.escape(row.label)}</th>' for row in paper_rows)
    body = []
    for class_id, name in enumerate(CLASS_NAMES):
        means = [float(mean[class_id]) for mean, _ in stats]
        best = np.nanmax(means) if not all(math.isnan(m) for m in means) else math.nan
        cells = []
        for (mean, std), group in zip(stats, groups, strict=True):
            text = _number(
                float(mean[class_id]), float(std[class_id]) if len(group.runs) > 1 else None
            )
            # bold: the best config of the row, when the configs differ at all
            bold = float(mean[class_id]) == best and any(m < best for m in means)
            cells.append(f"<td>{'<b>' + text + '</b>' if bold else text}</td>")
        cells += [
            f'<td class="paper">{_number(_paper_value(row, class_id))}</td>' for row in paper_rows
        ]
        swatch = _swatch(class_id)
        tag = '<span class="fg">fg</span>' if class_id in thing_classes else ""
        unscored = "" if class_id in scored else ' class="unscored"'
        body.append(f"<tr{unscored}><td>{swatch}{name}{tag}</td>{''.join(cells)}</tr>")
    for label, classes in _SUMMARIES:
        cells = []
        for matrix, group in zip(matrices, groups, strict=True):
            per_seed = np.array([nan_mean(row[list(classes)]) for row in matrix])
            mean, std = mean_std(per_seed)
            cells.append(
                f"<td>{_number(float(mean), float(std) if len(group.runs) > 1 else None)}</td>"
            )
        for row in paper_rows:
            cells.append(f'<td class="paper">{_number(_paper_summary(row, classes))}</td>')
        marker = " (headline)" if label == headline else ""
        body.append(f'<tr class="summary"><td>{label}{marker}</td>{"".join(cells)}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _paper_value(row: PaperRow, class_id: int) -> float:
    value = row.iou[class_id]
    return math.nan if value is None else value


def _paper_summary(row: PaperRow, classes: Sequence[int]) -> float:
    values = [row.iou[c] for c in classes]
    if any(value is None for value in values):
        return math.nan
    scored = [c for c in range(NUM_CLASSES) if row.iou[c] is not None]
    if list(classes) == scored:
        return row.miou  # the table's own mIoU column
    return sum(values) / len(values)


def _swatch(class_id: int) -> str:
    from omuda.data.labels import PALETTE

    red, green, blue = PALETTE[class_id]
    return f'<span class="swatch" style="background: rgb({red}, {green}, {blue})"></span>'


def figure_html(entry: FigureEntry) -> str:
    """A figure's PNG with links to its PNG and SVG files."""
    png, svg = f"figures/{entry.stem}.png", f"figures/{entry.stem}.svg"
    return (
        f'<figure id="{entry.stem}"><h3>{html.escape(entry.title)}</h3>'
        f'<img src="{png}" alt="{html.escape(entry.title)}">'
        f'<figcaption>{entry.caption} Files: <a href="{png}">PNG</a>, '
        f'<a href="{svg}">SVG</a>.</figcaption></figure>'
    )


def page(
    title: str,
    summary: str,
    notes: Sequence[str],
    sections: Sequence[tuple[str, str]],
) -> str:
    """The whole page: heading, what is missing (notes, HTML-escaped), then each section
    (heading, HTML body)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="generator" content="{GENERATOR}">',
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{summary}</p>',
    ]
    if notes:
        items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
        parts.append(f'<div class="notes"><h2>What is missing</h2><ul>{items}</ul></div>')
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
