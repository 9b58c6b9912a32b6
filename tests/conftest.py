"""Shared test fixtures."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
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


# The data of end-to-end runs on `prepared_benchmark`: 64x64 crops of small frames, two
# per batch, no data workers.
TINY_DATA = (
    "data.crop_size=[64,64]",
    "data.batch_size=2",
    "data.workers=0",
    "data.source.scale=[128,72]",
    "data.target.scale=[128,64]",
    "data.val.scale=[128,64]",
)
# Settings for end-to-end runs on `prepared_benchmark`: TINY_DATA, a 16-channel head,
# single-threaded; evaluation and checkpoints as each test needs.
TINY_RUN = (
    *TINY_DATA,
    "model.decoder_channels=16",
    "model.pretrained=null",
    "train.threads=1",
    "train.warmup_iters=2",
    "train.eval_interval=0",
)


@pytest.fixture(scope="session")
def prepared_benchmark(tmp_path_factory) -> Path:
    """A tiny synthetic benchmark, prepared (8 GTA, 6 + 3 Cityscapes, 4 SYNTHIA frames).

    Shared by the session: a test that changes files works on a copy.
    """
    from omuda.data.prepare import prepare_dataset
    from omuda.data.synthetic import generate_benchmark

    root = tmp_path_factory.mktemp("prepared")
    generate_benchmark(
        root, num_source=8, num_target_train=6, num_target_val=3, num_synthia=4, progress=False
    )
    for kind in ("gta", "cityscapes", "synthia"):
        assert not prepare_dataset(kind, root / kind, progress=False).problems
    return root


@pytest.fixture(scope="session")
def tiny_run_args(prepared_benchmark) -> list[str]:
    """`KEY=VALUE` overrides for a tiny source-only run on `prepared_benchmark`."""
    return [*TINY_RUN, f"data.root={prepared_benchmark}"]


@pytest.fixture(scope="session")
def trained_work_dir(tmp_path_factory, tiny_run_args) -> Path:
    """A work dir after 2 iterations of tiny source-only training (checkpoint at 2).

    Shared by the session: a test that changes files works on a copy.
    """
    from omuda.cli import main

    work = tmp_path_factory.mktemp("trained") / "run"
    config = str(REPO_ROOT / "configs/synthetic/source_only.yaml")
    argv = ["--quiet", "train", config, "--work-dir", str(work), *tiny_run_args]
    assert main([*argv, "train.iters=2", "train.checkpoint_interval=2"]) == 0
    return work


GOLDEN_ENV = "OMUDA_GOLDEN"
PARITY_REPORT_ENV = "OMUDA_PARITY_REPORT"


class Golden:
    """The original DAFormer / MIC code's recorded vectors: NAME.safetensors + NAME.json."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def load(self, name: str) -> tuple[dict[str, torch.Tensor], dict]:
        from safetensors.torch import load_file

        tensors_path = self.root / f"{name}.safetensors"
        tensors = load_file(str(tensors_path)) if tensors_path.is_file() else {}
        return tensors, json.loads((self.root / f"{name}.json").read_text())


@pytest.fixture(scope="session")
def golden() -> Golden:
    """Golden vectors from $OMUDA_GOLDEN, else shared/reference/golden beside the checkout."""
    configured = os.environ.get(GOLDEN_ENV)
    root = Path(configured) if configured else REPO_ROOT.parent / "shared/reference/golden"
    if not (root / "MANIFEST.json").is_file():
        pytest.skip(f"parity: no golden vectors at {root} (set {GOLDEN_ENV})")
    return Golden(root)


class ParityRecorder:
    """Compares with golden values and keeps the largest difference of each named check."""

    def __init__(self) -> None:
        self.largest: dict[str, dict[str, float]] = {}

    def close(
        self, check: str, actual: object, expected: object, atol: float = 0.0, rtol: float = 0.0
    ) -> None:
        """assert_close(actual, expected) in float64, recording the largest absolute and
        relative differences and the largest |expected|."""
        actual, expected = _float64(actual), _float64(expected)
        entry = self.largest.setdefault(
            check, {"max_abs_diff": 0.0, "max_rel_diff": 0.0, "max_abs_expected": 0.0}
        )
        if expected.numel() and actual.shape == expected.shape:
            diff = (actual - expected).abs()
            relative = diff[expected != 0] / expected[expected != 0].abs()
            entry["max_abs_diff"] = max(entry["max_abs_diff"], diff.max().item())
            if relative.numel():
                entry["max_rel_diff"] = max(entry["max_rel_diff"], relative.max().item())
            scale = expected.abs().max().item()
            entry["max_abs_expected"] = max(entry["max_abs_expected"], scale)
        torch.testing.assert_close(
            actual, expected, atol=atol, rtol=rtol, msg=lambda m: f"{check}: {m}"
        )


def _float64(value: object) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().double().cpu()
    return torch.tensor(value, dtype=torch.float64)  # Python / numpy numbers keep float64


@pytest.fixture(scope="session")
def parity() -> Iterator[ParityRecorder]:
    """Recorder of the parity checks; with $OMUDA_PARITY_REPORT set, written there as JSON."""
    recorder = ParityRecorder()
    yield recorder
    report = os.environ.get(PARITY_REPORT_ENV)
    if report:
        Path(report).write_text(json.dumps(recorder.largest, indent=1, sort_keys=True))
