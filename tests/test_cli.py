"""The CLI's consistency: KEY=VALUE everywhere, `omuda config show`, what `--help` says,
`predict`'s options and files, `compare`'s names, difference column and formats."""

from __future__ import annotations

import csv
import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from omuda.cli import main
from omuda.cli.parser import build_parser
from omuda.config import config_from_dict, config_to_dict, load_config
from omuda.data.io import read_image, read_label, write_image
from omuda.data.labels import NUM_CLASSES
from omuda.data.synthetic import generate_benchmark
from omuda.data.synthetic.writer import FRAME_SIZES

REPO = Path(__file__).resolve().parents[1]
OMUDA_CONFIG = str(REPO / "configs/synthetic/omuda.yaml")


def help_text(capsys: pytest.CaptureFixture, *command: str) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_help_says_how_to_list_the_config_keys(command, capsys):
    text = help_text(capsys, command)
    assert "KEY=VALUE" in text and "omuda config show" in text


def test_config_show_prints_the_resolved_config_as_a_loadable_config(capsys):
    overrides = ["train.iters=50", "adaptation.masking=block"]
    assert main(["config", "show", OMUDA_CONFIG, *overrides]) == 0
    text = capsys.readouterr().out
    expected = load_config(OMUDA_CONFIG, overrides)
    assert config_to_dict(config_from_dict(yaml.safe_load(text))) == config_to_dict(expected)
    lines = text.splitlines()
    assert "  iters: 50" in next(line for line in lines if line.startswith("  iters:"))
    assert "# default 40000" in next(line for line in lines if line.startswith("  iters:"))
    masking = next(line for line in lines if line.startswith("  masking:"))
    assert masking.split("#")[1].strip() == "none | block | cam | random | grid; default none"
    assert any(line.startswith("# e.g. train.iters=") for line in lines)


