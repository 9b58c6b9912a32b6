"""Sampling strategies: hand-computed class probabilities, determinism, resume, ranks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from omuda.data.datasets import SampleRequest
from omuda.data.labels import CLASS_NAMES, NUM_CLASSES, STUFF_CLASSES, THING_CLASSES
from omuda.data.sampling import (
    SourceSampler,
    TargetSampler,
    class_probabilities,
    format_class_probabilities,
)
from omuda.errors import OmudaError

# Toy source with three classes: road (0, background) 60% of the labelled pixels,
# person (11, foreground) 30%, car (13, foreground) 10%; every other class is absent.
ROAD, PERSON, CAR = 0, 11, 13
TOY_FRACTION = np.zeros(NUM_CLASSES)
TOY_FRACTION[[ROAD, PERSON, CAR]] = [0.6, 0.3, 0.1]


def _probabilities(strategy: str, **options: float) -> np.ndarray | None:
    return class_probabilities(strategy, TOY_FRACTION, THING_CLASSES, STUFF_CLASSES, **options)


def _only(probabilities: np.ndarray, classes: list[int]) -> np.ndarray:
    """The given classes' probabilities, after checking every other class has 0."""
    others = np.delete(probabilities, classes)
    assert (others == 0).all()
    return probabilities[classes]


def test_uniform_has_no_class_probabilities():
    assert _probabilities("uniform") is None


def test_rcs_probabilities_by_hand():
    # softmax((1 - f) / T) with T = 0.5: logits 0.8, 1.4, 1.8.
    exps = [math.exp(0.8), math.exp(1.4), math.exp(1.8)]
    expected = [value / sum(exps) for value in exps]  # 0.1805, 0.3289, 0.4906
    got = _only(_probabilities("rcs", rcs_temperature=0.5), [ROAD, PERSON, CAR])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(got, [0.1805, 0.3289, 0.4906], atol=1e-4)
    # DAFormer's T = 0.01 puts almost everything on the rarest class: e^-20 for person.
    default = _probabilities("rcs")
    assert default[CAR] == pytest.approx(1.0, abs=1e-8)
    assert default[PERSON] == pytest.approx(math.exp(-20), rel=1e-6)


def test_cam_probabilities_by_hand():
    # P(foreground) = |{11, 13}| / |{0, 11, 13}| = 2/3; within the foreground
    # softmax((0.7, 0.9) / 0.7) = softmax(1, 9/7); the background holds road alone.
    foreground = [math.exp(1.0), math.exp(0.9 / 0.7)]
    expected = [1 / 3] + [2 / 3 * value / sum(foreground) for value in foreground]
    got = _only(_probabilities("cam"), [ROAD, PERSON, CAR])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(got, [0.3333, 0.2860, 0.3806], atol=1e-4)
    # A configured foreground probability replaces 2/3.
    got = _only(_probabilities("cam", foreground_probability=0.5), [ROAD, PERSON, CAR])
    np.testing.assert_allclose(got, [0.5] + [0.5 * v / sum(foreground) for v in foreground])


def test_cam_background_temperature():
    # Two background classes, T_b = 1: softmax(1 - 0.6, 1 - 0.3) over road and building.
    fraction = np.zeros(NUM_CLASSES)
    fraction[[0, 2, 13]] = [0.6, 0.3, 0.1]
    probabilities = class_probabilities("cam", fraction, THING_CLASSES, STUFF_CLASSES)
    background = [math.exp(0.4), math.exp(0.7)]
    expected = [2 / 3 * value / sum(background) for value in background] + [1 / 3]
    np.testing.assert_allclose(_only(probabilities, [0, 2, 13]), expected, rtol=1e-12)


def test_fixed_ratio_probabilities_by_hand():
    got = _only(_probabilities("fixed_ratio"), [ROAD, PERSON, CAR])
    np.testing.assert_allclose(got, [0.5, 0.25, 0.25])
    got = _only(_probabilities("fixed_ratio", foreground_probability=0.8), [ROAD, PERSON, CAR])
    np.testing.assert_allclose(got, [0.2, 0.4, 0.4])


def test_a_group_without_present_classes_gives_way():
    fraction = np.zeros(NUM_CLASSES)
    fraction[[0, 2]] = [0.5, 0.5]  # background only
    for strategy in ("cam", "fixed_ratio"):
        probabilities = class_probabilities(strategy, fraction, THING_CLASSES, STUFF_CLASSES)
        np.testing.assert_allclose(_only(probabilities, [0, 2]), [0.5, 0.5])


def test_bad_strategy_and_settings_raise_omuda_errors():
    with pytest.raises(OmudaError, match="uniform, fixed_ratio, rcs, cam"):
        _probabilities("balanced")
    with pytest.raises(OmudaError, match="rcs_temperature"):
        _probabilities("rcs", rcs_temperature=0.0)
    with pytest.raises(OmudaError, match="foreground_probability"):
        _probabilities("cam", foreground_probability=1.5)
    with pytest.raises(OmudaError, match="no labelled pixels"):
        class_probabilities("rcs", np.zeros(NUM_CLASSES), THING_CLASSES, STUFF_CLASSES)


