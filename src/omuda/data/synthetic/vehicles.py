"""Vehicles: cars, trucks, buses and trams on the road, and the ego vehicle's bonnet.

Each draw_* function paints one vehicle seen from behind at (x_m, z_m) (its rear face at
depth z_m, its side in perspective when it is off the optical axis) and draws its own
random details from `rng`. Dimensions come from `sizes`.
"""

from __future__ import annotations

import math

import numpy as np

from omuda.data.labels import IGNORE_INDEX
from omuda.data.synthetic import sizes
from omuda.data.synthetic.appearance import GRAIN, Look
from omuda.data.synthetic.camera import Camera
from omuda.data.synthetic.canvas import (
    BUS,
    CAR,
    TRAIN,
    TRUCK,
    Canvas,
    ellipse,
    quad,
    shade,
)


def _wheel_disc(
    canvas: Canvas,
    camera: Camera,
    class_id: int,
    x_m: float,
    z_m: float,
    up: float,
    radius: float,
    side_plane: bool,
) -> None:
    """A dark wheel with a grey hub, on a side plane at x_m or facing the camera at z_m."""
    tyre, hub = np.array([0.06, 0.06, 0.07]), np.array([0.45, 0.45, 0.47])
    for r, colour in ((radius, tyre), (radius * 0.45, hub)):
        points = ellipse(z_m if side_plane else 0.0, up, r, r, 14)
        pixels = camera.side(x_m, points) if side_plane else camera.front(x_m, z_m, points)
        canvas.fill(pixels, class_id, colour)


def _vehicle_box(
    canvas: Canvas,
    camera: Camera,
    class_id: int,
    x_m: float,
    z_m: float,
    width: float,
    length: float,
    bottom: float,
    top: float,
    colour: np.ndarray,
) -> float | None:
    """A box body: the side facing the optical axis (if visible), then the near face.

    Returns the side plane's x, or None when the side is hidden.
    """
    side_x = None
    if abs(x_m) > width / 2:
        side_x = x_m - math.copysign(width / 2, x_m)
        side = quad(z_m, bottom, z_m + length, top)
        canvas.fill(camera.side(side_x, side), class_id, shade(colour, 0.82), GRAIN["vehicle"])
    face = quad(-width / 2, bottom, width / 2, top)
    canvas.fill(camera.front(x_m, z_m, face), class_id, colour, GRAIN["vehicle"])
    return side_x


