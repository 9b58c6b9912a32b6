"""`omuda bench --concurrent N`: N copies of one benchmark started at the same moment.

Each copy is its own `omuda bench` process, exactly as N users starting N runs would be;
the report gives each copy's median step, so the cost of sharing the CPU is one command.
`--concurrent 1` prints the same per-copy table for the one copy, so that a script comparing
1, 2 and 3 copies reads one format.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from omuda.errors import OmudaError


@dataclass
class ConcurrentReport:
    """Median seconds per iteration of each copy, in start order."""

    config: str
    medians: list[float]
    devices: list[str]

    def table(self) -> str:
        """Human-readable report."""
        copies = len(self.medians)
        together = "1 copy" if copies == 1 else f"{copies} copies"
        lines = [f"{together} of {self.config} {'alone' if copies == 1 else 'at once'}"]
        for index, (median, device) in enumerate(zip(self.medians, self.devices, strict=True)):
            lines.append(f"  copy {index + 1}: median {median:.3f} s per iteration   {device}")
        lines.append(f"  mean of the medians: {statistics.mean(self.medians):.3f} s")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready report."""
        return {"config": self.config, "median_seconds": self.medians, "devices": self.devices}


def run_concurrent(config: str, copies: int, bench_arguments: list[str]) -> ConcurrentReport:
    """Start `copies` `omuda bench CONFIG *bench_arguments` processes together; wait for all.

    `bench_arguments` are the single run's options and overrides (no `--out`, no
    `--concurrent`). A copy that fails ends the whole command with its error line.
    """
    if copies < 1:
        raise OmudaError(f"--concurrent must be at least 1, got {copies}")
    with tempfile.TemporaryDirectory(prefix="omuda-bench-") as folder:
        outputs = [Path(folder) / f"copy{index}.json" for index in range(copies)]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "omuda.cli", "--quiet", "bench", config,
                 *bench_arguments, "--out", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for out in outputs
        ]  # fmt: skip
        failures = []
        for process in processes:
            _, error = process.communicate()
            if process.returncode != 0:
                last = error.strip().splitlines()[-1] if error.strip() else "it failed"
                failures.append(last.removeprefix("omuda: error: "))
        if failures:
            raise OmudaError(f"a concurrent copy failed: {failures[0]}")
        reports = [json.loads(out.read_text()) for out in outputs]
    return ConcurrentReport(
        config=reports[0]["config"],
        medians=[report["median_seconds"] for report in reports],
        devices=[report["device"] for report in reports],
    )
