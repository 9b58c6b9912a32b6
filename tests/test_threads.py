"""Thread sharing between omuda runs on one machine."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

from conftest import REPO_ROOT
from omuda.engine import threads
from omuda.engine.threads import RunRegistry, ThreadBalancer, decide_threads


def test_fair_share_of_the_cpus():
    assert decide_threads(2, 1, 0, {}).threads == 2
    assert decide_threads(2, 2, 0, {}).threads == 1
    assert decide_threads(2, 3, 0, {}).threads == 1  # never 0
    assert decide_threads(16, 3, 0, {}).threads == 5
    alone = decide_threads(2, 1, 0, {})
    assert "2 CPUs" in alone.reason and "alone" in alone.reason


def test_train_threads_caps_and_environment_wins():
    capped = decide_threads(8, 1, 2, {})
    assert capped.threads == 2 and "train.threads=2" in capped.reason
    assert decide_threads(8, 4, 4, {}).threads == 2  # the share is lower than the cap
    forced = decide_threads(2, 2, 0, {"OMP_NUM_THREADS": "3"})
    assert forced.threads == 3 and "OMP_NUM_THREADS=3" in forced.reason
    assert decide_threads(2, 2, 0, {"OMP_NUM_THREADS": "x"}).threads == 1


def _hold_then_exit(folder: str, ready: multiprocessing.Event, done: multiprocessing.Event):
    registry = RunRegistry(Path(folder))
    ready.set()
    done.wait(10)
    assert registry.path.exists()
    os._exit(0)  # no clean-up: like a killed run, the lock goes with the process


def test_registry_counts_live_runs_and_forgets_dead_ones(tmp_path):
    mine = RunRegistry(tmp_path)
    assert mine.live_runs() == 1
    context = multiprocessing.get_context("fork")
    ready, done = context.Event(), context.Event()
    other = context.Process(target=_hold_then_exit, args=(str(tmp_path), ready, done))
    other.start()
    assert ready.wait(10)
    assert mine.live_runs() == 2
    done.set()
    other.join(10)
    assert mine.live_runs() == 1  # its file stayed behind, its lock did not
    assert len(list(tmp_path.glob("*.run"))) == 1
    mine.close()
    assert not list(tmp_path.glob("*.run"))


def test_balancer_follows_other_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    now = [0.0]
    applied = []
    mine = RunRegistry(tmp_path)
    balancer = ThreadBalancer(0, mine, {}, applied.append, lambda: now[0])
    assert applied == [2]
    other = RunRegistry(tmp_path)
    assert balancer.refresh() is None  # recounts only every few seconds
    now[0] += threads.REFRESH_SECONDS
    message = balancer.refresh()
    assert applied == [2, 1] and message.startswith("threads 2 -> 1")
    other.close()
    now[0] += threads.REFRESH_SECONDS
    assert balancer.refresh() is None  # more threads only after two counts allow them
    now[0] += threads.REFRESH_SECONDS
    assert balancer.refresh().startswith("threads 1 -> 2")
    now[0] += threads.REFRESH_SECONDS
    assert balancer.refresh() is None and applied == [2, 1, 2]
    blip = RunRegistry(tmp_path)  # a short run comes and goes between two counts
    now[0] += threads.REFRESH_SECONDS
    assert balancer.refresh().startswith("threads 2 -> 1")
    blip.close()
    now[0] += threads.REFRESH_SECONDS
    assert balancer.refresh() is None
    third = RunRegistry(tmp_path)
    now[0] += threads.REFRESH_SECONDS
    assert balancer.refresh() is None and applied == [2, 1, 2, 1]  # the streak was broken
    third.close()
    balancer.close()


def test_bench_concurrent_reports_each_copy(tmp_path):
    from omuda.cli import main

    out = tmp_path / "shared.json"
    config = str(REPO_ROOT / "configs" / "synthetic" / "source_only.yaml")
    tiny = ["data.crop_size=[32,32]", "model.decoder_channels=8", "model.pretrained=null"]
    code = main(
        ["--quiet", "bench", config, "--iters", "1", "--warmup", "0", "--concurrent", "2",
         "--out", str(out), *tiny]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert len(report["median_seconds"]) == 2 and all(s > 0 for s in report["median_seconds"])
    assert all(device.startswith("cpu") for device in report["devices"])


def test_bench_concurrent_failure_is_one_line(capsys):
    from omuda.cli import main

    config = str(REPO_ROOT / "configs" / "synthetic" / "source_only.yaml")
    code = main(["bench", config, "--concurrent", "2", "model.backbone=resnet"])
    assert code == 2
    assert "model.backbone must be one of" in capsys.readouterr().err


def test_bench_concurrent_one_prints_the_per_copy_table(capsys, monkeypatch):
    import omuda.engine.concurrent_bench as concurrent_bench
    from omuda.cli import main

    started = []

    def one_copy(config, copies, arguments):
        started.append((copies, arguments[:4]))
        return concurrent_bench.ConcurrentReport(config, [0.25] * copies, ["cpu"] * copies)

    monkeypatch.setattr(concurrent_bench, "run_concurrent", one_copy)
    config = str(REPO_ROOT / "configs" / "synthetic" / "source_only.yaml")
    assert main(["bench", config, "--iters", "2", "--warmup", "1", "--concurrent", "1"]) == 0
    assert started == [(1, ["--iters", "2", "--warmup", "1"])]
    assert capsys.readouterr().out.splitlines() == [
        f"1 copy of {config} alone",
        "  copy 1: median 0.250 s per iteration   cpu",
        "  mean of the medians: 0.250 s",
    ]


def test_bench_concurrent_zero_is_one_line(capsys):
    from omuda.cli import main

    config = str(REPO_ROOT / "configs" / "synthetic" / "source_only.yaml")
    assert main(["bench", config, "--concurrent", "0"]) == 2
    assert "--concurrent must be at least 1, got 0" in capsys.readouterr().err
