"""Bad input, as a careless or hostile user gives it: one line `omuda: error: ...`, exit 2.

Each test names the case of docs/RELIABILITY.md it covers. Output is captured at the file
descriptor level (capfd), so a line that a C library prints (libpng) is seen too.
"""

from __future__ import annotations

import builtins
import errno
import shutil
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from omuda.cli import main
from omuda.config import load_config
from omuda.data import io
from omuda.errors import OmudaError

REPO = Path(__file__).resolve().parents[1]
SOURCE_ONLY = str(REPO / "configs/synthetic/source_only.yaml")
READERS = (io.read_image, io.read_label, io.read_synthia_label, io.image_size, io.verify_image)


def one_error_line(capfd: pytest.CaptureFixture) -> str:
    """The captured stderr, which must be exactly one `omuda: error: ...` line."""
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omuda: error: "), err[-3000:]
    return lines[0]


def png_header(width: int, height: int, data: bytes = b"\x00" * 10) -> bytes:
    """A PNG whose header (valid CRCs) claims width x height RGB but holds `data` only."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(data))
        + chunk(b"IEND", b"")
    )


def copy_benchmark(prepared: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(prepared, tmp_path / "data"))


# 1. Images that cannot be decoded or should not be.


@pytest.mark.parametrize("reader", READERS, ids=lambda reader: reader.__name__)
def test_zero_byte_file_is_refused_naming_it(reader, tmp_path):
    empty = tmp_path / "frame.png"
    empty.write_bytes(b"")
    with pytest.raises(OmudaError, match=r"frame\.png is empty \(0 bytes\)"):
        reader(empty)


@pytest.mark.parametrize("size", [(100_000, 100_000), (9000, 9000), (8193, 16)])
@pytest.mark.parametrize("reader", READERS, ids=lambda reader: reader.__name__)
def test_image_over_the_size_limit_is_refused_from_its_header(reader, size, tmp_path, capfd):
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header(*size))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning is not enough
        with pytest.raises(OmudaError, match=r"huge\.png is over the limit of 8192x8192 pixels"):
            reader(huge)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("reader", READERS, ids=lambda reader: reader.__name__)
def test_image_of_extreme_aspect_ratio_is_refused(reader, tmp_path):
    thin = tmp_path / "thin.png"
    if reader is io.read_synthia_label:
        io.write_synthia_label(thin, np.zeros((1, 4000), dtype=np.uint16))
    else:
        io.write_label(thin, np.zeros((1, 4000), dtype=np.uint8))
    with pytest.raises(OmudaError, match=r"thin\.png is 4000x1 pixels: .* 16 times"):
        reader(thin)


def test_images_at_the_limits_are_accepted(tmp_path):
    io.write_image(tmp_path / "wide.png", np.zeros((2, 32, 3), dtype=np.uint8))  # 16:1
    assert io.verify_image(tmp_path / "wide.png") == (32, 2)
    assert io.read_image(tmp_path / "wide.png").shape == (2, 32, 3)
    (tmp_path / "edge.png").write_bytes(png_header(8192, 512))
    assert io.image_size(tmp_path / "edge.png") == (8192, 512)


def test_opencv_decode_limit_matches_the_tool_limit():
    import os

    assert os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] == str(io.MAX_IMAGE_PIXELS)
    assert io.MAX_IMAGE_PIXELS == io.MAX_IMAGE_SIDE**2 == 8192 * 8192


def _files(root: Path, kind: str) -> tuple[list[Path], list[Path]]:
    """Sorted (images, raw labels) of one dataset kind (Cityscapes: the train split)."""
    if kind == "gta":
        return sorted((root / "images").glob("*.png")), sorted(
            p for p in (root / "labels").glob("*.png") if "TrainIds" not in p.name
        )
    if kind == "synthia":
        return sorted((root / "RGB").glob("*.png")), sorted(
            p for p in (root / "GT/LABELS").glob("*.png") if "TrainIds" not in p.name
        )
    return sorted((root / "leftImg8bit/train").glob("*/*.png")), sorted(
        (root / "gtFine/train").glob("*/*_labelIds.png")
    )


@pytest.mark.parametrize("kind", ["gta", "synthia", "cityscapes"])
def test_prepare_lists_each_bad_file_goes_on_and_exits_2(kind, prepared_benchmark, tmp_path, capfd):
    root = copy_benchmark(prepared_benchmark, tmp_path) / kind
    images, labels = _files(root, kind)
    images[0].write_bytes(b"")  # zero-byte image
    labels[1].write_bytes(b"")  # zero-byte label
    images[2].write_bytes(png_header(100_000, 100_000))  # a decompression bomb
    io.write_image(images[3], np.zeros((1, 4000, 3), dtype=np.uint8))  # 4000x1
    assert main(["--quiet", "prepare", kind, str(root)]) == 2
    captured = capfd.readouterr()
    err = captured.err.strip().splitlines()
    assert err[-1].startswith("omuda: error: prepare found 4 problems (listed above)")
    problems = "\n".join(err[:-1])
    assert all(line.startswith("problem: ") for line in err[:-1])
    for bad in (images[0], labels[1], images[2], images[3]):
        assert str(bad) in problems
    assert "is empty (0 bytes)" in problems and "over the limit of 8192x8192 pixels" in problems
    stats = (root / "sample_class_stats.json").read_text()
    good = [label.name.replace("labelIds", "labelTrainIds") for label in labels[4:]]
    if kind != "cityscapes":
        good = [label.stem + "_labelTrainIds.png" for label in labels[4:]]
    assert all(name in stats for name in good)  # the others were still prepared


def test_predict_refuses_bad_images_in_one_line(trained_work_dir, tmp_path, capfd):
    cases = {
        "empty.png": b"",
        "bomb.png": png_header(100_000, 100_000),
        "short.png": png_header(30, 20, data=b"\x00" * 5),  # valid CRCs, too little data
    }
    io.write_image(tmp_path / "thin.png", np.zeros((1, 4000, 3), dtype=np.uint8))
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for name in [*cases, "thin.png"]:
        argv = ["--quiet", "predict", "--checkpoint", str(trained_work_dir)]
        assert main([*argv, "--out", str(tmp_path / "out"), str(tmp_path / name)]) == 2
        assert str(tmp_path / name) in one_error_line(capfd)  # and no `libpng error:` line


def test_train_with_data_workers_reports_a_zero_byte_image_in_one_line(
    prepared_benchmark, tiny_run_args, tmp_path, capfd
):
    root = copy_benchmark(prepared_benchmark, tmp_path)
    for image in (root / "gta/images").glob("*.png"):
        image.write_bytes(b"")
    # More workers than this machine may have CPUs: torch's warning about it stays silent.
    argv = ["--quiet", "train", SOURCE_ONLY, "--work-dir", str(tmp_path / "w"), *tiny_run_args]
    assert main([*argv, f"data.root={root}", "data.workers=3", "train.iters=1"]) == 2
    assert "is empty (0 bytes)" in one_error_line(capfd)


def test_evaluate_reports_a_zero_byte_val_image_in_one_line(
    prepared_benchmark, trained_work_dir, tmp_path, capfd
):
    root = copy_benchmark(prepared_benchmark, tmp_path)
    frame = sorted((root / "cityscapes/leftImg8bit/val").glob("*/*.png"))[1]
    frame.write_bytes(b"")
    argv = ["--quiet", "evaluate", "--checkpoint", str(trained_work_dir)]
    assert main([*argv, "--out", str(tmp_path / "e.json"), f"data.root={root}"]) == 2
    assert f"{frame} is empty" in one_error_line(capfd)


# 2. Bounded memory on hostile input; 3. config values checked at load.


def test_help_states_the_largest_image(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "8192 x 8192" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["file", "override"])
def test_deeply_nested_yaml_is_one_error_line(where, tmp_path, capfd):
    nested = "[" * 5000 + "]" * 5000
    config = tmp_path / "deep.yaml"
    config.write_text(f"name: {nested}\n" if where == "file" else "name: x\n")
    extra = [f"name={nested}"] if where == "override" else []
    assert main(["--quiet", "train", str(config), *extra]) == 2
    assert "nested too deeply" in one_error_line(capfd)


def test_yaml_alias_bomb_is_refused_at_once(tmp_path, capfd):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 7):  # 10**7 strings once expanded, 7 short lines as written
        aliases = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    config = tmp_path / "bomb.yaml"
    config.write_text("\n".join([*lines, "name: *a6"]) + "\n")
    started = time.perf_counter()
    assert main(["--quiet", "train", str(config)]) == 2
    line = one_error_line(capfd)
    assert time.perf_counter() - started < 5 and len(line) < 300
    assert "anchors" in line


def test_merge_key_bomb_is_refused(tmp_path, capfd):
    lines = ["m0: &m0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    for level in range(1, 8):
        lines.append(f"m{level}: &m{level} {{<<: [{', '.join([f'*m{level - 1}'] * 10)}]}}")
    config = tmp_path / "merge.yaml"
    config.write_text("\n".join(lines) + "\n")
    with pytest.raises(OmudaError, match="anchors"):
        load_config(config)


@pytest.mark.parametrize(
    "override",
    ["train.iters=" + "x" * 100_000, "x" * 100_000 + "=1", "train.iters=" + "9" * 5000],
    ids=["long value", "long key", "5000-digit number"],
)
def test_error_messages_never_echo_long_input(override, capfd):
    assert main(["--quiet", "train", SOURCE_ONLY, override]) == 2
    assert len(one_error_line(capfd)) < 300


def test_config_file_over_a_megabyte_is_refused(tmp_path):
    config = tmp_path / "big.yaml"
    config.write_text("# " + "x" * (1 << 20) + "\nname: big\n")
    with pytest.raises(OmudaError, match="larger than 1 MiB"):
        load_config(config)


@pytest.mark.parametrize(
    ("override", "field", "allowed"),
    [
        ("train.lr=.nan", "train.lr", "(0, 1]"),
        ("train.lr=-1e-4", "train.lr", "(0, 1]"),
        ("train.lr=.inf", "train.lr", "(0, 1]"),
        ("train.lr=1e400", "train.lr", "(0, 1]"),
        ("data.workers=-1", "data.workers", "[0, 256]"),
        ("train.warmup_iters=-1", "train.warmup_iters", "[0, inf)"),
        ("train.threads=-1", "train.threads", "[0, 1024]"),
        ("data.crop_size=[100000,100000]", "data.crop_size", "[32, 8192]"),
        ("data.val.scale=[0,10]", "data.val.scale", "[16, 8192]"),
        ("model.decoder_channels=1000000", "model.decoder_channels", "[1, 4096]"),
        ("adaptation.pseudo_threshold=1.5", "adaptation.pseudo_threshold", "[0, 1]"),
        ("adaptation.fd_lambda=.nan", "adaptation.fd_lambda", "[0, inf)"),
    ],
)
def test_config_value_out_of_range_names_field_and_range(override, field, allowed):
    with pytest.raises(OmudaError) as caught:
        load_config(SOURCE_ONLY, [override])
    message = str(caught.value)
    assert message.startswith(f"{field} must lie in {allowed}, got "), message


def test_crop_larger_than_any_image_is_refused(capfd):
    # source images are resized into 128x72 and target ones into 128x64: no 200-pixel side
    argv = ["--quiet", "train", str(REPO / "configs/synthetic/daformer.yaml")]
    scales = ["data.source.scale=[128,72]", "data.target.scale=[128,64]"]
    assert main([*argv, *scales, "data.crop_size=[200,64]"]) == 2
    line = one_error_line(capfd)
    assert "data.crop_size" in line and "data.source.scale" in line


def test_every_ranged_field_exists():
    from omuda.config import Config
    from omuda.config_ranges import RANGES

    for dotted in RANGES:
        node = Config()
        for part in dotted.split("."):
            assert hasattr(node, part), dotted
            node = getattr(node, part)


# 8. Labels that do not match their images; 9. checkpoints with wrong field types.


def _shrink_labels(labels: list[Path]) -> None:
    for label in labels:
        io.write_label(label, io.read_label(label)[::2, ::2].copy())


def test_label_resized_by_hand_stops_train_and_evaluate(
    prepared_benchmark, tiny_run_args, trained_work_dir, tmp_path, capfd
):
    root = copy_benchmark(prepared_benchmark, tmp_path)
    _shrink_labels(sorted((root / "gta/labels").glob("*_labelTrainIds.png")))
    argv = ["--quiet", "train", SOURCE_ONLY, "--work-dir", str(tmp_path / "w"), *tiny_run_args]
    assert main([*argv, f"data.root={root}", "train.iters=1"]) == 2
    line = one_error_line(capfd)
    assert "_labelTrainIds.png is " in line and "images/" in line and "same size" in line

    _shrink_labels(sorted((root / "cityscapes/gtFine/val").glob("*/*_labelTrainIds.png")))
    argv = ["--quiet", "evaluate", "--checkpoint", str(trained_work_dir)]
    assert main([*argv, "--out", str(tmp_path / "e.json"), f"data.root={root}"]) == 2
    assert "same size" in one_error_line(capfd)


@pytest.mark.parametrize(
    ("key", "value"),
    [("iteration", "abc"), ("iteration", -5), ("config", "x"), ("model", [1, 2])],
    ids=["iteration str", "iteration negative", "config str", "model list"],
)
@pytest.mark.parametrize("command", ["resume", "evaluate", "predict"])
def test_checkpoint_with_wrong_field_types_is_one_line(
    command, key, value, trained_work_dir, tiny_run_args, tmp_path, capfd
):
    work = Path(shutil.copytree(trained_work_dir, tmp_path / "run"))
    latest = work / "checkpoints/latest.pt"
    checkpoint = torch.load(latest, weights_only=True)
    checkpoint[key] = value
    latest.unlink()
    torch.save(checkpoint, latest)
    if command == "resume":
        argv = ["train", SOURCE_ONLY, "--work-dir", str(work), "--resume", *tiny_run_args]
        argv.append("train.iters=3")
    elif command == "evaluate":
        argv = ["evaluate", "--checkpoint", str(work), "--out", str(tmp_path / "e.json")]
    else:
        frame = next((REPO / "tests").glob("*.py"))  # not an image: must not get that far
        argv = ["predict", "--checkpoint", str(work), "--out", str(tmp_path / "p"), str(frame)]
    assert main(["--quiet", *argv]) == 2
    line = one_error_line(capfd)
    assert str(latest) in line and repr(key) in line


# 10. The contract: nothing before the error line, the right reason, no empty datasets.


def test_corrupt_png_prints_no_libpng_line(tmp_path, capfd):
    broken = tmp_path / "broken.png"
    broken.write_bytes(png_header(30, 20, data=b"\x00" * 5))
    with pytest.raises(OmudaError, match="broken.png"):
        io.read_image(broken)
    assert capfd.readouterr().err == ""


def test_permission_denied_is_reported_as_such(tmp_path, monkeypatch):
    locked = tmp_path / "locked.png"
    io.write_image(locked, np.zeros((4, 4, 3), dtype=np.uint8))
    real_open = builtins.open

    def open_as_another_user(file, *args, **kwargs):  # root reads everything: simulate it
        if Path(str(file)) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_as_another_user)
    for reader in READERS:
        with pytest.raises(OmudaError, match=r"cannot read .*locked\.png: permission denied"):
            reader(locked)


def test_checkpoint_with_code_is_refused_without_suggesting_unsafe_loading(tmp_path, capfd):
    import argparse

    evil = tmp_path / "evil.pt"
    torch.save({"model": argparse.Namespace(x=1)}, evil)
    assert main(["--quiet", "evaluate", "--checkpoint", str(evil)]) == 2
    line = one_error_line(capfd)
    assert "weights_only" not in line and "can still be loaded" not in line
    assert "refused" in line and "\x1b" not in line


def test_empty_dataset_folder_is_an_error(tmp_path, capfd):
    for folder in ("images", "labels"):
        (tmp_path / "gta" / folder).mkdir(parents=True)
    assert main(["--quiet", "prepare", "gta", str(tmp_path / "gta")]) == 2
    assert "no samples" in one_error_line(capfd)
    assert not (tmp_path / "gta/sample_class_stats.json").exists()


def test_usage_errors_are_one_line_too(capfd):
    assert main(["--quiet", "train"]) == 2
    assert "config" in one_error_line(capfd)
    assert main(["--quiet", "prepare", "kitti", "x"]) == 2
    assert "kitti" in one_error_line(capfd)
