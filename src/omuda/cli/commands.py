"""What each `omuda` subcommand does with its parsed arguments: one `run_<command>`
function per subcommand, each returning the exit status (0) or raising OmudaError.

The heavy modules (torch, the engine) are imported inside each function, so that
`omuda --help` and a usage mistake answer at once.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from omuda.errors import OmudaError


def run_synth(args: argparse.Namespace) -> int:
    """`omuda synth OUT`: write the embedded synthetic benchmark."""
    from omuda.data.synthetic import DEFAULT_SHIFT, generate_benchmark

    shift = DEFAULT_SHIFT if args.shift is None else args.shift
    generate_benchmark(
        Path(args.out),
        seed=args.seed,
        shift=shift,
        num_source=args.source_frames,
        num_target_train=args.target_train_frames,
        num_target_val=args.target_val_frames,
        num_synthia=args.synthia_frames,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(f"synthetic benchmark written to {args.out} (seed {args.seed}, shift {shift})")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    """`omuda prepare KIND ROOT`: train-id labels, sampler stats and, with --resize, a
    resized copy; every problem is listed before the one closing error line."""
    from omuda.data.prepare import prepare_dataset
    from omuda.data.resized import check_scale

    if args.resize is not None:
        check_scale(args.resize)  # before the long label pass, not after
    out_dir = Path(args.out) if args.out else None
    report = prepare_dataset(
        args.kind, Path(args.root), out_dir, workers=args.workers, progress=not args.quiet
    )
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"prepare {args.kind} {args.root}: {report.summary()}")
    if args.resize is None:
        _fail_on_problems(len(report.problems))
        return 0

    from omuda.data.datasets import all_pairs
    from omuda.data.resized import write_resized_copy

    root = Path(args.root)
    resized = write_resized_copy(
        root,
        all_pairs(args.kind, root),
        args.resize,
        workers=args.workers,
        progress=not args.quiet,
    )
    for problem in resized.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(resized.summary())
    _fail_on_problems(len(report.problems) + len(resized.problems))
    return 0


def _fail_on_problems(count: int) -> None:
    """After the problems are listed: exit status 2 with the one closing error line."""
    if count:
        noun = "problem" if count == 1 else "problems"
        raise OmudaError(
            f"prepare found {count} {noun} (listed above); the samples concerned are left out"
        )


def run_train(args: argparse.Namespace) -> int:
    """`omuda train CONFIG`: train into --work-dir (default work_dirs/<folder>/<name>)."""
    from omuda.config import load_config
    from omuda.engine.train import train

    cfg = load_config(args.config, args.overrides)
    config = Path(args.config)
    # work_dirs/gta2cs/omuda for configs/gta2cs/omuda.yaml: same-named configs never collide
    work_dir = (
        Path(args.work_dir)
        if args.work_dir
        else Path("work_dirs") / config.parent.name / config.stem
    )
    train(cfg, work_dir, resume=args.resume, progress=not args.quiet)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """`omuda evaluate --checkpoint PATH`: mIoU on the val split, written as JSON."""
    from omuda.data.io import atomic_write_bytes
    from omuda.engine import builders
    from omuda.engine.checkpoint import (
        best_checkpoint_hint,
        load_inference_model,
        resolve_checkpoint,
    )
    from omuda.engine.distributed import init_distributed
    from omuda.engine.evaluate import check_result_path, evaluate_as_configured
    from omuda.engine.precision import amp_dtype

    checkpoint = resolve_checkpoint(Path(args.checkpoint))
    loaded = load_inference_model(checkpoint, args.overrides, args.weights)
    cfg, model = loaded.cfg, loaded.model
    suffix = ".teacher.eval.json" if args.weights == "teacher" else ".eval.json"
    out = Path(args.out) if args.out else checkpoint.with_suffix(suffix)
    datasets = (cfg.data.source, cfg.data.target, cfg.data.val)
    check_result_path(out, checkpoint, [builders.dataset_root(cfg, d) for d in datasets])
    dist_info = init_distributed(cfg.train.device)
    model.to(dist_info.device)
    val = builders.build_val_dataset(cfg)
    dtype = amp_dtype(cfg, dist_info.device)
    result = evaluate_as_configured(model, val, cfg, dist_info, dtype, progress=not args.quiet)
    if dist_info.rank == 0:
        print(result.table())
        at = f"iteration {loaded.iteration}, " if loaded.iteration is not None else ""
        print(f"evaluated {checkpoint} ({at}{args.weights} weights)")
        hint = best_checkpoint_hint(Path(args.checkpoint), loaded.iteration)
        if hint:
            print(hint)
        record = {
            **result.to_dict(),
            "checkpoint": str(checkpoint),
            "iteration": loaded.iteration,
            "weights": args.weights,
        }
        atomic_write_bytes(out, json.dumps(record, indent=2).encode())
        print(f"results written to {out}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """`omuda predict --checkpoint PATH --out DIR INPUT...`: colour maps and overlays."""
    from omuda.engine.checkpoint import load_inference_model, resolve_checkpoint
    from omuda.engine.distributed import init_distributed
    from omuda.engine.predict import MAX_INFERENCE_PIXELS, MIN_INFERENCE_SIDE, predict_paths

    # Like train and evaluate: KEY=VALUE words are config overrides, the others inputs.
    inputs = [word for word in args.inputs if not _is_override(word)]
    overrides = [*args.overrides, *(word for word in args.inputs if _is_override(word))]
    if not inputs:
        raise OmudaError("predict needs at least one image or folder")
    checkpoint = resolve_checkpoint(Path(args.checkpoint))
    loaded = load_inference_model(checkpoint, overrides)
    cfg, model = loaded.cfg, loaded.model
    scale = None if args.scale is None else (args.scale[0], args.scale[1])
    if scale is not None and min(scale) < 1:
        raise OmudaError(f"--scale takes a positive width and height, got {scale[0]} {scale[1]}")
    device = init_distributed(cfg.train.device).device
    written = predict_paths(
        model.to(device),
        [Path(p) for p in inputs],
        Path(args.out),
        device,
        scale=scale,
        mode=cfg.eval.mode,
        crop_size=cfg.eval.crop_size,
        stride=cfg.eval.stride,
        overlay_alpha=args.alpha,
        progress=not args.quiet,
    )
    size = (
        f"at its own size (at least {MIN_INFERENCE_SIDE} pixels a side, at most"
        f" {MAX_INFERENCE_PIXELS} pixels)"
        if scale is None
        else f"fitted into {scale[0]}x{scale[1]}"
    )
    images = (len(written) - 1) // 3
    print(f"predicted {images} images with {checkpoint}, each {size}")
    print(f"wrote {len(written)} files to {args.out} (listed in `omuda predict --help`)")
    return 0


def _is_override(word: str) -> bool:
    """A `section.key=value` word that names no existing file."""
    return bool(re.match(r"[A-Za-z_]\w*(\.\w+)+=", word)) and not Path(word).exists()


def run_compare(args: argparse.Namespace) -> int:
    """`omuda compare RUN...`: per-class IoU side by side (and gradient shares)."""
    from omuda.data.io import atomic_write_bytes
    from omuda.engine.compare import comparison, format_for, load_run_evaluation, run_names
    from omuda.engine.gradient_ledger import last_logged_shares, share_table

    runs = [load_run_evaluation(Path(run), best=args.best) for run in args.runs]
    print(comparison(runs, args.format))
    if args.out:
        out = Path(args.out)
        if any(out.resolve() == run.path.resolve() for run in runs):
            raise OmudaError(f"--out {out} is one of the evaluations read; it is left as it is")
        atomic_write_bytes(out, (comparison(runs, format_for(out)) + "\n").encode())
        print(f"table written to {out}")
    shares = {}
    for name, run in zip(run_names(runs), runs, strict=True):
        logged = last_logged_shares(run.run_dir / "metrics.jsonl")
        if logged is not None:
            shares[name] = logged
    if shares and args.format == "text":
        print()
        print(share_table(shares))
    return 0


def run_config_show(args: argparse.Namespace) -> int:
    """`omuda config show CONFIG|WORK_DIR|CHECKPOINT`: the resolved config."""
    from omuda.config import config_from_dict, load_config
    from omuda.config_show import show_config

    source = Path(args.config)
    if source.is_dir():  # a work dir: the config its run used
        source = source / "config.yaml"
    if source.suffix in (".pt", ".pth"):
        from omuda.engine.checkpoint import load_checkpoint

        saved = load_checkpoint(source).get("config")
        if not isinstance(saved, dict):
            raise OmudaError(f"{source} holds no omuda config (not an omuda checkpoint)")
        cfg = config_from_dict(saved, args.overrides)
    else:
        cfg = load_config(source, args.overrides)
    print(show_config(cfg, str(source)))
    return 0


def run_report(args: argparse.Namespace) -> int:
    """`omuda report RUN... --out DIR`: the HTML run report."""
    from omuda.engine.report import ReportOptions, build_report

    options = ReportOptions(
        frames=args.frames or [],
        rows=args.rows,
        scan=args.scan,
        tsne_pixels=args.tsne_pixels,
        inference=not args.no_inference,
        device=args.device,
    )
    index = build_report([Path(run) for run in args.runs], Path(args.out), options)
    print(f"report written to {index.parent}: open {index.resolve().as_uri()}")
    return 0


def run_ablation(args: argparse.Namespace) -> int:
    """`omuda ablation TABLE...`: run the named tables' rows over seeds, then summarise."""
    from omuda.engine.ablation import TABLES, run_tables, summarize_table

    # argparse hands every positional word to TABLE...; KEY=VALUE words are overrides.
    tables = [word for word in args.tables if "=" not in word]
    overrides = [word for word in args.tables if "=" in word] + args.overrides
    unknown = [table for table in tables if table not in TABLES]
    if unknown or not tables:
        what = f"unknown table {unknown[0]!r}" if unknown else "no table named"
        raise OmudaError(f"{what}; choose from {', '.join(TABLES)}")
    work_root = Path(args.work_dir)
    if args.summary_only:
        print("\n\n".join(summarize_table(table, work_root) for table in tables))
        return 0
    summaries = run_tables(
        tables,
        Path(args.configs),
        args.seeds,
        work_root,
        overrides,
        parallel=args.parallel,
        only=args.only,
    )
    for table, summary in summaries.items():
        print(f"## {table}\n\n{summary}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """`omuda bench CONFIG`: time the training step (with --concurrent, N copies at once)."""
    from omuda.config import load_config
    from omuda.engine.bench import run_benchmark

    if args.iters < int(not args.flops) or args.warmup < 0:  # --iters 0 --flops: FLOP only
        raise OmudaError("bench needs --iters >= 1 (0 with --flops) and --warmup >= 0")
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.concurrent is not None:  # given: each copy's median, also for one copy
        from omuda.engine.concurrent_bench import run_concurrent

        load_config(args.config, overrides)  # a bad config fails once, here
        options = ["--iters", str(args.iters), "--warmup", str(args.warmup)]
        shared = run_concurrent(args.config, args.concurrent, options + overrides)
        print(shared.table())
        if args.out:
            Path(args.out).write_text(json.dumps(shared.to_dict(), indent=2))
        return 0
    cfg = load_config(args.config, overrides)
    report = run_benchmark(cfg, iters=args.iters, warmup=args.warmup, count_flops=args.flops)
    print(report.table())
    if args.out:
        Path(args.out).write_text(json.dumps(report.to_dict(), indent=2))
    return 0
