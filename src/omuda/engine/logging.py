"""Metrics as JSON lines and TensorBoard scalars in the work dir (main process only)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricLogger:
    """Appends `{"iter": N, ...}` records to `metrics.jsonl` and mirrors them to TensorBoard."""

    def __init__(self, work_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.path = work_dir / "metrics.jsonl"
        self._writer = None
        if enabled:
            work_dir.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(work_dir / "tensorboard"))

    def log(self, iteration: int, group: str, values: dict[str, Any]) -> None:
        """Record `values` (numbers; NaN written as null) under `group` at `iteration`."""
        if not self.enabled:
            return
        record = {"iter": iteration, "group": group}
        for key, value in values.items():
            record[key] = None if isinstance(value, float) and math.isnan(value) else value
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(f"{group}/{key}", value, iteration)

    def close(self) -> None:
        """Flush and close TensorBoard's event file."""
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a `metrics.jsonl` file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
