"""Source and target sampling: infinite, deterministic and resumable streams of requests.

Strategies for the source (SPEC 4.8 and 5, paper Table V):
- "uniform": every image once per epoch, in a random order.
- "rcs": DAFormer's rare class sampling, P(c) = softmax((1 - f_c) / T).
- "cam": OMUDA's class-aware sampling (eqs. 3-5): a group (foreground / background), then a
  class from that group's softmax((1 - f_k) / T_group).
- "fixed_ratio": the foreground group with a fixed probability, then a class uniformly.
Class strategies then take an image holding the class and ask the dataset for a crop that
shows it (`SampleRequest.required_class`).

Draw number k is a pure function of (seed, k): draw k uses `np.random.default_rng([seed, k])`
and epoch e's permutation `np.random.default_rng([seed, e])`. Rank r of w draws
k = r, r + w, r + 2w, ..., so ranks never repeat each other within an epoch, and a sampler
built with `start = draws already consumed by this rank` continues the stream exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from omuda.data.datasets import SampleRequest
from omuda.errors import OmudaError

STRATEGIES: tuple[str, ...] = ("uniform", "fixed_ratio", "rcs", "cam")

# Per-draw crop seeds are drawn below this bound (any non-negative int seeds numpy).
_SEED_BOUND = 2**63 - 1


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise OmudaError(
            f"unknown sampling strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def _present_group(classes: Sequence[int], present: np.ndarray, group_name: str) -> np.ndarray:
    """The classes of a group that the source holds, as an int array."""
    class_ids = np.asarray(sorted(set(int(c) for c in classes)), dtype=np.int64)
    if class_ids.size and (class_ids.min() < 0 or class_ids.max() >= present.size):
        raise OmudaError(
            f"{group_name} classes must be train ids 0..{present.size - 1}, got {tuple(classes)}"
        )
    return class_ids[present[class_ids]]


def _group_softmax(fraction: np.ndarray, class_ids: np.ndarray, temperature: float) -> np.ndarray:
    """softmax over class_ids of (1 - f_k) / temperature (empty group -> empty array)."""
    if class_ids.size == 0:
        return np.zeros(0)
    return _softmax((1.0 - fraction[class_ids]) / temperature)


def class_probabilities(
    strategy: str,
    class_pixel_fraction: np.ndarray,
    foreground_classes: Sequence[int],
    background_classes: Sequence[int],
    rcs_temperature: float = 0.01,
    cam_temperature_foreground: float = 0.7,
    cam_temperature_background: float = 1.0,
    foreground_probability: float | None = None,
) -> np.ndarray | None:
    """Probability of drawing each class, (C,) float64 summing to 1; None for "uniform".

    class_pixel_fraction: (C,) f_c = pixels of class c / labelled pixels of the source set.
    Classes the source does not hold (f_c = 0) get probability 0.
    - "rcs": softmax((1 - f_c) / rcs_temperature) over the present classes.
    - "cam": P(foreground) = foreground_probability, or |K_f present| / |K present| when
      None; within a group softmax((1 - f_k) / T_group) (paper eqs. 4-5).
    - "fixed_ratio": P(foreground) = foreground_probability (0.5 when None); classes of a
      group equally likely.
    A group with no present class passes its probability to the other group. Classes in
    neither group are never drawn by "cam" and "fixed_ratio".
    """
    _check_strategy(strategy)
    if strategy == "uniform":
        return None
    fraction = np.asarray(class_pixel_fraction, dtype=np.float64)
    if fraction.ndim != 1 or np.any(fraction < 0) or not np.all(np.isfinite(fraction)):
        raise OmudaError("class pixel fractions must be a 1-d array of non-negative numbers")
    present = fraction > 0
    if not present.any():
        raise OmudaError("the source dataset holds no labelled pixels; check its labels")
    for name, value in (
        ("rcs_temperature", rcs_temperature),
        ("cam_temperature_foreground", cam_temperature_foreground),
        ("cam_temperature_background", cam_temperature_background),
    ):
        if not value > 0:
            raise OmudaError(f"{name} must be positive, got {value}")
    if foreground_probability is not None and not 0.0 <= foreground_probability <= 1.0:
        raise OmudaError(f"foreground_probability must lie in [0, 1], got {foreground_probability}")

    probabilities = np.zeros(fraction.size)
    if strategy == "rcs":
        present_ids = np.flatnonzero(present)
        probabilities[present_ids] = _group_softmax(fraction, present_ids, rcs_temperature)
        return probabilities

    if set(int(c) for c in foreground_classes) & set(int(c) for c in background_classes):
        raise OmudaError("foreground and background classes must not overlap")
    foreground = _present_group(foreground_classes, present, "foreground")
    background = _present_group(background_classes, present, "background")
    if foreground.size + background.size == 0:
        raise OmudaError("no foreground or background class occurs in the source dataset")

    if strategy == "cam":
        p_foreground = (
            foreground.size / (foreground.size + background.size)
            if foreground_probability is None
            else foreground_probability
        )
        within_foreground = _group_softmax(fraction, foreground, cam_temperature_foreground)
        within_background = _group_softmax(fraction, background, cam_temperature_background)
    else:  # fixed_ratio
        p_foreground = 0.5 if foreground_probability is None else foreground_probability
        within_foreground = np.full(foreground.size, 1.0 / max(foreground.size, 1))
        within_background = np.full(background.size, 1.0 / max(background.size, 1))

    # An empty group cannot be drawn: the other group takes all the probability.
    if foreground.size == 0:
        p_foreground = 0.0
    elif background.size == 0:
        p_foreground = 1.0
    probabilities[foreground] = p_foreground * within_foreground
    probabilities[background] = (1.0 - p_foreground) * within_background
    return probabilities


def format_class_probabilities(probabilities: np.ndarray, class_names: Sequence[str]) -> str:
    """A readable table of class probabilities: id, name, probability and a bar."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    name_width = max(len(name) for name in class_names)
    lines = [f"{'id':>3}  {'class':<{name_width}}  probability"]
    largest = max(float(probabilities.max()), 1e-12)
    for class_id, probability in enumerate(probabilities):
        bar = "#" * round(20 * probability / largest)
        row = f"{class_id:>3}  {class_names[class_id]:<{name_width}}  {probability:>11.4f}  {bar}"
        lines.append(row.rstrip())
    return "\n".join(lines)