def draw_car(
    canvas: Canvas, camera: Camera, x_m: float, z_m: float, look: Look, rng: np.random.Generator
) -> None:
    """A car: body, darker cabin with windows, wheels, rear lights and number plate."""
    width = rng.uniform(*sizes.CAR_WIDTH)
    height = rng.uniform(*sizes.CAR_HEIGHT)
    length = rng.uniform(*sizes.CAR_LENGTH)
    body = look.colour("car")
    glass = np.array([0.1, 0.12, 0.15]) + 0.15 * body
    waist = 0.55 * height + 0.1
    side_x = None
    if abs(x_m) > width / 2:
        side_x = x_m - math.copysign(width / 2, x_m)
        canvas.fill(
            camera.side(side_x, quad(z_m, 0.3, z_m + length, waist)),
            CAR,
            shade(body, 0.82),
            GRAIN["vehicle"],
        )
        cabin = np.array(
            [
                [z_m + 0.12 * length, waist],
                [z_m + 0.3 * length, height],
                [z_m + 0.72 * length, height],
                [z_m + 0.85 * length, waist],
            ]
        )
        canvas.fill(camera.side(side_x, cabin), CAR, shade(body, 0.75))
        window = np.array(
            [
                [z_m + 0.18 * length, waist + 0.05],
                [z_m + 0.32 * length, height - 0.07],
                [z_m + 0.7 * length, height - 0.07],
                [z_m + 0.8 * length, waist + 0.05],
            ]
        )
        canvas.fill(camera.side(side_x, window), None, glass)
        for wheel_z in (z_m + 0.75, z_m + length - 0.75):
            _wheel_disc(canvas, camera, CAR, side_x, wheel_z, 0.32, 0.32, side_plane=True)
    half = width / 2
    for dx in (-half + 0.3, half - 0.3):  # rear wheels below the bumper
        canvas.fill(
            camera.front(x_m, z_m, quad(dx - 0.13, 0.0, dx + 0.13, 0.35)),
            CAR,
            np.array([0.06, 0.06, 0.07]),
        )
    canvas.fill(camera.front(x_m, z_m, quad(-half, 0.25, half, waist)), CAR, body, GRAIN["vehicle"])
    cabin = np.array(
        [[-half * 0.9, waist], [half * 0.9, waist], [half * 0.75, height], [-half * 0.75, height]]
    )
    canvas.fill(camera.front(x_m, z_m, cabin), CAR, shade(body, 0.9))
    window = np.array(
        [
            [-half * 0.78, waist + 0.05],
            [half * 0.78, waist + 0.05],
            [half * 0.66, height - 0.06],
            [-half * 0.66, height - 0.06],
        ]
    )
    canvas.fill(camera.front(x_m, z_m, window), None, glass)
    for dx in (-half + 0.05, half - 0.3):
        canvas.fill(
            camera.front(x_m, z_m, quad(dx, waist - 0.22, dx + 0.25, waist - 0.08)),
            None,
            np.array([0.8, 0.08, 0.06]),
        )
    canvas.fill(
        camera.front(x_m, z_m, quad(-0.25, 0.38, 0.25, 0.5)), None, np.array([0.85, 0.85, 0.8])
    )


def draw_truck(
    canvas: Canvas, camera: Camera, x_m: float, z_m: float, look: Look, rng: np.random.Generator
) -> None:
    """A truck: cargo box on a chassis, with the cab ahead of it seen on the side."""
    width, box_length = rng.uniform(*sizes.TRUCK_WIDTH), rng.uniform(*sizes.TRUCK_BOX_LENGTH)
    box_top = rng.uniform(*sizes.TRUCK_BOX_HEIGHT)
    box_colour = look.colour("bus" if look.ambiguous else "truck_box")
    cab_colour = look.colour("car")
    chassis = np.array([0.12, 0.12, 0.13])
    if abs(x_m) > width / 2:  # cab ahead of the box, seen on the side
        side_x = x_m - math.copysign(width / 2, x_m)
        cab = quad(z_m + box_length, 0.5, z_m + box_length + 2.3, 2.9)
        canvas.fill(camera.side(side_x, cab), TRUCK, cab_colour, GRAIN["vehicle"])
        window = quad(z_m + box_length + 1.2, 1.8, z_m + box_length + 2.2, 2.7)
        canvas.fill(camera.side(side_x, window), None, np.array([0.12, 0.14, 0.17]))
    _vehicle_box(canvas, camera, TRUCK, x_m, z_m, width, box_length, 0.45, 1.0, chassis)
    side_x = _vehicle_box(
        canvas, camera, TRUCK, x_m, z_m, width, box_length, 1.0, box_top, box_colour
    )
    if side_x is not None:
        for wheel_z in (z_m + 1.0, z_m + 2.3, z_m + box_length + 1.5):
            _wheel_disc(canvas, camera, TRUCK, side_x, wheel_z, 0.5, 0.5, side_plane=True)
    for dx in (-width / 2 + 0.35, width / 2 - 0.35):
        canvas.fill(camera.front(x_m, z_m, quad(dx - 0.2, 0.0, dx + 0.2, 0.5)), TRUCK, chassis)
    door_line = quad(-0.03, 1.05, 0.03, box_top - 0.05)
    canvas.fill(camera.front(x_m, z_m, door_line), None, shade(box_colour, 0.6))


