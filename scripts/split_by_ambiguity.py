"""Split a generated benchmark's target val frames into those drawn with the locally
ambiguous look and the others, as two data roots of symbolic links, so that a run can be
evaluated on each: docs/RESULTS.md, "Where MIC's lead comes from".

Usage:
    .venv/bin/python scripts/split_by_ambiguity.py data/synthetic
    omuda evaluate --checkpoint runs/v2/methods/mic/seed0 data.root=data/synthetic-ambiguous
    omuda evaluate --checkpoint runs/v2/methods/mic/seed0 data.root=data/synthetic-clean

ROOT is an `omuda synth` output (prepared with `omuda prepare` before training or
evaluating); its seed and shift are read from ROOT/README.txt, and val frame 0 is rendered
afresh to check them. The two roots are written next to ROOT (ROOT-ambiguous, ROOT-clean,
which must not exist yet) and link the source and target train data unchanged.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from omuda.data.synthetic import generate_benchmark
from omuda.data.synthetic.writer import ambiguous_target_frames

LABEL_SUFFIXES = ("labelIds", "labelTrainIds")


def _read_seed_and_shift(root: Path) -> tuple[int, float]:
    text = (root / "README.txt").read_text(encoding="utf-8")
    seed = re.search(r"^seed: (\d+)$", text, re.MULTILINE)
    shift = re.search(r"^shift: ([0-9.]+)", text, re.MULTILINE)
    if seed is None or shift is None:
        raise ValueError(f"{root}/README.txt does not state the seed and shift")
    return int(seed.group(1)), float(shift.group(1))


def _check_first_val_frame(root: Path, seed: int, shift: float) -> None:
    """Write val frame 0 of (seed, shift) afresh and compare: the README must be right."""
    with tempfile.TemporaryDirectory() as fresh:
        counts = {"num_source": 0, "num_target_train": 0, "num_synthia": 0}
        generate_benchmark(Path(fresh), seed, shift, num_target_val=1, progress=False, **counts)
        (written,) = Path(fresh).glob("cityscapes/leftImg8bit/val/*/*.png")  # the one frame
        frame = written.relative_to(fresh)
        if written.read_bytes() != (root / frame).read_bytes():
            raise ValueError(f"{root / frame} is not val frame 0 of seed {seed}, shift {shift}")


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target.resolve(), link)


def split(root: Path) -> dict[str, int]:
    """Write ROOT-ambiguous and ROOT-clean; returns the number of val frames in each."""
    seed, shift = _read_seed_and_shift(root)
    _check_first_val_frame(root, seed, shift)
    outs = {kind: root.parent / f"{root.name}-{kind}" for kind in ("ambiguous", "clean")}
    for out in outs.values():
        if out.exists():  # stale links would mix two splits; never delete the user's files
            raise ValueError(f"{out} exists already; remove it first")
    val_images = sorted((root / "cityscapes/leftImg8bit/val").rglob("*_leftImg8bit.png"))
    ambiguous = set(ambiguous_target_frames(seed, "val", len(val_images), shift))
    counts = {}
    for kind, out in outs.items():
        for name in ("gta", "synthia"):
            if (root / name).exists():
                _link(root / name, out / name)
        for entry in (root / "cityscapes").iterdir():
            if entry.is_file():
                _link(entry, out / "cityscapes" / entry.name)
        for folder in ("leftImg8bit", "gtFine"):
            train = root / "cityscapes" / folder / "train"
            if train.exists():
                _link(train, out / "cityscapes" / folder / "train")
        counts[kind] = 0
        for image in val_images:
            city, stem = image.parent.name, image.name.removesuffix("_leftImg8bit.png")
            if ((city, stem) in ambiguous) != (kind == "ambiguous"):
                continue
            counts[kind] += 1
            _link(image, out / "cityscapes/leftImg8bit/val" / city / image.name)
            for suffix in LABEL_SUFFIXES:
                label = root / "cityscapes/gtFine/val" / city / f"{stem}_gtFine_{suffix}.png"
                if label.exists():  # labelTrainIds only once `omuda prepare` has run
                    _link(label, out / "cityscapes/gtFine/val" / city / label.name)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a prepared `omuda synth` output")
    args = parser.parse_args()
    try:
        counts = split(args.root)
    except (OSError, ValueError) as error:
        print(f"split_by_ambiguity: {error}", file=sys.stderr)
        return 2
    for kind, count in counts.items():
        print(f"{args.root}-{kind}: {count} val frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
