"""Synthetic benchmark, the drawing canvas: image, label and grain painted together."""

from __future__ import annotations

import numpy as np

from omuda.data.labels import IGNORE_INDEX
from omuda.data.synthetic.canvas import Canvas, ellipse, fixed_point, quad, shade

BLUE = np.array([0.5, 0.25, 1.0])


def test_fill_paints_image_label_and_grain_inside_the_polygon_only() -> None:
    painted = Canvas(8, 10)
    assert (painted.label == IGNORE_INDEX).all() and not painted.rgb.any()
    painted.fill(quad(2, 2, 6, 5), 3, BLUE, 0.1)
    inside = np.zeros((8, 10), dtype=bool)
    inside[2:6, 2:7] = True  # rows 2..5, columns 2..6: the boundary pixels are filled
    np.testing.assert_array_equal(painted.label == 3, inside)
    np.testing.assert_array_equal(painted.rgb[inside], np.tile(BLUE, (inside.sum(), 1)))
    assert not painted.rgb[~inside].any()
    np.testing.assert_allclose(painted.grain[inside], 0.1)
    assert not painted.grain[~inside].any()

    painted.fill(quad(0, 0, 3, 3), None, np.zeros(3))  # a detail: image only
    np.testing.assert_array_equal(painted.label == 3, inside)
    assert not painted.rgb[2, 2].any()


def test_stroke_draws_a_polyline_at_least_one_pixel_thick() -> None:
    segment = np.array([[2.0, 5.0], [11.0, 5.0]])
    thin, hairline, thick = Canvas(11, 14), Canvas(11, 14), Canvas(11, 14)
    thin.stroke(segment, 7, BLUE, 1.0)
    expected = np.zeros((11, 14), dtype=bool)
    expected[5, 2:12] = True
    np.testing.assert_array_equal(thin.label == 7, expected)
    hairline.stroke(segment, None, BLUE, 0.2)  # rounds to 0, drawn 1 px; image only
    np.testing.assert_array_equal(hairline.rgb.any(axis=2), expected)
    assert (hairline.label == IGNORE_INDEX).all()
    thick.stroke(segment, 7, BLUE, 3.0)
    rows = np.flatnonzero((thick.label == 7).any(axis=1))
    assert len(rows) > 1 and rows.min() + rows.max() == 10  # wider, centred on row 5


def test_mesh_labels_the_whole_polygon_and_lets_the_background_show() -> None:
    painted = Canvas(6, 6)
    painted.rgb[:] = 1.0
    painted.mesh(quad(0, 0, 5, 5), 4, BLUE, 0.05)
    assert (painted.label == 4).all()
    rows, cols = np.indices((6, 6))
    wires = ((rows + cols) % 3 == 0) | ((rows - cols) % 3 == 0)
    np.testing.assert_allclose(painted.rgb[wires], np.tile(BLUE, (wires.sum(), 1)))
    np.testing.assert_allclose(painted.rgb[~wires], np.tile(0.6 + 0.28 * BLUE, ((~wires).sum(), 1)))


def test_shape_helpers() -> None:
    np.testing.assert_array_equal(fixed_point(np.array([[1.5, 2.25]])), [[24, 36]])  # 1/16 px
    np.testing.assert_array_equal(quad(0, 1, 2, 3), [[0, 1], [2, 1], [2, 3], [0, 3]])
    circle = ellipse(1.0, 2.0, 3.0, 0.5, 8)
    np.testing.assert_allclose(circle[0], [4.0, 2.0])
    np.testing.assert_allclose(circle[2], [1.0, 2.5])
    np.testing.assert_allclose(shade(np.array([0.2, 0.5, 0.9]), 1.5), [0.3, 0.75, 1.0])
