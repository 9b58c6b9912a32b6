"""`omuda compare`: the per-class IoU of runs side by side, each column named after its run's
work dir, with a difference column for two runs, as text, Markdown or CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from omuda.engine.checkpoint import BEST_RECORD
from omuda.engine.evaluate import PROTOCOL_NOTE, format_text_table, iou_rows
from omuda.errors import OmudaError

FORMATS = ("text", "markdown", "csv")


@dataclass
class RunEvaluation:
    """One column: the run's work dir, the JSON file read, and the evaluation in it
    (`EvalResult.to_dict()`, plus `iteration` / `checkpoint` when recorded)."""

    run_dir: Path
    path: Path
    result: dict
    kind: str  # "final", "best" or "evaluate" (an `omuda evaluate` result file)

    def describe(self) -> str:
        """What the column holds, e.g. `final evaluation, iteration 1000, checkpoints/latest.pt`."""
        what = {"final": "final evaluation", "best": "best evaluation by val mIoU"}.get(
            self.kind, "evaluation"
        )
        details = [what]
        if isinstance(self.result.get("iteration"), int):
            details.append(f"iteration {self.result['iteration']}")
        if isinstance(self.result.get("checkpoint"), str):
            details.append(self.result["checkpoint"])
        return ", ".join(details)


def load_run_evaluation(argument: Path, best: bool = False) -> RunEvaluation:
    """The evaluation named by a command-line argument: a work dir (its `eval.json`, or with
    `best` its `checkpoints/best.json`) or a result JSON file of `train` or `evaluate`."""
    if argument.is_dir():
        run_dir = argument
        path = run_dir / "checkpoints" / BEST_RECORD if best else run_dir / "eval.json"
        if not path.is_file():
            what = "best checkpoint (train with evaluation on)" if best else "evaluation"
            raise OmudaError(f"no {what} found at {path} (train or evaluate first)")
    else:
        path = argument
        if not path.is_file():
            raise OmudaError(f"no evaluation found at {path} (train or evaluate first)")
        run_dir = _run_dir_of(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OmudaError(f"{path} is not a JSON evaluation result") from None
    if not isinstance(data, dict):
        raise OmudaError(f"{path} is not an evaluation result (expected a JSON object)")
    result = data.get("eval", data)
    if not isinstance(result, dict) or not isinstance(result.get("iou"), list):
        raise OmudaError(f"{path} holds no per-class 'iou' list")
    if path.name == BEST_RECORD:
        kind, result = "best", {**result, **{k: data.get(k) for k in ("iteration", "checkpoint")}}
    else:
        kind = "final" if "eval" in data else "evaluate"
    checkpoint = result.get("checkpoint")
    if kind == "evaluate" and isinstance(checkpoint, str) and Path(checkpoint).is_file():
        run_dir = _run_dir_of(Path(checkpoint))  # `omuda evaluate --out` anywhere
    return RunEvaluation(run_dir, path, result, kind)


def _run_dir_of(path: Path) -> Path:
    """The work dir a file belongs to: WORK_DIR/x or WORK_DIR/checkpoints/x."""
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def run_names(runs: list[RunEvaluation]) -> list[str]:
    """A column name per run: its work dir's name, with as many parent folders as it takes
    to tell the runs apart (`methods/omuda/seed0`), then the file read when two columns
    come from one run (`omuda (best.eval)`)."""
    parts = [run.run_dir.resolve().parts for run in runs]
    depth = [1] * len(runs)

    def name(index: int) -> str:
        return "/".join(parts[index][-depth[index] :])

    while True:
        names = [name(index) for index in range(len(runs))]
        growing = [
            i
            for i, n in enumerate(names)
            if len({parts[j] for j in range(len(runs)) if names[j] == n}) > 1  # other dirs
            and depth[i] < len(parts[i]) - 1
        ]
        if not growing:
            break
        for index in growing:
            depth[index] += 1
    names = [
        f"{names[i]} ({runs[i].path.name.removesuffix('.json')})"
        if names.count(names[i]) > 1
        else names[i]
        for i in range(len(runs))
    ]
    # the same file twice: numbered, so that every column stays
    return [
        f"{name} #{names[:i].count(name) + 1}" if names.count(name) > 1 else name
        for i, name in enumerate(names)
    ]


def _percent(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "-"
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def comparison(runs: list[RunEvaluation], output_format: str = "text") -> str:
    """The per-class IoU table of `runs` in percent (one column per run, then with two runs
    the difference second - first), with the mIoU rows, and in text and Markdown the lines
    naming what each column read."""
    if not runs:
        raise OmudaError("nothing to compare: no evaluation results given")
    names = run_names(runs)
    columns = {name: run.result["iou"] for name, run in zip(names, runs, strict=True)}
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise OmudaError(f"the evaluations score different numbers of classes: {sorted(lengths)}")
    rows = iou_rows(columns)
    header = ["class", *names]
    cells = [(label, [_percent(value) for value in values]) for label, values in rows]
    notes = [
        f"{name}: {run.path} ({run.describe()})" for name, run in zip(names, runs, strict=True)
    ]
    if len(runs) == 2:
        header.append("difference")
        for (_, values), (_, row) in zip(rows, cells, strict=True):
            row.append(_percent(values[1] - values[0], signed=True))
        notes.append(f"difference: {names[1]} - {names[0]}, in IoU points")
    num_classes = lengths.pop()
    if num_classes == 19:
        notes.append(PROTOCOL_NOTE)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([label, *(c if c != "-" else "" for c in row)] for label, row in cells)
        return buffer.getvalue().rstrip("\n")
    if output_format == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
        lines += [f"| {label} | " + " | ".join(row) + " |" for label, row in cells]
        return "\n".join([*lines, "", *(f"- {note}" for note in notes)])
    if output_format != "text":
        raise OmudaError(f"unknown format {output_format!r}; choose from {', '.join(FORMATS)}")
    return "\n".join([format_text_table(header, cells, num_classes), *notes])


def format_for(path: Path) -> str:
    """The output format a file name asks for: .md -> markdown, .csv -> csv, else text."""
    suffix = path.suffix.lower()
    return {".md": "markdown", ".markdown": "markdown", ".csv": "csv"}.get(suffix, "text")
