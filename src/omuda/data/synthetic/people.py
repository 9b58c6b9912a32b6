"""People and two-wheelers: pedestrians, riders, bicycles and motorcycles.

A person is a few limb quads, a head and hair, drawn in the proportions of a
`_BODY_HEIGHT` body and scaled to its own height; a rider is the same figure seated and
leaning forward. Two-wheelers are seen from the side. Dimensions come from `sizes`.
"""

from __future__ import annotations

import math

import numpy as np

from omuda.data.synthetic import sizes
from omuda.data.synthetic.appearance import GRAIN, Look
from omuda.data.synthetic.camera import Camera
from omuda.data.synthetic.canvas import BICYCLE, MOTORCYCLE, Canvas, ellipse, quad

# The joint positions below are metres on a body of this height.
_BODY_HEIGHT = 1.75


def _limb(start: tuple[float, float], end: tuple[float, float], width: float) -> np.ndarray:
    """A quad of `width` metres along the segment start -> end, as (4,2) (dx, up)."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    nx, ny = -(y1 - y0) / length * width / 2, (x1 - x0) / length * width / 2
    return np.array(
        [[x0 + nx, y0 + ny], [x1 + nx, y1 + ny], [x1 - nx, y1 - ny], [x0 - nx, y0 - ny]]
    )


def draw_human(
    canvas: Canvas,
    camera: Camera,
    class_id: int,
    x_m: float,
    z_m: float,
    height: float,
    look: Look,
    rng: np.random.Generator,
    seated: bool,
    facing: float,
) -> None:
    """A person (standing) or a rider (seated, leaning towards `facing` = +-1)."""
    s = height / _BODY_HEIGHT
    shirt, trousers = look.colour("clothes"), look.colour("clothes")
    skin = look.colour("skin")
    hair = np.array([0.12, 0.09, 0.07]) if rng.random() < 0.7 else np.array([0.6, 0.5, 0.3])
    f = facing
    if seated:
        hip, knee, foot = (-0.2 * f, 0.95), (0.15 * f, 0.85), (0.05 * f, 0.35)
        shoulder, hand, head = (0.05 * f, 1.5), (0.4 * f, 1.15), (0.12 * f, 1.68)
        limbs = [
            (hip, knee, 0.16, trousers),
            (knee, foot, 0.13, trousers),
            (hip, shoulder, 0.36, shirt),
            (shoulder, hand, 0.1, shirt),
        ]
    else:
        stride = rng.uniform(0.0, 0.25)
        hip, head = (0.0, 0.92), (0.0, 1.62)
        limbs = [
            ((-0.08, 0.92), (-0.08 - stride, 0.0), 0.14, trousers),
            ((0.08, 0.92), (0.08 + stride, 0.0), 0.14, trousers),
            ((0.0, 0.9), (0.0, 1.45), 0.42, shirt),
            ((-0.22, 1.42), (-0.26 - stride * 0.5, 0.92), 0.1, shirt),
            ((0.22, 1.42), (0.26 + stride * 0.5, 0.92), 0.1, shirt),
        ]
    for start, end, width, colour in limbs:
        scaled = _limb((start[0] * s, start[1] * s), (end[0] * s, end[1] * s), width * s)
        canvas.fill(camera.front(x_m, z_m, scaled), class_id, colour, GRAIN["person"])
    head_points = ellipse(head[0] * s, head[1] * s, 0.1 * s, 0.125 * s, 14)
    canvas.fill(camera.front(x_m, z_m, head_points), class_id, skin, GRAIN["person"])
    hair_points = ellipse(head[0] * s, head[1] * s + 0.06 * s, 0.1 * s, 0.07 * s, 12)
    canvas.fill(camera.front(x_m, z_m, hair_points), class_id, hair)


def draw_two_wheeler(
    canvas: Canvas,
    camera: Camera,
    class_id: int,
    x_m: float,
    z_m: float,
    look: Look,
    facing: float,
) -> None:
    """A bicycle (thin rings and frame) or a motorcycle (thick wheels and a body), side view."""
    ppm = camera.pixels_per_metre(z_m)
    frame = look.colour("bike")
    tyre = np.array([0.05, 0.05, 0.06])
    f = facing
    if class_id == BICYCLE:
        radius, hub_dx = sizes.BICYCLE_WHEEL_RADIUS, sizes.BICYCLE_HALF_WHEELBASE
        for dx in (-hub_dx, hub_dx):
            ring = camera.front(x_m, z_m, ellipse(dx, radius, radius, radius, 16))
            canvas.stroke(ring, BICYCLE, tyre, 0.06 * ppm, closed=True)
        joints = {
            "rear": (-hub_dx * f, radius),
            "crank": (0.0, 0.3),
            "seat": (-0.15 * f, 0.95),
            "head": (0.42 * f, 0.95),
            "front": (hub_dx * f, radius),
            "bar": (0.45 * f, 1.1),
        }
        for a, b in (
            ("rear", "crank"),
            ("crank", "seat"),
            ("seat", "rear"),
            ("seat", "head"),
            ("crank", "head"),
            ("head", "front"),
            ("head", "bar"),
        ):
            line = camera.front(x_m, z_m, np.array([joints[a], joints[b]]))
            canvas.stroke(line, BICYCLE, frame, 0.05 * ppm)
        return
    radius, hub_dx = sizes.MOTORCYCLE_WHEEL_RADIUS, sizes.MOTORCYCLE_HALF_WHEELBASE
    for dx in (-hub_dx, hub_dx):
        canvas.fill(
            camera.front(x_m, z_m, ellipse(dx, radius, radius, radius, 16)), MOTORCYCLE, tyre
        )
        canvas.fill(
            camera.front(x_m, z_m, ellipse(dx, radius, radius * 0.4, radius * 0.4, 10)),
            MOTORCYCLE,
            np.array([0.55, 0.55, 0.57]),
        )
    body = np.array(
        [[-0.55, 0.4], [0.55, 0.45], [0.62, 0.85], [0.25, 0.98], [-0.3, 0.92], [-0.75, 0.78]]
    ) * np.array([f, 1.0])
    canvas.fill(camera.front(x_m, z_m, body), MOTORCYCLE, frame, GRAIN["vehicle"])
    canvas.fill(
        camera.front(x_m, z_m, quad(0.55 * f, 0.9, 0.68 * f, 1.15)),
        MOTORCYCLE,
        np.array([0.9, 0.9, 0.8]),
    )
