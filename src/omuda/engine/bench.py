"""`omuda bench`: time the full training step on random in-memory data.

No data loading is involved (it is measured separately): the step runs on fixed random
batches of the configured crop size, after warm-up iterations, with the device
synchronised around every timed region. It runs as at the middle of the schedule
(iteration train.iters // 2), where every mechanism is on (FST's look-ahead, CAMix after
its warm-up). With 0 timed iterations only the FLOP count is reported.
"""

from __future__ import annotations

import math
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field

import torch

from omuda.adaptation.camix import accumulate_spatial_counts, spatial_prior
from omuda.config import Config
from omuda.data.transforms import normalize
from omuda.engine import builders
from omuda.engine.distributed import DistInfo, init_distributed
from omuda.engine.gradient_ledger import GradientLedger, median_shares, shared_parameters
from omuda.engine.optim import lr_factor, set_learning_rate
from omuda.engine.precision import amp_dtype, autocast_factory
from omuda.engine.step import SectionTimer, StepState, train_step
from omuda.engine.threads import ThreadBalancer, balanced_threads


@dataclass
class BenchReport:
    """Timings of `run_benchmark`: per iteration, per step section, and peak memory."""

    device: str
    config: str
    iteration_seconds: list[float]
    section_seconds: dict[str, float]  # median per iteration
    peak_memory_gb: float
    peak_memory_kind: str  # "cuda allocated" or "process RSS"
    flops_per_iteration: float | None = None
    notes: list[str] = field(default_factory=list)
    # {loss term: (median gradient norm, median share)} on the shared backbone
    gradient_shares: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def median(self) -> float:
        """Median seconds per iteration (NaN when none was timed)."""
        return statistics.median(self.iteration_seconds) if self.iteration_seconds else math.nan

    def table(self) -> str:
        """Human-readable report."""
        times = self.iteration_seconds
        lines = [f"device: {self.device}   config: {self.config}"]
        if not times:
            flops = self.flops_per_iteration or 0.0
            lines.append(f"FLOP per iteration: {flops / 1e12:.2f} T (no iteration timed)")
            return "\n".join(lines)
        lines += [
            f"iterations timed: {len(times)}   median {self.median:.3f} s"
            f"   min {min(times):.3f} s   max {max(times):.3f} s"
            f"   ({1.0 / self.median:.2f} it/s)",
            f"peak memory: {self.peak_memory_gb:.2f} GB ({self.peak_memory_kind})",
        ]
        if self.flops_per_iteration:
            achieved = self.flops_per_iteration / self.median / 1e12
            lines.append(
                f"FLOP per iteration: {self.flops_per_iteration / 1e12:.2f} T"
                f"   achieved {achieved:.2f} TFLOP/s"
            )
        lines.append("breakdown (median seconds per iteration):")
        for name, seconds in self.section_seconds.items():
            lines.append(f"  {name:<18} {seconds:8.4f}")
        if self.gradient_shares:
            lines.append("gradient of each loss term on the shared backbone (median):")
            for term, (norm, share) in self.gradient_shares.items():
                lines.append(f"  {term:<18} norm {norm:10.4g}   share {100 * share:6.2f} %")
        lines.extend(self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready report."""
        return {
            "device": self.device,
            "config": self.config,
            "median_seconds": self.median if self.iteration_seconds else None,
            "iterations_per_second": 1.0 / self.median if self.iteration_seconds else None,
            "iteration_seconds": self.iteration_seconds,
            "section_seconds": self.section_seconds,
            "peak_memory_gb": self.peak_memory_gb,
            "peak_memory_kind": self.peak_memory_kind,
            "flops_per_iteration": self.flops_per_iteration,
            "gradient_shares": {
                term: {"norm": norm, "share": share}
                for term, (norm, share) in self.gradient_shares.items()
            },
        }


def random_batch(cfg: Config, device: torch.device, generator: torch.Generator) -> dict:
    """uint8 images (B,3,h,w) and labels (B,h,w) of random classes in 32-pixel blocks: each
    stride-32 cell that FD and FDM compare holds one class, thing classes among them."""
    height, width = cfg.data.crop_size
    batch = cfg.data.batch_size
    images = torch.randint(0, 256, (batch, 3, height, width), generator=generator)
    blocks = (batch, 1, max(1, height // 32), max(1, width // 32))
    cells = torch.randint(0, cfg.model.num_classes, blocks, generator=generator)
    labels = torch.nn.functional.interpolate(cells.float(), size=(height, width), mode="nearest")
    return {
        "image": images.to(torch.uint8).to(device),
        "label": labels[:, 0].long().to(device),
        # each crop is its whole image, not mirrored (CAMix places its prior with these)
        "window": torch.tensor([0.0, 0.0, 1.0, 1.0], device=device).repeat(batch, 1),
        "flipped": torch.zeros(batch, dtype=torch.bool, device=device),
    }


def iteration_flops(
    cfg: Config, student: torch.nn.Module, imagenet: torch.nn.Module | None, images: torch.Tensor
) -> float:
    """FLOP of one training iteration: forward passes counted, backward taken as 2x forward.

    images (B,3,H,W) uint8: one batch of crops at the training size.

    `FlopCounterMode` counts matmuls and convolutions of one forward; PyTorch's counter
    overstates the backward of grouped (depthwise) convolutions, hence the 2x rule.
    Student passes: source, mixed (with self-training) and masked (with masking), each
    forward + backward; plus one teacher forward and one ImageNet-backbone forward. FST's
    look-ahead repeats the student passes and the teacher forward for each of its K virtual
    steps (the ImageNet features of the unchanged source batch are computed once). CAMix
    adds no network pass: its significance comes from the teacher forward already counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    def forward_flops(module: torch.nn.Module) -> float:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            module(normalize(images))
        return float(counter.get_total_flops())

    adaptation = cfg.adaptation
    student_flops = forward_flops(student)
    passes = 1 + int(adaptation.self_training and adaptation.mix != "none")
    passes += int(adaptation.self_training and adaptation.masking != "none")
    total = 3.0 * student_flops * passes
    if adaptation.self_training:
        total += student_flops  # teacher forward, same architecture
        total *= 1 + adaptation.lookahead_steps  # FST: K virtual steps, then the real one
    if imagenet is not None:
        total += forward_flops(imagenet)
    return total


def _peak_rss_gb() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


def run_benchmark(
    cfg: Config, iters: int = 10, warmup: int = 3, count_flops: bool = False
) -> BenchReport:
    """Time `iters` training steps after `warmup` steps; see the module docstring.

    With `count_flops` the report adds `iteration_flops`. On a CPU the run takes its fair
    share of the CPUs among the omuda runs on the machine, as training does.
    """
    dist_info = init_distributed(cfg.train.device)
    device = dist_info.device
    with balanced_threads(cfg.train.threads, on_cpu=device.type == "cpu") as balancer:
        return _run_benchmark(cfg, iters, warmup, count_flops, dist_info, balancer)


def _run_benchmark(
    cfg: Config,
    iters: int,
    warmup: int,
    count_flops: bool,
    dist_info: DistInfo,
    balancer: ThreadBalancer | None,
) -> BenchReport:
    device = dist_info.device
    torch.manual_seed(cfg.train.seed)
    adaptation = cfg.adaptation
    models = builders.build_training_models(cfg, device)
    student, teacher, imagenet, optimizer = (
        models.student,
        models.teacher,
        models.imagenet,
        models.optimizer,
    )
    step_student = torch.compile(student) if cfg.train.compile else student
    state = StepState.initial(torch.Generator(device=device), cfg.model.num_classes, device)
    state.generator.manual_seed(cfg.train.seed)
    state.iteration = cfg.train.iters // 2  # every mechanism on, past every warm-up
    data_generator = torch.Generator().manual_seed(cfg.train.seed)
    batch_src = random_batch(cfg, device, data_generator)
    batch_tgt = random_batch(cfg, device, data_generator) if teacher is not None else None
    prior = None
    if adaptation.mix == "camix":  # a prior from the random source labels
        counts = torch.zeros(cfg.model.num_classes, *adaptation.camix_prior_size, device=device)
        prior = spatial_prior(accumulate_spatial_counts(counts, batch_src["label"]))
    autocast = autocast_factory(device, amp_dtype(cfg, device))
    student.train()

    iteration_seconds: list[float] = []
    sections: dict[str, list[float]] = {}
    gradient_records: list[dict[str, float]] = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for index in range(warmup + iters):
        if balancer is not None:
            balancer.refresh()
        set_learning_rate(optimizer, lr_factor(1000 + index, 40000, 1500, 1e-6, 1.0))
        timed = index >= warmup
        timer = SectionTimer(device, enabled=timed)
        ledger = GradientLedger(shared_parameters(student)) if timed else None
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        losses = train_step(
            batch_src,
            batch_tgt,
            step_student,
            teacher,
            imagenet,
            optimizer,
            state,
            adaptation,
            cfg.data.thing_classes,
            autocast,
            lambda: None,
            timer,
            gradient_ledger=ledger,
            spatial_prior=prior,
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if timed:
            # The gradient bookkeeping runs only on logged iterations in training: not counted.
            bookkeeping = timer.seconds.pop("gradient_ledger", 0.0)
            iteration_seconds.append(time.perf_counter() - start - bookkeeping)
            for name, seconds in timer.seconds.items():
                sections.setdefault(name, []).append(seconds)
            gradient_records.append(
                {key: float(value) for key, value in losses.items() if key.startswith("grad_")}
            )
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(device) / 1e9, "cuda allocated"
        device_name = torch.cuda.get_device_name(device)
    else:
        peak, kind = _peak_rss_gb(), "process RSS"
        device_name = f"cpu ({torch.get_num_threads()} threads)"
    flops = None
    if count_flops:
        flops = iteration_flops(cfg, student, imagenet, batch_src["image"])
    report = BenchReport(
        device=device_name,
        config=cfg.name,
        iteration_seconds=iteration_seconds,
        section_seconds={name: statistics.median(v) for name, v in sections.items()},
        peak_memory_gb=peak,
        peak_memory_kind=kind,
        flops_per_iteration=flops,
        gradient_shares=median_shares(gradient_records),
    )
    report.notes.append(
        "sections are timed with a device sync around each, so their sum exceeds the "
        "unsynchronised iteration time slightly"
    )
    return report
