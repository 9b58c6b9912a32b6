"""The `omuda` command: synth, prepare, train, evaluate, predict, compare, report, ablation,
bench."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import NoReturn

from omuda import __version__
from omuda.errors import OmudaError
from omuda.limits import MAX_ASPECT_RATIO, MAX_IMAGE_SIDE

FORMATS = ("text", "markdown", "csv")  # omuda compare --format

# The longest error line printed; a message never echoes unbounded input.
_MAX_ERROR_CHARS = 500


def _cmd_synth(args: argparse.Namespace) -> int:
    from omuda.data.synthetic import DEFAULT_SHIFT, generate_benchmark

    shift = DEFAULT_SHIFT if args.shift is None else args.shift
    generate_benchmark(
        Path(args.out),
        seed=args.seed,
        shift=shift,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(f"synthetic benchmark written to {args.out} (seed {args.seed}, shift {shift})")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
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


def _cmd_train(args: argparse.Namespace) -> int:
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


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from omuda.data.io import atomic_write_bytes
    from omuda.engine import builders
    from omuda.engine.checkpoint import (
        best_checkpoint_hint,
        load_inference_model,
        resolve_checkpoint,
    )
    from omuda.engine.distributed import init_distributed
    from omuda.engine.evaluate import check_result_path, evaluate
    from omuda.engine.train import amp_dtype

    checkpoint = resolve_checkpoint(Path(args.checkpoint))
    loaded = load_inference_model(checkpoint, args.overrides, args.weights)
    cfg, model = loaded.cfg, loaded.model
    suffix = ".teacher.eval.json" if args.weights == "teacher" else ".eval.json"
    out = Path(args.out) if args.out else checkpoint.with_suffix(suffix)
    datasets = (cfg.data.source, cfg.data.target, cfg.data.val)
    check_result_path(out, checkpoint, [builders.dataset_root(cfg, d) for d in datasets])
    dist_info = init_distributed(cfg.train.device)
    model.to(dist_info.device)
    result = evaluate(
        model,
        builders.build_val_dataset(cfg),
        dist_info.device,
        mode=cfg.eval.mode,
        crop_size=cfg.eval.crop_size,
        stride=cfg.eval.stride,
        num_classes=cfg.model.num_classes,
        amp_dtype=amp_dtype(cfg, dist_info.device),
        progress=not args.quiet,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
    )
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


def _cmd_predict(args: argparse.Namespace) -> int:
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


def _cmd_compare(args: argparse.Namespace) -> int:
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


def _cmd_config_show(args: argparse.Namespace) -> int:
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


def _cmd_report(args: argparse.Namespace) -> int:
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


def _cmd_ablation(args: argparse.Namespace) -> int:
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


def _cmd_bench(args: argparse.Namespace) -> int:
    from omuda.config import load_config
    from omuda.engine.bench import run_benchmark

    if args.iters < int(not args.flops) or args.warmup < 0:  # --iters 0 --flops: FLOP only
        raise OmudaError("bench needs --iters >= 1 (0 with --flops) and --warmup >= 0")
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.concurrent > 1:
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


_OVERRIDES = (
    "config overrides by dotted name, e.g. train.iters=2000 data.root=/data;"
    " `omuda config show CONFIG` lists every key with its value"
)
_CHECKPOINT_OVERRIDES = (
    "overrides of the checkpoint's config, e.g. data.root=/data eval.mode=slide;"
    " `omuda config show WORK_DIR` (or CHECKPOINT) lists every key with its value"
)
_PREDICT_FILES = """files written into --out:
  <stem>_pred.png      the predicted classes in the Cityscapes colours
  <stem>_trainIds.png  the predicted train ids 0-18, one grey level per class
  <stem>_overlay.png   the image blended with the colours (--alpha), class borders white
  legend.png           each colour with its class id and name, once per folder
