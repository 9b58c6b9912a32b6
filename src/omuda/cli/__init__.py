"""The `omuda` command: synth, prepare, train, evaluate, predict, compare, config show,
report, ablation, bench.

`main` parses the arguments (`omuda.cli.parser`), runs the subcommand
(`omuda.cli.commands`) and turns every failure into one `omuda: error: ...` line and exit
status 2. `python -m omuda.cli` and `torchrun ... -m omuda.cli` run it too
(`omuda/cli/__main__.py`).
"""

from __future__ import annotations

import sys

from omuda.cli.parser import build_parser
from omuda.errors import OmudaError

__all__ = ["build_parser", "main"]

# The longest error line printed; a message never echoes unbounded input.
_MAX_ERROR_CHARS = 500


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
