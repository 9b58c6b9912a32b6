"""Synthetic benchmark, camera and street layout: projection, viewpoints, background."""

from __future__ import annotations

import numpy as np
import pytest

from omuda.data.synthetic import appearance, canvas, layout
from omuda.data.synthetic.camera import Camera, sample_camera

# focal 200 px, 1.5 m above the ground, horizon on row 40, optical axis on column 80
CAMERA = Camera(focal=200.0, height_m=1.5, horizon_y=40.0, center_x=80.0)


@pytest.mark.parametrize("depth", [2.0, 7.5, 30.0])
def test_a_ground_point_at_depth_z_lies_f_h_over_z_below_the_horizon(depth: float) -> None:
    pixel = CAMERA.project(np.array([0.0]), np.array([0.0]), np.array([depth]))
    np.testing.assert_allclose(pixel, [[80.0, 40.0 + 200.0 * 1.5 / depth]])


def test_projection_of_heights_widths_and_planes() -> None:
    # a point at the camera's own height is on the horizon at any depth
    on_horizon = CAMERA.project(np.array([2.0, -1.0]), np.array([1.5, 1.5]), np.array([5.0, 50.0]))
    np.testing.assert_allclose(on_horizon, [[80.0 + 80.0, 40.0], [80.0 - 4.0, 40.0]])
    # a 2 m wide, 1 m tall face at depth 10 spans 40 x 20 pixels, its base on the ground row
    face = CAMERA.front(0.5, 10.0, np.array([[-1.0, 0.0], [1.0, 1.0]]))
    np.testing.assert_allclose(face, [[70.0, 70.0], [110.0, 50.0]])
    assert CAMERA.pixels_per_metre(10.0) == 20.0
    # a street-parallel plane at x = 4 m: its points recede to the vanishing point
    side = CAMERA.side(4.0, np.array([[10.0, 0.0], [40.0, 0.0]]))
    np.testing.assert_allclose(side, [[160.0, 70.0], [100.0, 47.5]])
    # ground rectangle corners: near edge first, then the far edge
    ground = CAMERA.ground(-1.0, 1.0, 10.0, 20.0)
    np.testing.assert_allclose(ground, [[60.0, 70.0], [100.0, 70.0], [90.0, 55.0], [70.0, 55.0]])


def test_synthia_looks_from_higher_and_more_downward() -> None:
    for index in range(20):
        rng = np.random.default_rng(index)
        street_camera = sample_camera(rng, "cityscapes", 100, 200)
        high_camera = sample_camera(rng, "synthia", 100, 200)
        assert 1.3 <= street_camera.height_m <= 1.7 and 2.5 <= high_camera.height_m <= 7.0
        assert 42.0 <= street_camera.horizon_y <= 50.0 and 20.0 <= high_camera.horizon_y <= 38.0
        for camera in (street_camera, high_camera):
            assert 190.0 <= camera.focal <= 230.0 and 86.0 <= camera.center_x <= 114.0


def test_street_layout_is_ordered_left_to_right() -> None:
    for domain in ("gta", "synthia"):
        rates = appearance.domain_rates(domain, 1.0)
        for index in range(30):
            street = layout.sample_street(np.random.default_rng(index), rates)
            assert street.facade_left <= street.sidewalk_left < street.road_left < 0.0
            assert 0.0 < street.road_right < street.sidewalk_right <= street.facade_right
            assert 7.0 <= street.road_right - street.road_left <= 16.0
            lanes = np.array(street.lanes)
            assert (np.diff(lanes) > 0).all()
            assert street.road_left < lanes.min() and lanes.max() < street.road_right
            assert 60.0 <= street.far_end <= 220.0
            if domain == "synthia":  # no terrain strips between sidewalk and facade
                assert street.facade_left == street.sidewalk_left
                assert street.facade_right == street.sidewalk_right
                assert not street.has_tram


def _background(seed: int) -> tuple[canvas.Canvas, layout.Street]:
    rng = np.random.default_rng(seed)
    rates = appearance.domain_rates("gta", 1.0)
    look = appearance.Look(rng, appearance.domain_style("gta", 1.0))
    street = layout.sample_street(rng, rates)
    painted = canvas.Canvas(80, 160)
    layout.draw_sky(painted, CAMERA, look)
    assert (painted.label == canvas.SKY).all()
    layout.draw_ground(painted, CAMERA, street, look, rng)
    return painted, street


def test_ground_lies_below_the_horizon_with_the_road_under_the_camera() -> None:
    for seed in range(5):
        painted, _ = _background(seed)
        assert (painted.label[:40] == canvas.SKY).all()
        ground = painted.label[41:]
        assert set(np.unique(ground).tolist()) <= {
            canvas.ROAD,
            canvas.SIDEWALK,
            canvas.TERRAIN,
        }
        assert painted.label[-1, 80] == canvas.ROAD  # the camera stands over the road


def test_sides_paint_only_background_classes() -> None:
    background = {canvas.SKY, canvas.ROAD, canvas.SIDEWALK, canvas.TERRAIN}
    sides = {canvas.BUILDING, canvas.VEGETATION, canvas.WALL, canvas.FENCE}
    seen: set[int] = set()
    for seed in range(8):
        painted, street = _background(seed)
        rng = np.random.default_rng(100 + seed)
        look = appearance.Look(rng, appearance.domain_style("gta", 1.0))
        rates = dict(appearance.domain_rates("gta", 1.0), wall=0.3, fence=0.3, hedge=0.3)
        layout.draw_far_block(painted, CAMERA, street, look, rng)
        layout.draw_sides(painted, CAMERA, street, rates, look, rng)
        labels_now = set(np.unique(painted.label).tolist())
        assert labels_now <= background | sides
        seen |= labels_now
    assert sides <= seen