All at the image's own size; an output that would replace an input is refused."""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage mistakes end as one `omuda: error: ...` line, like every failure."""

    def error(self, message: str) -> NoReturn:
        raise OmudaError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """The `omuda` argument parser with one subcommand per job."""
    parser = _Parser(
        prog="omuda",
        description="Unsupervised domain adaptation for semantic segmentation "
        "(DAFormer, MIC and OMUDA self-training).",
        epilog="workflow: omuda synth data/synthetic (or get GTA5/Cityscapes) -> omuda prepare"
        " KIND ROOT -> omuda train CONFIG -> omuda evaluate / predict / compare. "
        f"Images may be at most {MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE} pixels, no side more than"
        f" {MAX_ASPECT_RATIO} times the other; larger ones are refused from their header,"
        " before decoding. Every failure ends with one line `omuda: error: ...` and exit"
        " status 2 (docs/RELIABILITY.md). `omuda config show CONFIG` prints every config key"
        " with its value; KEY=VALUE arguments override them.",
    )
    parser.add_argument("--version", action="version", version=f"omuda {__version__}")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
    )

    synth = commands.add_parser(
        "synth", parents=[common], help="generate the embedded synthetic benchmark"
    )
    synth.add_argument("out", help="folder to write gta/, cityscapes/ and synthia/ into")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument(
        "--shift",
        type=float,
        default=None,
        help="domain-shift strength (default: the calibrated one, see docs/RESULTS.md)",
    )
    synth.add_argument("--workers", type=int, default=2)
    synth.set_defaults(run=_cmd_synth)

    prepare = commands.add_parser(
        "prepare", parents=[common], help="write train-id labels and sampler stats"
    )
    prepare.add_argument("kind", choices=("gta", "synthia", "cityscapes"))
    prepare.add_argument("root", help="the dataset folder")
    prepare.add_argument("--out", help="folder for the JSON stats (default: ROOT)")
    prepare.add_argument("--workers", type=int, default=2)
    prepare.add_argument(
        "--resize",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        help="also write a copy resized to the config's scale (e.g. 1280 720 for GTA5),"
        " which training then reads instead of the full-size files",
    )
    prepare.set_defaults(run=_cmd_prepare)

    train = commands.add_parser("train", parents=[common], help="train as a YAML config says")
    train.add_argument("config", help="a YAML config, e.g. configs/synthetic/omuda.yaml")
    train.add_argument("--work-dir", help="default: work_dirs/<config name>")
    train.add_argument("--resume", action="store_true", help="continue from latest.pt")
    train.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help=_OVERRIDES)
    train.set_defaults(run=_cmd_train)

    evaluate = commands.add_parser(
        "evaluate", parents=[common], help="mIoU of a checkpoint on its val split"
    )
    evaluate.add_argument(
        "--checkpoint", required=True, help="an omuda or DAFormer/MIC .pt/.pth, or a work dir"
    )
    evaluate.add_argument(
        "--out", help="JSON results (default: next to the checkpoint, e.g. latest.eval.json)"
    )
    evaluate.add_argument(
        "--weights",
        choices=("student", "teacher"),
        default="student",
        help="teacher: the EMA teacher (on data.val.split=train: pseudo-label quality)",
    )
    evaluate.add_argument(
        "overrides", nargs="*", default=[], metavar="KEY=VALUE", help=_CHECKPOINT_OVERRIDES
    )
    evaluate.set_defaults(run=_cmd_evaluate)

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="palette PNGs and overlays for images",
        usage="omuda predict --checkpoint PATH --out DIR [--scale W H] [--alpha A]"
        " IMAGE_OR_FOLDER ... [KEY=VALUE ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_PREDICT_FILES,
    )
    predict.add_argument(
        "--checkpoint", required=True, help="a checkpoint file or a work dir (its latest.pt)"
    )
    predict.add_argument("--out", required=True, help="folder for the files listed below")
    predict.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="images (.png, .jpg, .jpeg), folders searched for them, and KEY=VALUE overrides"
        " of the checkpoint's config as for evaluate (e.g. eval.mode=slide; `omuda config"
        " show WORK_DIR` lists every key)",
    )
    predict.add_argument(
        "--scale",
        nargs=2,
        type=int,
        metavar=("W", "H"),
        help="fit each image into W x H pixels, keeping its aspect ratio, before the network"
        " sees it (e.g. the model's training scale, data.val.scale); default: each image's"
        " own size, at least 32 pixels a side and at most 2048 x 1024 pixels in all",
    )
    predict.add_argument(
        "--alpha",
        type=float,
        default=0.5,
        help="opacity of the class colours in the overlay, 0 to 1 (default 0.5)",
    )
    predict.add_argument(  # the earlier spelling of KEY=VALUE, kept working
        "--set", dest="overrides", action="append", default=[], help=argparse.SUPPRESS
    )
    predict.set_defaults(run=_cmd_predict)

    compare = commands.add_parser(
        "compare",
        parents=[common],
        help="per-class IoU of runs side by side",
        description="Per-class IoU of runs side by side, each column named after its work"
        " dir, with a difference column (second - first) for two runs.",
    )
    compare.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="work dirs (their eval.json: the final evaluation) or result JSON files of"
        " train or evaluate",
    )
    compare.add_argument(
        "--best",
        action="store_true",
        help="read each work dir's best evaluation by val mIoU (checkpoints/best.json)",
    )
    compare.add_argument("--format", choices=FORMATS, default="text", help="printed table")
    compare.add_argument(
        "--out", help="also write the table to a file: .md as Markdown, .csv as CSV, else text"
    )
    compare.set_defaults(run=_cmd_compare)

    config = commands.add_parser(
        "config", parents=[common], help="print a resolved config (`omuda config show`)"
    )
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser(
        "show",
        parents=[common],
        help="every key of a config with its value, allowed values and default",
        description="Print the config a run would use, as YAML: every key with its value,"
        " its allowed values and, where it differs, its default. The output is a valid"
        " config file.",
    )
    show.add_argument(
        "config",
        metavar="CONFIG",
        help="a YAML config, a work dir (its config.yaml) or an omuda checkpoint",
    )
    show.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help=_OVERRIDES)
    show.set_defaults(run=_cmd_config_show)

    report = commands.add_parser(
        "report",
        parents=[common],
        help="HTML page with per-class tables, curves and the paper's figures for runs",
    )
    report.add_argument("runs", nargs="+", help="run work dirs or folders of runs (ablation)")
    report.add_argument("--out", required=True, help="folder for index.html and figures/")
    report.add_argument("--frames", nargs="+", metavar="NAME", help="val frames for the rows")
    report.add_argument("--rows", type=int, default=4, help="qualitative rows picked (default 4)")
    report.add_argument("--scan", type=int, default=50, help="val frames run (default 50)")
    report.add_argument("--tsne-pixels", type=int, default=100, help="t-SNE pixels per class")
    report.add_argument("--no-inference", action="store_true", help="no qualitative rows, t-SNE")
    report.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    report.set_defaults(run=_cmd_report)

    ablation = commands.add_parser(
        "ablation",
        parents=[common],
        help="run named tables (methods, table4-7, cdm) over seeds; shared rows run once",
    )
    ablation.add_argument(
        "tables",
        nargs="+",
        metavar="TABLE",
        help="methods, table4, table5, table6, table7 or cdm (several run as one queue)",
    )
    ablation.add_argument("--configs", default="configs/synthetic", help="config folder")
    ablation.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ablation.add_argument("--work-dir", default="work_dirs/ablation")
    ablation.add_argument("--parallel", type=int, default=1, help="runs at a time")
    ablation.add_argument("--summary-only", action="store_true", help="only summarise")
    ablation.add_argument(
        "--only", nargs="+", metavar="ROW", help="run only these rows (labels or folder names)"
    )
    ablation.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help=_OVERRIDES)
    ablation.set_defaults(run=_cmd_ablation)

    bench = commands.add_parser(
        "bench", parents=[common], help="time the training step on random data"
    )
    bench.add_argument("config")
    bench.add_argument("--iters", type=int, default=10)
    bench.add_argument("--warmup", type=int, default=3)
    bench.add_argument("--device", choices=("cpu", "cuda"))
    bench.add_argument("--flops", action="store_true", help="also count FLOP per iteration")
    bench.add_argument(
        "--concurrent",
        type=int,
        default=1,
        metavar="N",
        help="start N copies at once and report each one's median step (CPU sharing)",
    )
    bench.add_argument("--out", help="JSON report")
    bench.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE")
    bench.set_defaults(run=_cmd_bench)
    return parser


def _one_line(error: BaseException) -> str:
    """The user-facing sentence, also when a data-loader worker re-raised it with a traceback."""
    text = str(error).strip()
    if "Original Traceback" in text:
        text = text.splitlines()[-1].split("OmudaError: ", 1)[-1]
    return _clip(text.splitlines()[0] if text else type(error).__name__)


def _clip(line: str) -> str:
    return line if len(line) <= _MAX_ERROR_CHARS else line[: _MAX_ERROR_CHARS - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `omuda` console script."""
    parser = build_parser()
    try:
        # KEY=VALUE overrides may come before or after options (`bench C --iters 5 a.b=1`).
        args, extra = parser.parse_known_args(argv)
        if extra:
            if not hasattr(args, "overrides") or any("=" not in item for item in extra):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.overrides = [*args.overrides, *extra]
        return args.run(args)
    except OmudaError as error:
        print(f"omuda: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as error:  # an unwritable --out, a full disk, a file where a folder goes
        where = f"{error.filename}: " if error.filename else ""
        print(f"omuda: error: {_clip(f'{where}{error.strerror or error}')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("omuda: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