def test_config_show_reads_a_work_dir_and_rejects_unknown_keys(trained_work_dir, capsys):
    assert main(["config", "show", str(trained_work_dir)]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["train"]["iters"] == 2 and shown["name"] == "synthetic-source-only"
    checkpoint = trained_work_dir / "checkpoints/latest.pt"
    assert main(["config", "show", str(checkpoint), "eval.mode=slide"]) == 0
    from_checkpoint = yaml.safe_load(capsys.readouterr().out)
    assert from_checkpoint == {**shown, "eval": {**shown["eval"], "mode": "slide"}}
    assert main(["config", "show", OMUDA_CONFIG, "train.itres=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("omuda: error:") and "did you mean train.iters" in err


def test_predict_takes_key_value_overrides_like_train_and_evaluate(
    trained_work_dir, tmp_path, capsys
):
    photo = tmp_path / "photo.png"
    write_image(photo, np.random.default_rng(0).integers(0, 256, (40, 72, 3), dtype=np.uint8))
    base = ["--quiet", "predict", "--checkpoint", str(trained_work_dir)]
    slide = ["eval.mode=slide", "eval.crop_size=[32,32]", "eval.stride=[16,16]"]
    assert main([*base, "--out", str(tmp_path / "a"), str(photo), *slide]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), *slide, str(photo)]) == 0
    set_style = [word for override in slide for word in ("--set", override)]
    assert main([*base, "--out", str(tmp_path / "c"), str(photo), *set_style]) == 0
    capsys.readouterr()
    first = read_label(tmp_path / "a/photo_trainIds.png")
    for other in ("b", "c"):
        np.testing.assert_array_equal(first, read_label(tmp_path / other / "photo_trainIds.png"))
    assert first.shape == (40, 72) and first.max() < NUM_CLASSES

    assert main([*base, "--out", str(tmp_path / "d"), str(photo), "eval.mode=sliding"]) == 2
    assert "eval.mode must be one of whole, slide" in capsys.readouterr().err


def test_predict_writes_the_files_its_help_lists_with_scale_and_alpha(
    trained_work_dir, tmp_path, capsys
):
    photo = tmp_path / "street.png"
    image = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    write_image(photo, image)
    out = tmp_path / "out"
    argv = ["--quiet", "predict", "--checkpoint", str(trained_work_dir), "--out", str(out)]
    assert main([*argv, "--alpha", "0", "--scale", "40", "24", str(photo)]) == 0
    said = capsys.readouterr().out
    assert "each fitted into 40x24" in said and f"wrote 4 files to {out}" in said

    written = sorted(path.name for path in out.iterdir())
    documented = re.findall(r"(<stem>\S+\.png|legend\.png)", help_text(capsys, "predict"))
    assert written == sorted(name.replace("<stem>", "street") for name in documented)

    # alpha 0: the overlay is the photo itself, but for the white class borders
    train_ids = read_label(out / "street_trainIds.png")
    blended = read_image(out / "street_overlay.png")
    borders = np.zeros(train_ids.shape, dtype=bool)
    borders[:, :-1] |= train_ids[:, :-1] != train_ids[:, 1:]
    borders[:-1, :] |= train_ids[:-1, :] != train_ids[1:, :]
    np.testing.assert_array_equal(blended[~borders], image[~borders])
    assert (blended[borders] == 255).all()

    assert main([*argv, "--alpha", "1.5", str(photo)]) == 2
    assert "alpha must lie in [0, 1]" in capsys.readouterr().err


def write_run(work: Path, iou: list[float | None], best_iou: list[float] | None = None) -> Path:
    """A fake work dir with eval.json (and best.json) as `omuda train` writes them."""
    work.mkdir(parents=True)
    result = {"classes": [], "iou": iou, "iteration": 1000, "checkpoint": "checkpoints/latest.pt"}
    (work / "eval.json").write_text(json.dumps({"iterations": 1000, "eval": result}))
    if best_iou is not None:
        (work / "checkpoints").mkdir()
        (work / "checkpoints/best.pt").write_bytes(b"weights")
        best = {"iteration": 500, "checkpoint": "checkpoints/best.pt", "eval": {"iou": best_iou}}
        (work / "checkpoints/best.json").write_text(json.dumps(best))
    return work


def test_compare_names_runs_by_work_dir_and_adds_a_difference(tmp_path, capsys):
    source_only = write_run(tmp_path / "demo/source_only", [0.25] * 18 + [None], [0.5] * 19)
    omuda = write_run(tmp_path / "demo/omuda", [0.5] * 19, [0.75] * 19)
    assert main(["compare", str(source_only), str(omuda)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["class", "source_only", "omuda", "difference"]
    assert next(line for line in lines if line.startswith("road")).split()[1:] == [
        "25.00",
        "50.00",
        "+25.00",
    ]
    assert next(line for line in lines if line.startswith("bicycle")).split()[1:] == [
        "-",
        "50.00",
        "-",
    ]
    assert next(line for line in lines if line.startswith("mIoU (19)")).split()[2:] == [
        "25.00",
        "50.00",
        "+25.00",
    ]
    assert f"source_only: {source_only / 'eval.json'} (final evaluation, iteration 1000," in (
        "\n".join(lines)
    )
    assert "difference: omuda - source_only, in IoU points" in lines

    # --best reads checkpoints/best.json and says so
    assert main(["compare", "--best", str(source_only), str(omuda)]) == 0
    text = capsys.readouterr().out
    road = next(line for line in text.splitlines() if line.startswith("road"))
    assert road.split()[1:] == ["50.00", "75.00", "+25.00"]
    assert "(best evaluation by val mIoU, iteration 500, checkpoints/best.pt)" in text


def test_compare_tells_apart_runs_of_the_same_name_and_writes_markdown_and_csv(tmp_path, capsys):
    first = write_run(tmp_path / "daformer/seed0", [0.2] * 19)
    second = write_run(tmp_path / "omuda/seed0", [0.3] * 19)
    third = write_run(tmp_path / "mic/seed0", [0.4] * 19)
    table = tmp_path / "table.md"
    assert main(["compare", str(first), str(second), str(third), "--out", str(table)]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["class", "daformer/seed0", "omuda/seed0", "mic/seed0"]  # no difference
    markdown = table.read_text().splitlines()
    assert markdown[0] == "| class | daformer/seed0 | omuda/seed0 | mic/seed0 |"
    assert markdown[1] == "|---|---:|---:|---:|"
    assert markdown[2] == "| road | 20.00 | 30.00 | 40.00 |"

    spreadsheet = tmp_path / "table.csv"
    assert main(["compare", str(first), str(second), "--out", str(spreadsheet)]) == 0
    rows = list(csv.reader(spreadsheet.read_text().splitlines()))
    assert rows[0] == ["class", "daformer/seed0", "omuda/seed0", "difference"]
    assert rows[1] == ["road", "20.00", "30.00", "+10.00"]
    assert rows[-3] == ["mIoU (19)", "20.00", "30.00", "+10.00"]
    assert len(rows) == 1 + 19 + 3

    # an `omuda evaluate` result is named after the run its checkpoint belongs to
    evaluated = tmp_path / "results/latest.eval.json"
    evaluated.parent.mkdir()
    (first / "checkpoints").mkdir()
    (first / "checkpoints/latest.pt").write_bytes(b"weights")
    record = {"iou": [0.1] * 19, "checkpoint": str(first / "checkpoints/latest.pt")}
    evaluated.write_text(json.dumps({**record, "iteration": 7}))
    capsys.readouterr()
    assert main(["compare", str(first), str(evaluated), "--format", "csv"]) == 0
    header = next(csv.reader(capsys.readouterr().out.splitlines()))
    assert header == ["class", "seed0 (eval)", "seed0 (latest.eval)", "difference"]


def test_compare_refuses_to_write_over_an_evaluation_it_reads(tmp_path, capsys):
    run = write_run(tmp_path / "run", [0.5] * 19)
    before = (run / "eval.json").read_bytes()
    assert main(["compare", str(run), "--out", str(run / "eval.json")]) == 2
    assert "left as it is" in capsys.readouterr().err
    assert (run / "eval.json").read_bytes() == before


def test_synth_sizes_are_options_named_in_its_help(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--shift", "--source-frames", "--target-val-frames", "--synthia-frames"):
        assert flag in help_text
    # The help's sizes and defaults are written out (the parser avoids importing the
    # generator): they must stay those of the generator.
    defaults = inspect.signature(generate_benchmark).parameters
    parsed = build_parser().parse_args(["synth", "out"])
    for option, name in (
        ("source_frames", "num_source"),
        ("target_train_frames", "num_target_train"),
        ("target_val_frames", "num_target_val"),
        ("synthia_frames", "num_synthia"),
    ):
        assert getattr(parsed, option) == defaults[name].default
    for height, width in FRAME_SIZES.values():
        assert f"{width}x{height}" in help_text
    sizes = ["--source-frames", "2", "--target-train-frames", "1", "--target-val-frames", "1"]
    args = ["synth", str(tmp_path), "--quiet", "--workers", "0", *sizes, "--synthia-frames", "0"]
    assert main(args) == 0
    assert len(list((tmp_path / "gta/images").iterdir())) == 2
    assert len(list((tmp_path / "cityscapes/leftImg8bit/val").rglob("*.png"))) == 1
