"""Synthetic benchmark, objects: each drawer paints only its own classes, inside its box."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from omuda.data.labels import IGNORE_INDEX
from omuda.data.synthetic import canvas, sizes
from omuda.data.synthetic.appearance import Look, domain_rates, domain_style
from omuda.data.synthetic.camera import Camera
from omuda.data.synthetic.canvas import Canvas
from omuda.data.synthetic.layout import sample_street
from omuda.data.synthetic.people import draw_human, draw_two_wheeler
from omuda.data.synthetic.placement import place_objects
from omuda.data.synthetic.roadside import (
    draw_streetlight,
    draw_traffic_light,
    draw_traffic_sign,
    draw_tree,
)
from omuda.data.synthetic.vehicles import (
    draw_bus,
    draw_car,
    draw_ego_vehicle,
    draw_tram,
    draw_truck,
)

# 256x128 frame, focal 256 px, camera 1.5 m high, horizon on row 70; objects stand at
# x = 0, depth 40 m: 6.4 px per metre, feet on row 70 + 256 * 1.5 / 40 = 79.6
CAMERA = Camera(focal=256.0, height_m=1.5, horizon_y=70.0, center_x=128.0)
DEPTH, PPM, GROUND_ROW = 40.0, 6.4, 79.6

Drawer = Callable[[Canvas, Look, np.random.Generator], None]
DRAWERS: dict[str, tuple[Drawer, set[int], float, float]] = {
    # name: (draw, classes it may paint, half width and top in metres from `sizes`)
    "tree": (
        lambda c, look, rng: draw_tree(c, CAMERA, 0.0, DEPTH, look, rng),
        {canvas.VEGETATION},
        3.5 * (0.9 + 4 * 0.35),  # crown blobs: 4 standard deviations of their offsets
        4.0 + 3.5 * (0.8 + 4 * 0.35 + 0.8),
    ),
    "streetlight": (
        lambda c, look, rng: draw_streetlight(c, CAMERA, 0.0, DEPTH, 1.0, look, rng),
        {canvas.POLE},
        sizes.STREETLIGHT_REACH[1] + 0.1,
        sizes.STREETLIGHT_HEIGHT[1],
    ),
    "traffic_light": (
        lambda c, look, rng: draw_traffic_light(c, CAMERA, 0.0, DEPTH, -1.0, look, rng),
        {canvas.POLE, canvas.TRAFFIC_LIGHT},
        sizes.TRAFFIC_LIGHT_ARM_REACH[1] + 0.18,
        sizes.TRAFFIC_LIGHT_POLE_HEIGHT[1],
    ),
    "traffic_sign": (
        lambda c, look, rng: draw_traffic_sign(c, CAMERA, 0.0, DEPTH, look, rng),
        {canvas.POLE, canvas.TRAFFIC_SIGN},
        sizes.TRAFFIC_SIGN_SIZE[1] / 2,
        sizes.TRAFFIC_SIGN_POLE_HEIGHT[1] + sizes.TRAFFIC_SIGN_SIZE[1] * 0.95,
    ),
    "car": (
        lambda c, look, rng: draw_car(c, CAMERA, 0.0, DEPTH, look, rng),
        {canvas.CAR},
        sizes.CAR_WIDTH[1] / 2,
        sizes.CAR_HEIGHT[1],
    ),
    "truck": (
        lambda c, look, rng: draw_truck(c, CAMERA, 0.0, DEPTH, look, rng),
        {canvas.TRUCK},
        sizes.TRUCK_WIDTH[1] / 2,
        sizes.TRUCK_BOX_HEIGHT[1],
    ),
    "bus": (
        lambda c, look, rng: draw_bus(c, CAMERA, 0.0, DEPTH, look, rng),
        {canvas.BUS},
        sizes.BUS_WIDTH / 2,
        sizes.BUS_HEIGHT[1],
    ),
    "tram": (
        lambda c, look, rng: draw_tram(c, CAMERA, 0.0, DEPTH, look, rng),
        {canvas.TRAIN},
        sizes.TRAM_WIDTH / 2,
        sizes.TRAM_HEIGHT[1] + 0.9,  # with the pantograph
    ),
    "person": (
        lambda c, look, rng: draw_human(
            c, CAMERA, canvas.PERSON, 0.0, DEPTH, 1.95, look, rng, False, 1.0
        ),
        {canvas.PERSON},
        0.45 * 1.95 / 1.75,  # arm ends and sleeve, scaled from the 1.75 m body
        1.95,
    ),
    "rider": (
        lambda c, look, rng: draw_human(
            c, CAMERA, canvas.RIDER, 0.0, DEPTH, 1.9, look, rng, True, -1.0
        ),
        {canvas.RIDER},
        0.45 * 1.9 / 1.75,
        1.81 * 1.9 / 1.75,  # hair top of the seated figure
    ),
    "bicycle": (
        lambda c, look, rng: draw_two_wheeler(c, CAMERA, canvas.BICYCLE, 0.0, DEPTH, look, 1.0),
        {canvas.BICYCLE},
        sizes.BICYCLE_HALF_WHEELBASE + sizes.BICYCLE_WHEEL_RADIUS,
        1.1,  # handlebar
    ),
    "motorcycle": (
        lambda c, look, rng: draw_two_wheeler(c, CAMERA, canvas.MOTORCYCLE, 0.0, DEPTH, look, -1.0),
        {canvas.MOTORCYCLE},
        sizes.MOTORCYCLE_HALF_WHEELBASE + sizes.MOTORCYCLE_WHEEL_RADIUS,
        1.15,  # headlight
    ),
}


@pytest.mark.parametrize("name", sorted(DRAWERS))
def test_a_drawer_paints_only_its_classes_inside_its_box(name: str) -> None:
    draw, classes, half_width, top = DRAWERS[name]
    for seed in range(4):
        rng = np.random.default_rng(seed)
        painted = Canvas(128, 256)
        draw(painted, Look(rng, domain_style("gta", 1.0)), rng)
        mask = painted.label != IGNORE_INDEX
        assert mask.any()
        assert set(np.unique(painted.label[mask]).tolist()) <= classes
        assert not painted.rgb[~mask].any()  # details stay on their object
        rows, cols = np.nonzero(mask)
        assert rows.max() <= GROUND_ROW + 1  # stands on the ground
        assert rows.min() >= GROUND_ROW - top * PPM - 1
        assert np.abs(cols + 0.0 - CAMERA.center_x).max() <= half_width * PPM + 1
        assert rows.min() > 0 and cols.min() > 0 and cols.max() < 255  # inside the frame


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_a_car_beside_the_axis_shows_its_side_in_perspective(side: float) -> None:
    rng = np.random.default_rng(0)
    painted = Canvas(128, 256)
    draw_car(painted, CAMERA, 3.0 * side, 10.0, Look(rng, domain_style("gta", 1.0)), rng)
    cols = np.nonzero(painted.label == canvas.CAR)[1] - CAMERA.center_x
    inner_face_edge = 256.0 * (3.0 - sizes.CAR_WIDTH[1] / 2) / 10.0  # rear face, nearest edge
    assert np.abs(cols).min() < inner_face_edge - 5  # the side recedes towards the axis
    assert (np.sign(cols) == side).all()


def test_the_ego_vehicle_is_ignored_along_the_bottom_edge() -> None:
    for seed in range(5):
        painted = Canvas(64, 128)
        painted.label[:] = canvas.SKY
        draw_ego_vehicle(painted, np.random.default_rng(seed))
        assert (painted.label[-1] == IGNORE_INDEX).all()
        assert (painted.label[: int(64 * 0.85) - 2] == canvas.SKY).all()  # at most 15% tall
        assert set(np.unique(painted.label).tolist()) == {canvas.SKY, IGNORE_INDEX}


def _placed(domain: str, seed: int) -> list[tuple[float, partial]]:
    rng = np.random.default_rng(seed)
    rates = domain_rates(domain, 1.0)
    street = sample_street(rng, rates)
    look = Look(rng, domain_style(domain, 1.0))
    return place_objects(street, CAMERA, rates, look, rng, Canvas(64, 128))


def test_placement_draws_counts_from_the_domain_rates() -> None:
    drawers = {draw.func for seed in range(30) for _, draw in _placed("synthia", seed)}
    assert draw_car in drawers and draw_human in drawers
    assert draw_truck not in drawers and draw_tram not in drawers  # SYNTHIA has neither
    drawers = {draw.func for seed in range(30) for _, draw in _placed("gta", seed)}
    assert {draw_truck, draw_tram, draw_bus, draw_tree, draw_two_wheeler} <= drawers
    for seed in range(10):
        for depth, draw in _placed("cityscapes", seed):
            with_class = draw.func in (draw_human, draw_two_wheeler)  # (canvas, camera, id, x, z)
            z = draw.args[4] if with_class else draw.args[3]
            rider = draw.func is draw_human and draw.args[2] == canvas.RIDER
            assert depth == (z - 0.01 if rider else z)  # a rider is drawn over its bike
            assert 3.0 <= z <= 70.0

    rng = np.random.default_rng(0)
    nothing = dict.fromkeys(domain_rates("gta", 1.0), 0.0)
    street = sample_street(rng, nothing)
    look = Look(rng, domain_style("gta", 1.0))
    assert place_objects(street, CAMERA, nothing, look, rng, Canvas(64, 128)) == []
