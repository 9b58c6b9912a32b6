"""`omuda config show`: a resolved config as YAML, every key with its value, the allowed
values and the default where the value differs from it. The output is itself a valid
config file."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from omuda.config import CHOICES, Config

_COMMENT_COLUMN = 40


def _scalar(value: Any) -> str:
    """A value as YAML would write it inline: `data/synthetic`, `[256, 128]`, `null`."""
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump([value], default_flow_style=True, width=10_000).strip()
    return text[1:-1]  # the one-element list's brackets


def _lines(current: Any, default: Any, prefix: str, indent: str) -> list[str]:
    lines = []
    for field in dataclasses.fields(current):
        value = getattr(current, field.name)
        default_value = getattr(default, field.name)
        dotted = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            lines.append(f"{indent}{field.name}:")
            lines += _lines(value, default_value, f"{dotted}.", indent + "  ")
            continue
        notes = []
        if dotted in CHOICES:
            notes.append(" | ".join(CHOICES[dotted]))
        if value != default_value:
            notes.append(f"default {_scalar(default_value)}")
        line = f"{indent}{field.name}: {_scalar(value)}"
        if notes:
            line = f"{line.ljust(_COMMENT_COLUMN)}  # {'; '.join(notes)}"
        lines.append(line)
    return lines


def show_config(cfg: Config, source: str) -> str:
    """The YAML text of `cfg` (resolved from `source`), with a comment per key giving its
    allowed values and, where it differs, its default."""
    header = [
        f"# {source}, resolved: every key with the value a run would use.",
        "# Override any of them with KEY=VALUE on the command line, dotted by section:",
        "# e.g. train.iters=2000 data.root=/data adaptation.masking=none",
    ]
    return "\n".join(header + _lines(cfg, Config(), "", ""))