def draw_bus(
    canvas: Canvas, camera: Camera, x_m: float, z_m: float, look: Look, rng: np.random.Generator
) -> None:
    """A bus: a tall box with a band of side windows and a lit destination sign."""
    width, length = sizes.BUS_WIDTH, rng.uniform(*sizes.BUS_LENGTH)
    top = rng.uniform(*sizes.BUS_HEIGHT)
    colour = look.colour("bus")
    glass = np.array([0.1, 0.12, 0.16])
    side_x = _vehicle_box(canvas, camera, BUS, x_m, z_m, width, length, 0.3, top, colour)
    if side_x is not None:
        for window_z in np.arange(z_m + 0.4, z_m + length - 1.0, 1.6):
            window = quad(window_z, 1.55, window_z + 1.4, top - 0.35)
            canvas.fill(camera.side(side_x, window), None, glass)
        for wheel_z in (z_m + 2.5, z_m + length - 2.6):
            _wheel_disc(canvas, camera, BUS, side_x, wheel_z, 0.5, 0.5, side_plane=True)
    canvas.fill(camera.front(x_m, z_m, quad(-1.1, 1.8, 1.1, top - 0.25)), None, glass)
    canvas.fill(
        camera.front(x_m, z_m, quad(-1.0, top - 0.22, 1.0, top - 0.05)),
        None,
        np.array([0.95, 0.6, 0.1]),
    )
    for dx in (-1.1, 0.85):
        canvas.fill(
            camera.front(x_m, z_m, quad(dx, 0.5, dx + 0.25, 0.75)),
            None,
            np.array([0.85, 0.1, 0.06]),
        )


def draw_tram(
    canvas: Canvas, camera: Camera, x_m: float, z_m: float, look: Look, rng: np.random.Generator
) -> None:
    """A tram on the rails: a long box with side windows and a pantograph."""
    width, length = sizes.TRAM_WIDTH, rng.uniform(*sizes.TRAM_LENGTH)
    top = rng.uniform(*sizes.TRAM_HEIGHT)
    colour = look.colour("train")
    glass = np.array([0.1, 0.12, 0.16])
    side_x = _vehicle_box(canvas, camera, TRAIN, x_m, z_m, width, length, 0.35, top, colour)
    if side_x is not None:
        for window_z in np.arange(z_m + 1.0, z_m + length - 1.0, 2.2):
            window = quad(window_z, 1.2, window_z + 1.7, top - 0.5)
            canvas.fill(camera.side(side_x, window), None, glass)
    canvas.fill(camera.front(x_m, z_m, quad(-1.15, 1.3, 1.15, top - 0.3)), None, glass)
    canvas.fill(camera.front(x_m, z_m, quad(-1.3, 0.35, 1.3, 0.7)), None, shade(colour, 0.6))
    pantograph = np.array([[-0.6, top], [0.6, top], [0.1, top + 0.9], [-0.1, top + 0.9]])
    canvas.fill(camera.front(x_m, z_m, pantograph), TRAIN, np.array([0.2, 0.2, 0.2]))


def draw_ego_vehicle(canvas: Canvas, rng: np.random.Generator) -> None:
    """The bonnet of the recording car along the bottom edge; labelled ignore."""
    height, width = canvas.label.shape
    bonnet_height = height * rng.uniform(0.07, 0.15)
    xs = np.linspace(-0.05 * width, 1.05 * width, 24)
    curve = height - bonnet_height * (1.0 - 0.55 * ((xs - width / 2) / (0.55 * width)) ** 2)
    outline = np.concatenate(
        [
            np.stack([xs, curve], axis=-1),
            [[1.05 * width, height + 2.0], [-0.05 * width, height + 2.0]],
        ]
    )
    paint = np.array([0.12, 0.12, 0.13]) * rng.uniform(0.6, 2.5)
    canvas.fill(outline, IGNORE_INDEX, paint, 0.02)
    reflection = np.stack([xs, curve + bonnet_height * 0.25], axis=-1)
    canvas.stroke(reflection, None, shade(paint, 1.8), max(1.0, bonnet_height * 0.12))
