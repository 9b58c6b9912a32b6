"""Roadside objects: trees, street lights, traffic lights and traffic signs.

Each draw_* function paints one object standing on the ground at (x_m, z_m), facing the
camera, and draws its own random details from `rng`. Dimensions come from `sizes`.
"""

from __future__ import annotations

import numpy as np

from omuda.data.synthetic import sizes
from omuda.data.synthetic.appearance import GRAIN, Look
from omuda.data.synthetic.camera import Camera
from omuda.data.synthetic.canvas import (
    POLE,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    VEGETATION,
    Canvas,
    ellipse,
    quad,
    shade,
)


def _pole_width(camera: Camera, z_m: float, width_m: float) -> float:
    """Widen thin poles far away so they keep at least one pixel."""
    return max(width_m, sizes.MIN_POLE_PIXELS / camera.pixels_per_metre(z_m))


def draw_tree(
    canvas: Canvas, camera: Camera, x_m: float, z_m: float, look: Look, rng: np.random.Generator
) -> None:
    """A tree: a trunk and a crown of a few overlapping green blobs (all vegetation)."""
    trunk_height = rng.uniform(*sizes.TREE_TRUNK_HEIGHT)
    radius = rng.uniform(*sizes.TREE_CROWN_RADIUS)
    trunk_width = _pole_width(camera, z_m, rng.uniform(*sizes.TREE_TRUNK_WIDTH))
    trunk = quad(-trunk_width / 2, 0.0, trunk_width / 2, trunk_height + radius * 0.5)
    canvas.fill(
        camera.front(x_m, z_m, trunk),
        VEGETATION,
        np.array([0.32, 0.24, 0.17]),
        GRAIN["vegetation"],
    )
    green = look.colour("vegetation")
    centre_up = trunk_height + radius * 0.8
    for _ in range(int(rng.integers(3, 6))):
        dx, dy = rng.normal(0.0, radius * 0.35, 2)
        blob = ellipse(
            dx, centre_up + dy, radius * rng.uniform(0.6, 0.9), radius * rng.uniform(0.5, 0.8), 16
        )
        canvas.fill(
            camera.front(x_m, z_m, blob),
            VEGETATION,
            shade(green, rng.uniform(0.8, 1.1)),
            GRAIN["vegetation"],
        )


def _pole(
    canvas: Canvas,
    camera: Camera,
    x_m: float,
    z_m: float,
    height: float,
    colour: np.ndarray,
    width_m: float = sizes.POLE_WIDTH,
) -> None:
    """A vertical pole of `height` metres."""
    width = _pole_width(camera, z_m, width_m)
    canvas.fill(
        camera.front(x_m, z_m, quad(-width / 2, 0.0, width / 2, height)),
        POLE,
        colour,
        GRAIN["metal"],
    )


def _arm(
    canvas: Canvas,
    camera: Camera,
    x_m: float,
    z_m: float,
    length: float,
    up: float,
    colour: np.ndarray,
) -> None:
    """A horizontal pole arm reaching `length` metres sideways (negative = to the left)."""
    thickness = _pole_width(camera, z_m, sizes.POLE_ARM_THICKNESS)
    canvas.fill(camera.front(x_m, z_m, quad(0.0, up - thickness, length, up)), POLE, colour)


def draw_streetlight(
    canvas: Canvas,
    camera: Camera,
    x_m: float,
    z_m: float,
    toward_road: float,
    look: Look,
    rng: np.random.Generator,
) -> None:
    """A street light: a pole with an arm and a lamp reaching towards the road (+-1)."""
    colour = look.colour("pole")
    height = rng.uniform(*sizes.STREETLIGHT_HEIGHT)
    _pole(canvas, camera, x_m, z_m, height, colour, sizes.STREETLIGHT_POLE_WIDTH)
    reach = toward_road * rng.uniform(*sizes.STREETLIGHT_REACH)
    _arm(canvas, camera, x_m, z_m, reach, height, colour)
    lamp = quad(reach - 0.35 * toward_road, height - 0.25, reach + 0.1 * toward_road, height)
    canvas.fill(camera.front(x_m, z_m, lamp), POLE, shade(colour, 0.8))


