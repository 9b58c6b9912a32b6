"""A run's text log, `WORK_DIR/train.log`: the lines the console showed, and the header that
opens each run (run, work dir, versions, device, threads, budget, resolved config).

Progress bars are left out (a bar redraws itself hundreds of times); the training loop writes
one log-only line per log interval instead, with the values the bar showed.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch
import yaml

import omuda
from omuda.config import Config, config_to_dict
from omuda.engine.checkpoint import BestCheckpoint
from omuda.engine.distributed import DistInfo
from omuda.engine.threads import ThreadBalancer

# Terminal control sequences (cursor moves, colours) that progress bars write.
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class ConsoleLog:
    """Appends complete console lines (and log-only lines) to a text file, flushed at once
    so that a killed run keeps everything up to its last line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write_line(self, line: str) -> None:
        """One line into the log only (not onto the console)."""
        if self._file.closed:
            return
        for stream in (sys.stdout, sys.stderr):  # what was printed before comes first
            stream.flush()
        self._file.write(line.rstrip("\n") + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file; later lines are dropped."""
        self._file.close()


class _Tee:
    """A text stream that writes through to `stream` and hands each complete line to `log`,
    without progress-bar drawings: a piece with a carriage return or a cursor move redraws
    the line in place and is left out, text printed after it on that line is kept."""

    def __init__(self, stream: IO[str], log: ConsoleLog) -> None:
        self._stream = stream
        self._log = log
        self._pending = ""

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        for piece in re.split(r"(\n)", text):
            if piece == "\n":
                if self._pending.strip():
                    self._log.write_line(self._pending)
                self._pending = ""
            elif "\r" in piece or _ESCAPE.search(piece):
                self._pending = ""  # a progress bar's drawing
            else:
                self._pending += piece
        return written if written is not None else len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self._stream, name)


@contextlib.contextmanager
def console_copied_to(path: Path) -> Iterator[ConsoleLog]:
    """Copy what is printed to stdout and stderr into `path` (appended) for the block's
    duration; an exception ending the block is logged as `stopped: ...` and re-raised."""
    log = ConsoleLog(path)
    log.write_line(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')}")
    saved = sys.stdout, sys.stderr
    # A console already redirected into the log (`omuda ablation` does so) is not copied twice.
    sys.stdout, sys.stderr = (
        stream if _is_file(stream, path) else _Tee(stream, log) for stream in saved
    )
    try:
        yield log
    except BaseException as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        log.write_line(f"stopped: {type(error).__name__}{': ' + reason if reason else ''}")
        raise
    finally:
        sys.stdout, sys.stderr = saved
        log.close()


def _is_file(stream: IO[str], path: Path) -> bool:
    """Whether `stream` writes into the file at `path`."""
    try:
        return os.path.samestat(os.fstat(stream.fileno()), os.stat(path))
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


def git_commit(folder: Path) -> str | None:
    """The short commit of the git checkout holding `folder`, with `+changes` when tracked
    files differ from it; None outside a checkout or without git."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return None
    changes = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}+changes" if changes else commit


def describe_device(device: torch.device, world_size: int) -> str:
    """e.g. `cpu`, `cuda (NVIDIA H100 80GB HBM3)`, `cuda (...) x 4 processes`."""
    text = device.type
    if device.type == "cuda":
        text += f" ({torch.cuda.get_device_name(device)})"
    return text + (f" x {world_size} processes" if world_size > 1 else "")


def run_header(
    cfg: Config,
    work_dir: Path,
    dist_info: DistInfo,
    balancer: ThreadBalancer | None,
    dataset_sizes: dict[str, int],
    resume: bool,
) -> str:
    """The lines that open a run on the console and in train.log: run name, work dir,
    versions (and git commit), device, threads, data sizes and the iteration budget."""
    train, data = cfg.train, cfg.data
    commit = git_commit(Path(omuda.__file__).parent)
    versions = (
        f"python {platform.python_version()}, torch {torch.__version__},"
        f" omuda {omuda.__version__}" + (f" (git {commit})" if commit else "")
    )
    threads = (
        f"{balancer.decision.threads} ({balancer.decision.reason})"
        if balancer is not None
        else f"{torch.get_num_threads()} (CPU threads beside the GPU)"
    )
    every = [
        f"{what} every {interval}"
        for what, interval in (
            ("evaluation", train.eval_interval),
            ("checkpoint", train.checkpoint_interval),
            ("log line", train.log_interval),
        )
        if interval
    ]
    batch = f"batch {data.batch_size} source" + (
        f" + {data.batch_size} target" if cfg.adaptation.self_training else ""
    )
    sizes = ", ".join(f"{count} {name}" for name, count in dataset_sizes.items() if count)
    return "\n".join(
        [
            f"run {cfg.name} -> {work_dir}" + (" (resumed)" if resume else ""),
            f"  {versions}",
            f"  device {describe_device(dist_info.device, dist_info.world_size)},"
            f" threads {threads}",
            f"  {train.iters} iterations, {batch}; "
            + ", ".join(every or ["no evaluation, checkpoint at the end"]),
            f"  images: {sizes}",
            f"  log {work_dir / 'train.log'}, resolved config {work_dir / 'config.yaml'}",
        ]
    )


def checkpoints_summary(work_dir: Path, iteration: int, miou: float, best: BestCheckpoint) -> str:
    """Which checkpoint scored what at the end of training: the final one and the best."""
    folder = work_dir / "checkpoints"
    lines = [f"final: val mIoU {100 * miou:.2f} at iteration {iteration}, {folder / 'latest.pt'}"]
    if best.iteration is not None:
        lines.append(
            f"best:  val mIoU {100 * best.miou:.2f} at iteration {best.iteration},"
            f" {folder / 'best.pt'}"
        )
    return "\n".join([*lines, f"results: {work_dir / 'eval.json'}"])


def resolved_config(cfg: Config) -> str:
    """The resolved config as indented YAML under a title line, for the log."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
    text = text.rstrip("\n")
    return "\n".join(["resolved config:", *(f"  {line}" for line in text.splitlines())])
