"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _small_torch() -> None:
    torch.manual_seed(0)
    # OMP_NUM_THREADS, when set, wins: tests then share the CPU politely with other jobs.
    threads = int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1))
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's read-only `shared/` folder (beside the checkout, or $OMUDA_SHARED)."""
    candidates = [Path(os.environ.get("OMUDA_SHARED", "")), REPO_ROOT.parent / "shared"]
    for path in candidates:
        if str(path) and (path / "samples").is_dir():
            return path
    pytest.skip("shared/ folder with real samples not found beside the checkout")