def draw_traffic_light(
    canvas: Canvas,
    camera: Camera,
    x_m: float,
    z_m: float,
    toward_road: float,
    look: Look,
    rng: np.random.Generator,
) -> None:
    """A traffic light (dark box, one lit lamp) on a pole, or over the road from its arm."""
    pole_colour = look.colour("pole")
    height = rng.uniform(*sizes.TRAFFIC_LIGHT_POLE_HEIGHT)
    _pole(canvas, camera, x_m, z_m, height, pole_colour)
    centre_x, box_top = 0.0, height + 0.9
    if height > sizes.TRAFFIC_LIGHT_ARM_ABOVE:  # hanging over the road from an arm
        centre_x = toward_road * rng.uniform(*sizes.TRAFFIC_LIGHT_ARM_REACH)
        _arm(canvas, camera, x_m, z_m, centre_x, height, pole_colour)
        box_top = height
    box_bottom = box_top - sizes.TRAFFIC_LIGHT_BOX_HEIGHT
    housing = look.colour("light_housing")
    canvas.fill(
        camera.front(
            x_m,
            z_m,
            quad(
                centre_x - sizes.TRAFFIC_LIGHT_BOX_HALF_WIDTH,
                box_bottom,
                centre_x + sizes.TRAFFIC_LIGHT_BOX_HALF_WIDTH,
                box_top,
            ),
        ),
        TRAFFIC_LIGHT,
        housing,
        GRAIN["metal"],
    )
    lit_index = int(rng.integers(3))
    lamp_colours = ((1.0, 0.12, 0.05), (1.0, 0.7, 0.05), (0.15, 1.0, 0.45))
    for index in range(3):
        centre_up = box_top - 0.17 - index * 0.3
        colour = np.array(lamp_colours[index]) * (1.0 if index == lit_index else 0.25)
        disc = ellipse(centre_x, centre_up, 0.11, 0.11, 10)
        canvas.fill(camera.front(x_m, z_m, disc), TRAFFIC_LIGHT, colour)


def draw_traffic_sign(
    canvas: Canvas, camera: Camera, x_m: float, z_m: float, look: Look, rng: np.random.Generator
) -> None:
    """A traffic sign (disc, triangle, diamond or plate) on a thin pole."""
    height = rng.uniform(*sizes.TRAFFIC_SIGN_POLE_HEIGHT)
    _pole(canvas, camera, x_m, z_m, height, look.colour("pole"), sizes.TRAFFIC_SIGN_POLE_WIDTH)
    size = rng.uniform(*sizes.TRAFFIC_SIGN_SIZE)
    centre_up = height + size * 0.45
    kind = int(rng.integers(5))
    red, white = np.array([0.85, 0.1, 0.1]), np.array([0.95, 0.95, 0.95])
    blue, yellow = np.array([0.1, 0.3, 0.75]), np.array([0.98, 0.8, 0.1])
    half = size / 2
    if kind == 0:  # prohibition disc: red rim, white face
        outer, inner = (
            ellipse(0, centre_up, half, half, 16),
            ellipse(0, centre_up, half * 0.7, half * 0.7, 16),
        )
        rim, face = red, white
    elif kind == 1:  # mandatory disc: all blue with a white mark
        outer = ellipse(0, centre_up, half, half, 16)
        inner = quad(-half * 0.15, centre_up - half * 0.5, half * 0.15, centre_up + half * 0.5)
        rim, face = blue, white
    elif kind == 2:  # warning triangle
        outer = np.array(
            [[-half, centre_up - half * 0.8], [half, centre_up - half * 0.8], [0, centre_up + half]]
        )
        inner = np.array(
            [
                [-half * 0.6, centre_up - half * 0.55],
                [half * 0.6, centre_up - half * 0.55],
                [0, centre_up + half * 0.55],
            ]
        )
        rim, face = red, white
    elif kind == 3:  # priority diamond
        outer = np.array(
            [[0, centre_up - half], [half, centre_up], [0, centre_up + half], [-half, centre_up]]
        )
        inner = np.array(
            [
                [0, centre_up - half * 0.6],
                [half * 0.6, centre_up],
                [0, centre_up + half * 0.6],
                [-half * 0.6, centre_up],
            ]
        )
        rim, face = white, yellow
    else:  # information plate
        outer = quad(-half, centre_up - half * 0.7, half, centre_up + half * 0.7)
        inner = quad(-half * 0.8, centre_up - half * 0.5, half * 0.8, centre_up + half * 0.5)
        rim, face = white, blue if rng.random() < 0.6 else yellow
    canvas.fill(camera.front(x_m, z_m, outer), TRAFFIC_SIGN, rim, GRAIN["metal"])
    canvas.fill(camera.front(x_m, z_m, inner), None, face)
