"""Each loss term's share of the gradient on the student's shared parameters.

The step runs one backward per loss term (source CE, the distillation term, the mixed
target loss, the masked loss), so the gradients accumulate term by term. On the iterations
the training loop logs, a `GradientLedger` snapshots the watched gradients after each
backward and takes the difference to the previous snapshot: that difference is the term's
own gradient. A term's share is its gradient norm divided by the sum of all terms' norms,
so a term whose share stays near 0 does nothing to the shared parameters (an inert term
shows in the log).

The watched parameters are the backbone's (`shared_parameters`): every term reaches them.
Nothing here runs on other iterations; on measured ones it costs one copy of the watched
gradients per term and no host sync.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

NORM_PREFIX = "grad_norm/"
SHARE_PREFIX = "grad_share/"


def shared_parameters(student: nn.Module) -> list[nn.Parameter]:
    """The parameters every loss term reaches: the student's backbone (encoder).

    Accepts the segmentor itself or a wrapper with `.module` (DDP) / `._orig_mod` (compile).
    """
    model = getattr(student, "module", student)
    model = getattr(model, "_orig_mod", model)
    return [param for param in model.backbone.parameters() if param.requires_grad]


def _total_norm(tensors: list[Tensor]) -> Tensor:
    """L2 norm over a list of tensors (0-dim float32; 0 for an empty list)."""
    if not tensors:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)).float())


class GradientLedger:
    """Per-term gradient norms on `parameters`, from a snapshot after each backward.

    Call `record(term)` right after the backward of `term` (terms in the order they run).
    `term_norms[term]` is the norm of that backward's contribution to the watched gradients,
    `cumulative_norms[i]` the norm of the accumulated gradients after the i-th backward
    (what DAFormer's golden runs log). All values are 0-dim tensors on the parameters'
    device.
    """

    def __init__(self, parameters: Iterable[nn.Parameter]) -> None:
        self.parameters = list(parameters)
        self.term_norms: dict[str, Tensor] = {}
        self.cumulative_norms: list[Tensor] = []
        self._previous: list[Tensor] | None = None

    @torch.no_grad()
    def record(self, term: str) -> None:
        """Note the gradient `term`'s backward added since the previous record."""
        if term in self.term_norms:
            raise ValueError(f"gradient term {term!r} recorded twice in one step")
        current = [
            param.grad if param.grad is not None else torch.zeros_like(param)
            for param in self.parameters
        ]
        added = current if self._previous is None else torch._foreach_sub(current, self._previous)
        self.term_norms[term] = _total_norm(added)
        self.cumulative_norms.append(_total_norm(current))
        # A copy: autograd accumulates into .grad in place.
        self._previous = [grad.clone() for grad in current]

    def summary(self) -> dict[str, Tensor]:
        """{"grad_norm/TERM": norm, "grad_share/TERM": norm / sum of norms} per term."""
        if not self.term_norms:
            return {}
        total = torch.stack(list(self.term_norms.values())).sum()
        result = {}
        for term, norm in self.term_norms.items():
            result[NORM_PREFIX + term] = norm
            result[SHARE_PREFIX + term] = norm / total.clamp(min=torch.finfo(norm.dtype).tiny)
        return result


def median_shares(records: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """{term: (median norm, median share)} over per-iteration `GradientLedger.summary`
    values (already floats), in the order the terms first appear."""
    terms: dict[str, None] = {}
    for record in records:
        for key in record:
            if key.startswith(NORM_PREFIX):
                terms[key[len(NORM_PREFIX) :]] = None
    result = {}
    for term in terms:
        norms = [r[NORM_PREFIX + term] for r in records if NORM_PREFIX + term in r]
        shares = [r[SHARE_PREFIX + term] for r in records if SHARE_PREFIX + term in r]
        result[term] = (statistics.median(norms), statistics.median(shares))
    return result


def last_logged_shares(metrics: Path) -> tuple[int, dict[str, float]] | None:
    """(iteration, {term: share}) of the last train record of a `metrics.jsonl` that holds
    gradient shares; None when the file is missing or holds none."""
    if not metrics.is_file():
        return None
    found = None
    for line in metrics.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed run
        if not isinstance(record, dict) or record.get("group") != "train":
            continue
        shares = {
            key[len(SHARE_PREFIX) :]: value
            for key, value in record.items()
            if key.startswith(SHARE_PREFIX) and isinstance(value, (int, float))
        }
        if shares:
            found = (int(record.get("iter", 0)), shares)
    return found


def share_table(runs: dict[str, tuple[int, dict[str, float]]]) -> str:
    """The "gradient shares (last logged)" block of `omuda compare`: one column per run,
    one row per loss term, shares in percent ("-": the run has no such term)."""
    terms: dict[str, None] = {}
    for _, shares in runs.values():
        terms.update(dict.fromkeys(shares))
    names = list(runs)
    width = max(10, *(len(name) for name in names))
    lines = [
        "gradient shares (last logged) on the shared backbone, % of the sum of the terms' norms:",
        f"{'term':<10}" + "".join(f" {name:>{width}}" for name in names),
        f"{'iteration':<10}" + "".join(f" {runs[name][0]:>{width}}" for name in names),
    ]
    for term in terms:
        cells = []
        for name in names:
            value = runs[name][1].get(term)
            valid = value is not None and math.isfinite(value)
            cells.append(f" {100 * value:>{width}.2f}" if valid else f" {'-':>{width}}")
        lines.append(f"{term:<10}" + "".join(cells))
    return "\n".join(lines)
