"""Runs that go wrong: NaN losses, full disks, two runs in one work dir, outputs over
inputs, killed parents. Nothing already written may be lost (docs/RELIABILITY.md)."""

from __future__ import annotations

import builtins
import errno
import io as io_module
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import omuda.engine.train as train_module
from omuda.cli import main
from omuda.data import io
from omuda.engine.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
SOURCE_ONLY = str(REPO / "configs/synthetic/source_only.yaml")


def one_error_line(capfd: pytest.CaptureFixture) -> str:
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omuda: error: "), err[-3000:]
    return lines[0]


def train_argv(work: Path, tiny_run_args: list[str], *extra: str) -> list[str]:
    return ["--quiet", "train", SOURCE_ONLY, "--work-dir", str(work), *tiny_run_args, *extra]


def poison_step(monkeypatch: pytest.MonkeyPatch, at: int, weights: bool = False) -> None:
    """After iteration `at`, report a NaN loss (or, with weights=True, make a weight NaN
    while every loss stays finite, as an infinite learning rate does)."""
    real_step = train_module.train_step

    def step(*args, **kwargs):
        losses = real_step(*args, **kwargs)
        student, state = args[2], args[6]
        if state.iteration == at:
            if weights:
                with torch.no_grad():
                    next(student.parameters()).fill_(float("nan"))
            else:
                losses = {**losses, "source": torch.tensor(float("nan"))}
        return losses

    monkeypatch.setattr(train_module, "train_step", step)


