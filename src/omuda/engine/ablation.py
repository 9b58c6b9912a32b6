"""`omuda ablation`: the paper's tables (IV-VII) and the method comparison as named run sets.

Each row is a config file from a config folder (`configs/synthetic`, `configs/gta2cs`, ...)
plus dotted overrides; every row runs for each seed as its own `omuda train` process, so
finished runs are skipped on a re-run and two runs can share the machine. The summary gives
mean and standard deviation of mIoU over seeds and the per-class means.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from omuda.data.labels import CLASS_NAMES
from omuda.errors import OmudaError


@dataclass(frozen=True)
class Row:
    """One table row: a config file of the config folder plus dotted overrides."""

    label: str
    config: str  # file name inside the config folder
    overrides: tuple[str, ...] = ()


# The DAFormer baseline expressed on the OMUDA config, so component rows differ by one switch.
_BASELINE = (
    "data.sampling.strategy=rcs",
    "adaptation.masking=none",
    "adaptation.feature_distillation=fd",
    "adaptation.class_decoupling=none",
)


def _without(overrides: tuple[str, ...], prefix: str) -> tuple[str, ...]:
    return tuple(item for item in overrides if not item.startswith(prefix))


TABLES: dict[str, tuple[Row, ...]] = {
    "methods": (
        Row("source-only", "source_only.yaml"),
        Row("oracle", "oracle.yaml"),
        Row("DAFormer", "daformer.yaml"),
        Row("MIC", "mic.yaml"),
        Row("OMUDA", "omuda.yaml"),
        Row("DACS", "dacs.yaml"),
        Row("DAFormer + FST", "daformer_fst.yaml"),
        Row("DAFormer + CAMix", "daformer_camix.yaml"),
    ),
    "table4": (
        Row("baseline (DAFormer)", "omuda.yaml", _BASELINE),
        Row(
            "+CAM",
            "omuda.yaml",
            _without(_without(_BASELINE, "data.sampling"), "adaptation.masking"),
        ),
        Row("+FDM", "omuda.yaml", _without(_BASELINE, "adaptation.feature_distillation")),
        Row("+CDM", "omuda.yaml", _without(_BASELINE, "adaptation.class_decoupling")),
        Row("all (OMUDA)", "omuda.yaml"),
    ),
    # CDM's two ambiguities: the weight direction (the equations' w = beta or the text's
    # w = 1 - beta) and eq. 13's normaliser n_k^g (g = 1 literal: a mean of class means).
    "cdm": tuple(
        Row(
            f"{direction}, g = {balance}",
            "omuda.yaml",
            (
                f"adaptation.class_decoupling={direction}",
                f"adaptation.cdm_class_balance={balance}",
            ),
        )
        for direction in ("difficulty", "reliability")
        for balance in (0, 1)
    ),
    # FDM's readings of eqs. 8-11: what a sample is, and sums as printed or RKD's means.
    "fdm": tuple(
        Row(
            f"{samples}, {reduction}",
            "omuda.yaml",
            (f"adaptation.kd_samples={samples}", f"adaptation.kd_reduction={reduction}"),
        )
        for samples in ("cells", "images")
        for reduction in ("sum", "mean")
    ),
    "table5": tuple(
        Row(name, "omuda.yaml", (f"data.sampling.strategy={strategy}",))
        for name, strategy in (
            ("uniform", "uniform"),
            ("fixed ratio", "fixed_ratio"),
            ("RCS", "rcs"),
            ("CAM", "cam"),
        )
    ),
    "table6": (
        Row("random", "omuda.yaml", ("adaptation.masking=random",)),
        Row("grid", "omuda.yaml", ("adaptation.masking=grid",)),
        Row("CAM coarse (2x blocks)", "omuda.yaml", ("cam_scale=2",)),
        Row("CAM", "omuda.yaml"),
    ),
    "table7": tuple(
        Row(f"lambda_KD {value}", "omuda.yaml", (f"adaptation.kd_lambda={value}",))
        for value in ("0.1", "0.05", "0.01", "0.005")
    ),
}


def _expand(row: Row, config_dir: Path) -> tuple[Path, list[str]]:
    """Config path and overrides of a row; `cam_scale=K` multiplies the CAM block sizes."""
    from omuda.config import load_config

    config = config_dir / row.config
    overrides = []
    for item in row.overrides:
        if item.startswith("cam_scale="):
            scale = int(item.split("=", 1)[1])
            base = load_config(config).adaptation
            overrides += [
                f"adaptation.cam_fine_block={base.cam_fine_block * scale}",
                f"adaptation.cam_coarse_block={base.cam_coarse_block * scale}",
            ]
        else:
            overrides.append(item)
    return config, overrides


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_")


def run_tables(
    tables: list[str],
    config_dir: Path,
    seeds: list[int],
    work_root: Path,
    overrides: list[str],
    parallel: int = 1,
    only: list[str] | None = None,
) -> dict[str, str]:
    """Run every row x seed of the tables not yet finished; return each table's summary.

    `only`: row labels (or their folder names) to run; the others are left as they are.

    Rows of different tables that resolve to the same experiment (e.g. Table IV's baseline
    and the methods table's DAFormer, or the default CDM direction and the full OMUDA row)
    run once: the later row's seed folder is a link to the first one's, also when the first
    one finished in an earlier call under the same `work_root`.
    """
    unknown = [table for table in tables if table not in TABLES]
    if unknown:
        raise OmudaError(f"unknown table {unknown[0]!r}; choose one of {', '.join(TABLES)}")
    labels = {
        name for table in tables for row in TABLES[table] for name in (row.label, _slug(row.label))
    }
    missing = [name for name in only or () if name not in labels]
    if missing:
        raise OmudaError(f"--only {missing[0]!r} names no row of {', '.join(tables)}")
    if not config_dir.is_dir():
        raise OmudaError(f"config folder not found: {config_dir}")
    jobs = []
    first_run_of = _finished_experiments(work_root)  # experiment -> the folder of its run
    queued: set[Path] = set()  # resolved folders, so a folder reached twice runs once
    for table in tables:
        for row in TABLES[table]:
            if only and row.label not in only and _slug(row.label) not in only:
                continue
            config, row_overrides = _expand(row, config_dir)
            if not config.is_file():
                print(f"skipping '{row.label}': {config} does not exist")
                continue
            for seed in seeds:
                run_overrides = [*row_overrides, *overrides, f"train.seed={seed}"]
                # A typo fails here, before any run starts.
                key = _key_of_config(config, run_overrides)
                work_dir = work_root / table / _slug(row.label) / f"seed{seed}"
                if work_dir.is_symlink() and not work_dir.exists():
                    work_dir.unlink()  # its target was deleted (e.g. to run it again)
                if key in first_run_of and not work_dir.exists():
                    work_dir.parent.mkdir(parents=True, exist_ok=True)
                    work_dir.symlink_to(os.path.relpath(first_run_of[key], work_dir.parent))
                    continue
                first_run_of.setdefault(key, work_dir.resolve())
                if (work_dir / "eval.json").is_file() or work_dir.resolve() in queued:
                    continue
                queued.add(work_dir.resolve())
                command = [
                    sys.executable, "-m", "omuda.cli", "--quiet", "train", str(config),
                    "--work-dir", str(work_dir), *run_overrides,
                ]  # fmt: skip
                if parallel > 1:
                    command.append(f"train.threads={max(1, (os.cpu_count() or 2) // parallel)}")
                if (work_dir / "checkpoints" / "latest.pt").is_file():
                    command.append("--resume")
                jobs.append((row.label, seed, work_dir, command))

    def run(job: tuple) -> bool:
        label, seed, work_dir, command = job
        work_dir.mkdir(parents=True, exist_ok=True)
        print(f"running '{label}' seed {seed} -> {work_dir}", flush=True)
        with (work_dir / "train.log").open("a") as log:
            finished = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
        if finished.returncode != 0:
            print(f"'{label}' seed {seed} failed: see {work_dir / 'train.log'}", flush=True)
        return finished.returncode == 0

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        succeeded = list(pool.map(run, jobs))
    summaries = {}
    for table in tables:
        summaries[table] = summarize_table(table, work_root)
        (work_root / table).mkdir(parents=True, exist_ok=True)
        (work_root / table / "summary.md").write_text(summaries[table])
    if not all(succeeded):
        print("\n\n".join(summaries.values()))
        raise OmudaError(
            f"{succeeded.count(False)} of {len(jobs)} runs failed (see their train.log)"
        )
    return summaries


# Settings that only matter when their mechanism is on: (switch, values that turn it off,
# the settings it owns).
_OWNED_SETTINGS = (
    (
        "feature_distillation",
        ("none", "fd"),
        ("kd_lambda", "kd_max_cells", "kd_features", "kd_samples", "kd_reduction"),
    ),
    ("kd_samples", ("images",), ("kd_max_cells",)),
    ("feature_distillation", ("none", "fdm"), ("fd_lambda",)),
    ("feature_distillation", ("none",), ("fd_min_ratio", "distill_stage")),
    ("masking", ("none", "block", "random", "grid"), ("cam_fine_block", "cam_coarse_block")),
    ("masking", ("none", "cam"), ("mask_block_size",)),
    ("masking", ("none",), ("mask_ratio", "mask_loss_weight", "masked_batchnorm")),
    ("class_decoupling", ("none",), ("cdm_momentum", "cdm_class_balance")),
    ("lookahead_steps", (0,), ("lookahead_restore",)),
    (
        "mix",
        ("none", "classmix"),
        (
            "camix_warmup_iters",
            "camix_prior_size",
            "camix_significance",
            "camix_significance_rampup_iters",
            "camix_significance_start",
        ),
    ),
    (
        "camix_significance",
        (False,),
        ("camix_significance_rampup_iters", "camix_significance_start"),
    ),
)


def _experiment_key(experiment: dict) -> str:
    """What makes two resolved configs the same experiment: everything but the name, the
    thread count and the settings of switched-off mechanisms (an unused CAM block size
    changes nothing)."""
    experiment = json.loads(json.dumps(experiment))
    experiment.pop("name")
    experiment["train"].pop("threads")  # `--parallel` sets it; the experiment is the same
    adaptation = experiment["adaptation"]
    for switch, off_values, owned in _OWNED_SETTINGS:
        if adaptation.get(switch) in off_values:  # an owned switch may be gone already
            for name in owned:
                adaptation.pop(name, None)
    return json.dumps(experiment, sort_keys=True)


def _key_of_config(config: Path, overrides: list[str] | tuple[str, ...] = ()) -> str:
    """The experiment key of a config file with dotted overrides."""
    from omuda.config import config_to_dict, load_config

    return _experiment_key(config_to_dict(load_config(config, overrides)))


def _finished_experiments(work_root: Path) -> dict[str, Path]:
    """Experiment key -> folder of each run already finished under work_root, read from the
    resolved config.yaml every run writes."""
    finished: dict[str, Path] = {}
    for result in sorted(work_root.glob("*/*/seed*/eval.json")):
        folder = result.parent
        if folder.is_symlink() or not (folder / "config.yaml").is_file():
            continue
        try:
            key = _key_of_config(folder / "config.yaml")
        except OmudaError:
            continue  # written by an omuda whose settings this one no longer reads
        finished.setdefault(key, folder.resolve())
    return finished


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), std


def summarize_table(table: str, work_root: Path) -> str:
    """Markdown: mIoU mean +- std (and each seed) per row, then per-class mean IoU."""
    rows = []
    for row in TABLES[table]:
        results = []
        for path in sorted((work_root / table / _slug(row.label)).glob("seed*/eval.json")):
            data = json.loads(path.read_text())
            results.append((path.parent.name, data["eval"], data.get("seconds", math.nan)))
        if results:
            rows.append((row, results))
    if not rows:
        return f"no finished runs under {work_root / table}\n"
    lines = [
        "| row | mIoU mean ± std | seeds | mIoU per seed | minutes per run |",
        "|---|---|---|---|---|",
    ]
    for row, results in rows:
        mious = [100 * r["miou"] for _, r, _ in results]
        mean, std = _mean_std(mious)
        per_seed = ", ".join(f"{name[4:]}: {value:.1f}" for (name, _, _), value in zip(
            results, mious, strict=True))  # fmt: skip
        minutes = statistics.mean(s for _, _, s in results) / 60
        spread = f"{mean:.1f} ± {std:.1f}" if len(results) > 1 else f"{mean:.1f} (one seed)"
        lines.append(f"| {row.label} | {spread} | {len(results)} | {per_seed} | {minutes:.1f} |")
    lines += ["", "Per-class IoU, mean over seeds:", ""]
    header = "| class | " + " | ".join(row.label for row, _ in rows) + " |"
    lines += [header, "|---" * (len(rows) + 1) + "|"]
    for index, name in enumerate(CLASS_NAMES):
        cells = []
        for _, results in rows:
            values = [r["iou"][index] for _, r, _ in results]
            mean, _ = _mean_std([math.nan if v is None else 100 * v for v in values])
            cells.append("-" if math.isnan(mean) else f"{mean:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
