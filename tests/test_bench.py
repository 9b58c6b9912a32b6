"""`omuda bench`: FLOP accounting of the look-ahead, FLOP-only runs, gradient shares."""

import pytest
import torch

from omuda.config import load_config
from omuda.engine.bench import iteration_flops, random_batch, run_benchmark
from omuda.engine.builders import build_training_models
from test_step import REPO, TINY_STEP


def _cfg(config: str, *overrides: str):
    return load_config(REPO / "configs" / config, [*TINY_STEP, "train.threads=1", *overrides])


def test_fst_repeats_student_and_teacher_passes_but_not_the_imagenet_forward():
    flops = {}
    for steps in (0, 3):
        cfg = _cfg("gta2cs/daformer_fst.yaml", f"adaptation.lookahead_steps={steps}")
        torch.manual_seed(0)
        models = build_training_models(cfg, torch.device("cpu"))
        images = random_batch(cfg, torch.device("cpu"), torch.Generator().manual_seed(0))["image"]
        flops[steps] = iteration_flops(cfg, models.student, models.imagenet, images)
        imagenet = iteration_flops(cfg, models.student, None, images)
        flops[f"imagenet{steps}"] = flops[steps] - imagenet
    # DAFormer: 3 x student (source, mixed: forward + 2x backward) + teacher = 7 forwards;
    # FST with K = 3: (K + 1) x 7 student-sized forwards, one ImageNet forward either way.
    assert flops["imagenet0"] == flops["imagenet3"] > 0
    assert flops[3] - flops["imagenet3"] == 4 * (flops[0] - flops["imagenet0"])


def test_flop_count_alone_and_gradient_shares_of_a_camix_step():
    camix = _cfg("gta2cs/daformer_camix.yaml")
    only_flops = run_benchmark(camix, iters=0, warmup=0, count_flops=True)
    assert only_flops.iteration_seconds == [] and only_flops.flops_per_iteration > 0
    assert "no iteration timed" in only_flops.table()
    assert only_flops.to_dict()["median_seconds"] is None

    # the middle of a 40k schedule: CAMix (warm-up 17600) is on
    report = run_benchmark(camix, iters=1, warmup=0)
    assert list(report.gradient_shares) == ["source", "fd", "target"]
    assert sum(share for _, share in report.gradient_shares.values()) == pytest.approx(1.0)
    assert "gradient_ledger" not in report.section_seconds  # its time is left out
    assert "gradient of each loss term on the shared backbone" in report.table()
