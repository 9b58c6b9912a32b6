"""The `omuda` argument parser: one subcommand per job, its options and help texts."""

from __future__ import annotations

import argparse
from typing import NoReturn

from omuda import __version__
from omuda.cli import commands
from omuda.errors import OmudaError
from omuda.limits import MAX_ASPECT_RATIO, MAX_IMAGE_SIDE

FORMATS = ("text", "markdown", "csv")  # omuda compare --format

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


def _count(text: str) -> int:
    """An argparse type: a whole number >= 0 (argparse names the option in the error)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


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
    subcommands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
    )

    synth = subcommands.add_parser(
        "synth",
        parents=[common],
        help="generate the embedded synthetic benchmark",
        description="Write GTA5-, Cityscapes- and SYNTHIA-like street scenes (640x352, "
        "512x256 and 640x380 frames) in the real datasets' layouts. The output bytes depend "
        "only on --seed, --shift and the frame counts.",
    )
    synth.add_argument("out", help="folder to write gta/, cityscapes/ and synthia/ into")
    synth.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    synth.add_argument(
        "--shift",
        type=float,
        default=None,
        help="difficulty: domain-shift strength, 0 = both domains alike (default: the "
        "calibrated one, see docs/RESULTS.md)",
    )
    size = synth.add_argument_group("size (frames per split)")
    for flag, default, what in (
        ("--source-frames", 400, "GTA5-like labelled source frames"),
        ("--target-train-frames", 300, "Cityscapes-like unlabelled target train frames"),
        ("--target-val-frames", 100, "Cityscapes-like labelled target val frames"),
        ("--synthia-frames", 200, "SYNTHIA-like labelled source frames"),
    ):
        size.add_argument(flag, type=_count, default=default, help=f"{what} (default: {default})")
    synth.add_argument("--workers", type=int, default=2, help="processes (default: 2)")
    synth.set_defaults(run=commands.run_synth)

    prepare = subcommands.add_parser(
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
    prepare.set_defaults(run=commands.run_prepare)

    train = subcommands.add_parser("train", parents=[common], help="train as a YAML config says")
    train.add_argument("config", help="a YAML config, e.g. configs/synthetic/omuda.yaml")
    train.add_argument("--work-dir", help="default: work_dirs/<config name>")
    train.add_argument("--resume", action="store_true", help="continue from latest.pt")
    train.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help=_OVERRIDES)
    train.set_defaults(run=commands.run_train)

    evaluate = subcommands.add_parser(
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
    evaluate.set_defaults(run=commands.run_evaluate)

    predict = subcommands.add_parser(
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
    predict.set_defaults(run=commands.run_predict)

    compare = subcommands.add_parser(
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
    compare.set_defaults(run=commands.run_compare)

    config = subcommands.add_parser(
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
    show.set_defaults(run=commands.run_config_show)

    report = subcommands.add_parser(
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
    report.set_defaults(run=commands.run_report)

    ablation = subcommands.add_parser(
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
    ablation.set_defaults(run=commands.run_ablation)

    bench = subcommands.add_parser(
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
        metavar="N",
        help="start N copies at once and report each one's median step (CPU sharing);"
        " given, it prints that per-copy table also for N = 1",
    )
    bench.add_argument("--out", help="JSON report")
    bench.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE")
    bench.set_defaults(run=commands.run_bench)
    return parser