def test_format_class_probabilities_lists_every_class():
    table = format_class_probabilities(_probabilities("cam"), CLASS_NAMES)
    lines = table.splitlines()
    assert len(lines) == NUM_CLASSES + 1
    assert "person" in lines[PERSON + 1] and "0.2860" in lines[PERSON + 1]


def _toy_class_pixels() -> np.ndarray:
    """(6,19): every image has road; images 1 and 4 hold person above 3000 pixels, image 2
    person below it; car only below 3000 pixels (images 3 and 5), so car falls back."""
    class_pixels = np.zeros((6, NUM_CLASSES), dtype=np.int64)
    class_pixels[:, ROAD] = 20000
    class_pixels[[1, 4], PERSON] = 5000
    class_pixels[2, PERSON] = 200
    class_pixels[[3, 5], CAR] = [800, 100]
    return class_pixels


def _take(sampler: SourceSampler | TargetSampler, count: int) -> list[SampleRequest]:
    return list(itertools.islice(iter(sampler), count))


def test_class_draw_frequencies_match_the_probabilities():
    probabilities = _probabilities("cam")
    class_pixels = _toy_class_pixels()
    sampler = SourceSampler(class_pixels, "cam", seed=3, probabilities=probabilities)
    draws = 20000
    requests = _take(sampler, draws)
    classes = np.array([request.required_class for request in requests])
    frequencies = np.bincount(classes, minlength=NUM_CLASSES) / draws
    # Each class count is binomial: standard error sqrt(p(1-p)/n) <= 0.0035 at n = 20000.
    # 5 standard errors bound a false failure below 1e-6 per class (the seed is fixed anyway).
    tolerance = 5 * np.sqrt(probabilities * (1 - probabilities) / draws)
    assert (np.abs(frequencies - probabilities) <= tolerance + 1e-12).all()
    for request in requests:
        held = class_pixels[request.index, request.required_class]
        if request.required_class == PERSON:
            assert held > 3000  # images with enough pixels exist: only those are drawn
        else:
            assert held > 0  # car: no image has 3000 pixels, any image holding it
    indices_for_car = {r.index for r in requests if r.required_class == CAR}
    assert indices_for_car == {3, 5}


def test_classes_no_image_holds_are_never_drawn():
    probabilities = np.zeros(NUM_CLASSES)
    probabilities[[ROAD, 16]] = 0.5  # no image holds train (16)
    sampler = SourceSampler(_toy_class_pixels(), "rcs", seed=0, probabilities=probabilities)
    assert {request.required_class for request in _take(sampler, 200)} == {ROAD}


def test_source_stream_is_deterministic_and_resumable():
    probabilities = _probabilities("rcs", rcs_temperature=0.5)

    def build(seed: int, start: int) -> SourceSampler:
        return SourceSampler(
            _toy_class_pixels(), "rcs", seed=seed, probabilities=probabilities, start=start
        )

    stream = _take(build(7, 0), 50)
    assert stream == _take(build(7, 0), 50)
    assert stream[17:] == _take(build(7, 17), 33)
    assert stream != _take(build(8, 0), 50)
    assert len({request.seed for request in stream}) == 50  # a fresh crop seed per draw


def test_source_ranks_interleave_the_global_stream():
    probabilities = _probabilities("cam")
    single = _take(SourceSampler(_toy_class_pixels(), "cam", 5, probabilities), 40)
    for rank in range(4):
        sampler = SourceSampler(
            _toy_class_pixels(), "cam", 5, probabilities, rank=rank, world_size=4
        )
        assert _take(sampler, 10) == single[rank::4]


@pytest.mark.parametrize("make", ["source", "target"])
def test_uniform_epochs_cover_every_image_and_ranks_are_disjoint(make):
    num_images = 10

    def build(rank: int, world_size: int, start: int = 0) -> SourceSampler | TargetSampler:
        if make == "source":
            return SourceSampler(
                np.ones((num_images, NUM_CLASSES), dtype=np.int64),
                "uniform",
                seed=11,
                probabilities=None,
                start=start,
                rank=rank,
                world_size=world_size,
            )
        return TargetSampler(num_images, seed=11, start=start, rank=rank, world_size=world_size)

    indices = [request.index for request in _take(build(0, 1), 3 * num_images)]
    for epoch in range(3):
        assert sorted(indices[epoch * num_images : (epoch + 1) * num_images]) == list(range(10))
    assert indices[:num_images] != indices[num_images : 2 * num_images]  # fresh order

    rank_0 = [request.index for request in _take(build(0, 2), 5)]
    rank_1 = [request.index for request in _take(build(1, 2), 5)]
    assert set(rank_0).isdisjoint(rank_1) and set(rank_0) | set(rank_1) == set(range(10))
    assert all(request.required_class is None for request in _take(build(0, 1), 5))
    assert _take(build(1, 2, start=4), 6) == _take(build(1, 2), 10)[4:]


def test_sampler_arguments_are_checked():
    with pytest.raises(OmudaError, match="uniform, fixed_ratio, rcs, cam"):
        SourceSampler(_toy_class_pixels(), "balanced", 0, None)
    with pytest.raises(ValueError, match="class probabilities"):
        SourceSampler(_toy_class_pixels(), "rcs", 0, None)
    with pytest.raises(ValueError, match="rank"):
        TargetSampler(4, seed=0, rank=2, world_size=2)
