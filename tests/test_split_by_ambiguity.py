"""scripts/split_by_ambiguity.py: the two evaluation roots hold exactly the frames of each kind."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from omuda.data.synthetic import generate_benchmark
from omuda.data.synthetic.writer import ambiguous_target_frames

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "split_by_ambiguity.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("split_by_ambiguity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("split") / "synthetic"
    counts = {"num_source": 1, "num_target_train": 1, "num_target_val": 8, "num_synthia": 0}
    generate_benchmark(root, seed=4, shift=1.35, progress=False, **counts)
    return root


def _val_stems(root: Path) -> set[tuple[str, str]]:
    images = (root / "cityscapes/leftImg8bit/val").rglob("*_leftImg8bit.png")
    return {(path.parent.name, path.name.removesuffix("_leftImg8bit.png")) for path in images}


def test_split_puts_each_val_frame_in_the_root_of_its_kind(benchmark: Path) -> None:
    counts = _script().split(benchmark)
    ambiguous = set(ambiguous_target_frames(4, "val", 8, shift=1.35))
    assert 0 < len(ambiguous) < 8
    assert counts == {"ambiguous": len(ambiguous), "clean": 8 - len(ambiguous)}
    assert _val_stems(benchmark.parent / "synthetic-ambiguous") == ambiguous
    assert _val_stems(benchmark.parent / "synthetic-clean") == _val_stems(benchmark) - ambiguous
    for city, stem in ambiguous:
        label = f"cityscapes/gtFine/val/{city}/{stem}_gtFine_labelIds.png"
        linked = benchmark.parent / "synthetic-ambiguous" / label
        assert linked.read_bytes() == (benchmark / label).read_bytes()
    assert (benchmark.parent / "synthetic-clean/gta/images").is_dir()
    with pytest.raises(ValueError, match="exists already"):
        _script().split(benchmark)


def test_split_refuses_a_readme_that_does_not_match_the_frames(tmp_path: Path) -> None:
    root = tmp_path / "synthetic"
    counts = {"num_source": 0, "num_target_train": 0, "num_target_val": 1, "num_synthia": 0}
    generate_benchmark(root, seed=4, shift=1.35, progress=False, **counts)
    readme = root / "README.txt"
    readme.write_text(readme.read_text().replace("seed: 4\n", "seed: 5\n"))
    with pytest.raises(ValueError, match="is not val frame 0 of seed 5"):
        _script().split(root)
    assert not (tmp_path / "synthetic-clean").exists()