def saved_iteration(work: Path) -> int:
    checkpoint = torch.load(work / "checkpoints/latest.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values())
    return checkpoint["iteration"]


# 4. NaN never reaches a checkpoint.


def test_nan_loss_between_log_lines_stops_the_run_and_keeps_the_last_good_checkpoint(
    tiny_run_args, tmp_path, capfd, monkeypatch
):
    poison_step(monkeypatch, at=6)
    work = tmp_path / "w"
    extra = ("train.iters=8", "train.log_interval=25", "train.checkpoint_interval=4")
    assert main(train_argv(work, tiny_run_args, *extra)) == 2
    line = one_error_line(capfd)
    assert "not finite" in line and "iteration 5 and 8" in line
    assert saved_iteration(work) == 4 and not (work / "checkpoints/iter_8.pt").exists()


def test_nan_weights_with_finite_losses_are_never_saved(
    tiny_run_args, tmp_path, capfd, monkeypatch
):
    poison_step(monkeypatch, at=8, weights=True)  # the last iteration: no later loss to see it
    work = tmp_path / "w"
    extra = ("train.iters=8", "train.log_interval=1", "train.checkpoint_interval=4")
    assert main(train_argv(work, tiny_run_args, *extra)) == 2
    assert "weights are not finite" in one_error_line(capfd)
    assert saved_iteration(work) == 4


class SyncCounter(torch.Tensor):
    """A loss tensor that records every read of its value on the host."""

    reads: list[int] = []
    iteration = 0
    _READS = {"item", "__float__", "__bool__", "__int__", "tolist", "numpy", "cpu"}

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in cls._READS:
            cls.reads.append(cls.iteration)
        return super().__torch_function__(func, types, args, kwargs or {})


def test_losses_are_read_on_the_host_only_at_log_and_checkpoint_iterations(
    tiny_run_args, tmp_path, monkeypatch
):
    real_step = train_module.train_step

    def step(*args, **kwargs):
        losses = real_step(*args, **kwargs)
        SyncCounter.iteration = args[6].iteration
        return {key: value.as_subclass(SyncCounter) for key, value in losses.items()}

    monkeypatch.setattr(train_module, "train_step", step)
    SyncCounter.reads = []
    extra = ("train.iters=9", "train.log_interval=4", "train.checkpoint_interval=3")
    assert main(train_argv(tmp_path / "w", tiny_run_args, *extra)) == 0
    assert set(SyncCounter.reads) <= {1, 3, 4, 6, 8, 9}  # log: 1, 4, 8; checkpoint: 3, 6, 9


# 5. A full disk.


def full_disk_for(monkeypatch: pytest.MonkeyPatch, name_part: str) -> None:
    """Writes to files whose name holds `name_part` fail with ENOSPC after a few bytes."""
    real_open = builtins.open

    class FullFile:
        def __init__(self, handle) -> None:
            self._handle = handle

        def write(self, data) -> int:
            self._handle.write(bytes(data)[:3] if not isinstance(data, str) else data[:3])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self._handle.close()

    def open_on_full_disk(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        writing = any(flag in mode for flag in "wxa")
        return FullFile(handle) if writing and name_part in Path(str(file)).name else handle

    monkeypatch.setattr(builtins, "open", open_on_full_disk)
    monkeypatch.setattr(io_module, "open", open_on_full_disk)  # pathlib writes through it


def test_disk_full_during_a_checkpoint_keeps_the_previous_one_and_resume_works(
    tiny_run_args, tmp_path, capfd, monkeypatch
):
    work = tmp_path / "w"
    real_save = torch.save

    def save_until_the_disk_fills(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("iteration") == 4:
            if hasattr(f, "write"):
                f.write(b"PK\x03\x04 half a zip")
            else:
                Path(f).write_bytes(b"PK\x03\x04 half a zip")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    extra = ("train.iters=4", "train.checkpoint_interval=2")
    assert main(train_argv(work, tiny_run_args, *extra)) == 2
    assert "No space left on device" in one_error_line(capfd)
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == ["iter_2.pt", "latest.pt"]
    assert saved_iteration(work) == 2

    monkeypatch.undo()
    assert main(train_argv(work, tiny_run_args, *extra, "--resume")) == 0
    assert "Traceback" not in capfd.readouterr().err
    assert saved_iteration(work) == 4


def test_disk_full_while_logging_metrics_is_one_line(tiny_run_args, tmp_path, capfd, monkeypatch):
    full_disk_for(monkeypatch, "tfevents")
    work = tmp_path / "w"
    assert main(train_argv(work, tiny_run_args, "train.iters=2", "train.log_interval=1")) == 2
    assert "No space left on device" in one_error_line(capfd)


def test_disk_full_while_writing_a_label_is_a_listed_problem(prepared_benchmark, tmp_path, capfd):
    root = Path(shutil.copytree(prepared_benchmark / "gta", tmp_path / "gta"))
    for label in root.glob("labels/*_labelTrainIds.png"):
        label.unlink()
    with pytest.MonkeyPatch.context() as patch:
        full_disk_for(patch, "00003_labelTrainIds")
        assert main(["--quiet", "prepare", "gta", str(root), "--workers", "0"]) == 2
    err = capfd.readouterr().err
    assert "00003_labelTrainIds.png: cannot be written (No space left on device)" in err
    assert err.strip().splitlines()[-1].startswith("omuda: error: prepare found 1 problem")
    assert sorted(p.name for p in root.glob("labels/.*")) == []  # no temporary file left
    assert len(list(root.glob("labels/*_labelTrainIds.png"))) == 7


def test_disk_full_while_writing_the_evaluation_keeps_the_old_report(
    trained_work_dir, tmp_path, capfd, monkeypatch
):
    report = tmp_path / "report.json"
    report.write_text('{"miou": 0.5, "iou": []}')
    full_disk_for(monkeypatch, "report")
    argv = ["--quiet", "evaluate", "--checkpoint", str(trained_work_dir), "--out", str(report)]
    assert main(argv) == 2
    assert "No space left on device" in one_error_line(capfd)
    assert report.read_text() == '{"miou": 0.5, "iou": []}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_checkpoints_and_labels_are_flushed_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    save_checkpoint({"iteration": 1}, tmp_path / "c.pt")
    assert events[:2] == ["fsync", "replace"]
    events.clear()
    io.write_label(tmp_path / "l.png", np.zeros((2, 2), dtype=np.uint8))
    assert events[:2] == ["fsync", "replace"]


# 6. One run per work dir.


def hold_work_dir(work: Path) -> subprocess.Popen:
    """Another process that holds `work` as a training run does, until killed."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from omuda.engine.workdir_lock import hold_work_dir\n"
        "with hold_work_dir(Path(sys.argv[1])):\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(work)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_second_train_into_a_held_work_dir_exits_at_once_naming_the_holder(
    tiny_run_args, tmp_path, capfd
):
    work = tmp_path / "w"
    holder = hold_work_dir(work)
    try:
        started = time.perf_counter()
        assert main(train_argv(work, tiny_run_args, "train.iters=1")) == 2
        line = one_error_line(capfd)
        assert time.perf_counter() - started < 5
        assert f"pid {holder.pid}" in line and "in use" in line
    finally:
        holder.kill()
        holder.wait()
    # the killed holder's lock file is still there, but it binds nobody
    assert (work / "train.lock").is_file()
    assert main(train_argv(work, tiny_run_args, "train.iters=1")) == 0


# 7. Outputs never overwrite inputs.


def test_predict_into_its_input_folder_never_overwrites_or_skips_a_user_file(
    trained_work_dir, tmp_path, capfd
):
    photos = tmp_path / "photos"
    io.write_image(photos / "street.png", np.full((24, 40, 3), 80, dtype=np.uint8))
    io.write_image(photos / "street_overlay.png", np.full((24, 40, 3), 200, dtype=np.uint8))
    user_file = (photos / "street_overlay.png").read_bytes()
    argv = ["--quiet", "predict", "--checkpoint", str(trained_work_dir)]
    assert main([*argv, "--out", str(photos), str(photos)]) == 2
    line = one_error_line(capfd)
    assert "street_overlay.png" in line and "input" in line
    assert (photos / "street_overlay.png").read_bytes() == user_file
    assert sorted(p.name for p in photos.iterdir()) == ["street.png", "street_overlay.png"]

    # an output folder inside the input folder: every user image is predicted, twice over
    for _ in range(2):
        assert main([*argv, "--out", str(photos / "pred"), str(photos)]) == 0
    # 2 images x 3 files and legend.png, no pred of preds
    assert len(list((photos / "pred").iterdir())) == 7
    assert (photos / "street_overlay.png").read_bytes() == user_file


@pytest.mark.parametrize(
    "target",
    ["checkpoints/latest.pt", "checkpoints/iter_2.pt", "config.yaml", "metrics.jsonl", "input"],
)
def test_evaluate_out_never_replaces_a_checkpoint_config_or_input(
    target, prepared_benchmark, trained_work_dir, tmp_path, capfd
):
    work = Path(shutil.copytree(trained_work_dir, tmp_path / "run", symlinks=True))
    data = Path(shutil.copytree(prepared_benchmark / "cityscapes", tmp_path / "cityscapes"))
    out = data / "sample_class_stats.json" if target == "input" else work / target
    before = {path: path.read_bytes() for path in [*work.rglob("*"), out] if path.is_file()}
    argv = ["--quiet", "evaluate", "--checkpoint", str(work), "--out", str(out)]
    assert main([*argv, f"data.root={tmp_path}"]) == 2
    assert str(out) in one_error_line(capfd)
    assert {path: path.read_bytes() for path in before} == before


# 11. No orphans.


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _kill_parent_and_wait_for_workers(script: str, args: list[str], pid_dir: Path) -> None:
    # A script file, not `-c`: spawned pool workers import the main module again.
    script_path = pid_dir.parent / "parent.py"
    script_path.write_text(script)
    parent = subprocess.Popen([sys.executable, str(script_path), str(pid_dir), *args])
    try:
        deadline = time.monotonic() + 60
        while len(list(pid_dir.glob("*.pid"))) < 2:
            assert time.monotonic() < deadline and parent.poll() is None, "workers never started"
            time.sleep(0.05)
        workers = [int(path.stem) for path in pid_dir.glob("*.pid")]
        assert all(_alive(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers), "workers outlived their parent"
    finally:
        parent.kill()
        parent.wait()


# The busy worker's job: note its pid, then work for a minute.
_BUSY = (
    "def busy(*args):\n"
    "    import os, sys, time\n"
    "    open(os.path.join(sys.argv[1], f'{os.getpid()}.pid'), 'w').close()\n"
    "    time.sleep(60)\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_prepare_workers_die_with_a_killed_parent(prepared_benchmark, tmp_path):
    script = _BUSY + (
        "import sys\nfrom pathlib import Path\nimport omuda.data.prepare as prepare\n"
        "if __name__ == '__main__':\n"
        "    prepare._process_sample = busy\n"
        "    prepare.prepare_dataset('gta', Path(sys.argv[2]), workers=2, progress=False)\n"
    )
    (tmp_path / "pids").mkdir()
    args = [str(prepared_benchmark / "gta")]
    _kill_parent_and_wait_for_workers(script, args, tmp_path / "pids")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_training_data_workers_die_with_a_killed_parent(tmp_path):
    script = _BUSY + (
        "import torch\nfrom omuda.engine.batches import infinite_loader\n"
        "class Busy(torch.utils.data.Dataset):\n"
        "    def __len__(self): return 4\n"
        "    def __getitem__(self, index): return busy()\n"
        "batches = infinite_loader(Busy(), range(4), 1, 2, torch.device('cpu'))\n"
        "next(batches)\n"
    )
    (tmp_path / "pids").mkdir()
    _kill_parent_and_wait_for_workers(script, [], tmp_path / "pids")


def test_metrics_reach_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    from omuda.engine.logging import MetricLogger, read_metrics

    logger = MetricLogger(tmp_path)
    logger.log(5, "train", {"source": 1.5, "lr": 0.25})
    logger.log(10, "val", {"mIoU": float("nan")})
    logger.close()
    assert read_metrics(tmp_path / "metrics.jsonl")[1] == {"iter": 10, "group": "val", "mIoU": None}
    (events,) = (tmp_path / "tensorboard").iterdir()
    scalars = [  # as TensorBoard reads them: scalars-plugin tensors
        (event.step, value.tag, value.tensor.float_val[0])
        for event in EventFileLoader(str(events)).Load()
        for value in event.summary.value
    ]
    assert scalars[:2] == [(5, "train/source", 1.5), (5, "train/lr", 0.25)]
    assert scalars[2][:2] == (10, "val/mIoU") and np.isnan(scalars[2][2])