def _draw_seed(rng: np.random.Generator) -> int:
    """The seed of the dataset's crop/flip choices for one draw."""
    return int(rng.integers(0, _SEED_BOUND))


class _EpochPermutations:
    """Element k of the endless sequence perm_0 + perm_1 + ..., perm_e from
    default_rng([seed, e]); caches the current epoch's permutation."""

    def __init__(self, num_items: int, seed: int) -> None:
        self.num_items = num_items
        self.seed = seed
        self._epoch = -1
        self._permutation = np.zeros(0, dtype=np.int64)

    def __call__(self, k: int) -> int:
        epoch, position = divmod(k, self.num_items)
        if epoch != self._epoch:
            self._permutation = np.random.default_rng([self.seed, epoch]).permutation(
                self.num_items
            )
            self._epoch = epoch
        return int(self._permutation[position])


def _check_stream(seed: int, start: int, rank: int, world_size: int) -> None:
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if start < 0:
        raise ValueError(f"start must be non-negative, got {start}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not valid for world size {world_size}")


class SourceSampler(torch.utils.data.Sampler[SampleRequest]):
    """Endless source requests under one strategy (see the module docstring).

    class_pixels: (N,C) int64 pixels of each class per image, aligned with the dataset.
    probabilities: (C,) from `class_probabilities` (ignored for "uniform").
    min_pixels: a class draw picks uniformly among images holding more than this many
    pixels of the class; if none does, among images holding the class at all. Classes no
    image holds are never drawn (their probability is moved to the others).
    start: draws this rank has already consumed (resume); rank / world_size: this process's
    share, draw numbers k = k_local * world_size + rank.
    """

    def __init__(
        self,
        class_pixels: np.ndarray,
        strategy: str,
        seed: int,
        probabilities: np.ndarray | None,
        min_pixels: int = 3000,
        start: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        _check_strategy(strategy)
        _check_stream(seed, start, rank, world_size)
        class_pixels = np.asarray(class_pixels)
        if class_pixels.ndim != 2 or class_pixels.shape[0] == 0:
            raise OmudaError("the source dataset has no samples to draw from")
        self.strategy = strategy
        self.seed = seed
        self.start = start
        self.rank = rank
        self.world_size = world_size
        self.num_images = class_pixels.shape[0]
        self._uniform = _EpochPermutations(self.num_images, seed)
        self.images_with_class: list[np.ndarray] = []
        self.class_probabilities: np.ndarray | None = None
        if strategy != "uniform":
            self._init_class_draws(class_pixels, probabilities, min_pixels)

    def _init_class_draws(
        self, class_pixels: np.ndarray, probabilities: np.ndarray | None, min_pixels: int
    ) -> None:
        if probabilities is None or np.shape(probabilities) != (class_pixels.shape[1],):
            raise ValueError(
                f"strategy {self.strategy!r} needs (C,) = ({class_pixels.shape[1]},) "
                "class probabilities"
            )
        probabilities = np.asarray(probabilities, dtype=np.float64).copy()
        for class_id in range(class_pixels.shape[1]):
            holders = np.flatnonzero(class_pixels[:, class_id] > min_pixels)
            if holders.size == 0:
                holders = np.flatnonzero(class_pixels[:, class_id] > 0)
            if holders.size == 0:
                probabilities[class_id] = 0.0
            self.images_with_class.append(holders)
        total = probabilities.sum()
        if not total > 0:
            raise OmudaError(
                f"sampling strategy {self.strategy!r} has no class to draw: no source image "
                "holds a class with non-zero probability"
            )
        self.class_probabilities = probabilities / total

    def draw(self, k: int) -> SampleRequest:
        """Global draw number k as a request; a pure function of (seed, k)."""
        rng = np.random.default_rng([self.seed, k])
        if self.class_probabilities is None:
            return SampleRequest(self._uniform(k), None, _draw_seed(rng))
        class_id = int(rng.choice(self.class_probabilities.size, p=self.class_probabilities))
        holders = self.images_with_class[class_id]
        index = int(holders[rng.integers(holders.size)])
        return SampleRequest(index, class_id, _draw_seed(rng))

    def __iter__(self) -> Iterator[SampleRequest]:
        local_draw = self.start
        while True:
            yield self.draw(local_draw * self.world_size + self.rank)
            local_draw += 1


class TargetSampler(torch.utils.data.Sampler[SampleRequest]):
    """Endless target requests: every image once per epoch in a random order, no class.

    Same (seed, start, rank, world_size) contract as `SourceSampler`.
    """

    def __init__(
        self, num_images: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        _check_stream(seed, start, rank, world_size)
        if num_images < 1:
            raise OmudaError("the target dataset has no samples to draw from")
        self.num_images = num_images
        self.seed = seed
        self.start = start
        self.rank = rank
        self.world_size = world_size
        self._uniform = _EpochPermutations(num_images, seed)

    def draw(self, k: int) -> SampleRequest:
        """Global draw number k as a request; a pure function of (seed, k)."""
        rng = np.random.default_rng([self.seed, k])
        return SampleRequest(self._uniform(k), None, _draw_seed(rng))

    def __iter__(self) -> Iterator[SampleRequest]:
        local_draw = self.start
        while True:
            yield self.draw(local_draw * self.world_size + self.rank)
            local_draw += 1
