"""The street a scene stands in: its lateral layout, then sky, ground and both sides.

`sample_street` draws the road, sidewalk, terrain and facade lines in metres; the draw_*
functions paint, back to front, the sky gradient, the ground strips (road with lane
markings and tram rails, kerbed sidewalks, terrain), a block across the far end, and the
facades, tree stands, walls, fences and hedges along each side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from omuda.data.synthetic.appearance import GRAIN, Look
from omuda.data.synthetic.camera import Camera
from omuda.data.synthetic.canvas import (
    BUILDING,
    FENCE,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    VEGETATION,
    WALL,
    Canvas,
    ellipse,
    quad,
    shade,
)
from omuda.data.synthetic.palettes import (
    ROAD_COLOURS,
    SIDEWALK_COLOURS,
    SKY_HORIZON_COLOURS,
    SKY_TOP_COLOURS,
)


@dataclass
class Street:
    """Lateral layout in metres (x = 0 is the camera); left edges are negative."""

    road_left: float
    road_right: float
    sidewalk_left: float  # outer edge of the sidewalk
    sidewalk_right: float
    facade_left: float
    facade_right: float
    lanes: tuple[float, ...]  # lane centres
    far_end: float  # depth where the street ends (a block across it) or the view ends
    has_far_block: bool
    has_tram: bool


def draw_sky(canvas: Canvas, camera: Camera, look: Look) -> None:
    """Fill the whole frame with the sky: a vertical gradient down to the horizon."""
    height = canvas.label.shape[0]
    top, horizon = look.blend(SKY_TOP_COLOURS), look.blend(SKY_HORIZON_COLOURS)
    rows = np.arange(height, dtype=np.float64)
    weight = np.clip(rows / max(camera.horizon_y, 1.0), 0.0, 1.0) ** 1.4
    gradient = top[None, :] + weight[:, None] * (horizon - top)[None, :]
    canvas.rgb[:] = gradient[:, None, :].astype(np.float32)
    canvas.label[:] = SKY
    canvas.grain[:] = GRAIN["sky"]


def sample_street(rng: np.random.Generator, rates: dict[str, float]) -> Street:
    """Draw a street's widths, lanes and far end (rates: `appearance.domain_rates`)."""
    road_width = rng.uniform(7.0, 16.0)
    road_left = -road_width * rng.uniform(0.25, 0.75)
    road_right = road_left + road_width
    sidewalk_left = road_left - rng.uniform(1.8, 4.5)
    sidewalk_right = road_right + rng.uniform(1.8, 4.5)
    terrain_left = rng.uniform(2.0, 6.0) if rng.random() < rates["terrain_strip"] else 0.0
    terrain_right = rng.uniform(2.0, 6.0) if rng.random() < rates["terrain_strip"] else 0.0
    lane_count = max(1, int(road_width // 3.4))
    lane_width = road_width / lane_count
    lanes = tuple(road_left + lane_width * (k + 0.5) for k in range(lane_count))
    has_far_block = bool(rng.random() < rates["far_block"])
    far_end = rng.uniform(60.0, 180.0) if has_far_block else rng.uniform(120.0, 220.0)
    return Street(
        road_left=road_left,
        road_right=road_right,
        sidewalk_left=sidewalk_left,
        sidewalk_right=sidewalk_right,
        facade_left=sidewalk_left - terrain_left,
        facade_right=sidewalk_right + terrain_right,
        lanes=lanes,
        far_end=far_end,
        has_far_block=has_far_block,
        has_tram=bool(rng.random() < rates["train"]) and road_width > 7.5,
    )


def draw_ground(
    canvas: Canvas, camera: Camera, street: Street, look: Look, rng: np.random.Generator
) -> None:
    """Ground strips: sidewalk everywhere, terrain, kerbs, the road with its markings."""
    near, far = 0.5, 3000.0
    sidewalk = look.blend(SIDEWALK_COLOURS)
    road = look.blend(ROAD_COLOURS)
    terrain = look.colour("terrain")
    terrain_grain = GRAIN["terrain"]
    if look.ambiguous:  # the target's locally alike look: asphalt sidewalks, grassy terrain
        sidewalk = road * (1.0 + rng.normal(0.0, 0.03, 3))
        terrain = look.colour("vegetation")
        terrain_grain = GRAIN["vegetation"]
    canvas.fill(camera.ground(-400.0, 400.0, near, far), SIDEWALK, sidewalk, GRAIN["sidewalk"])
    for outer, inner in (
        (street.facade_left, street.sidewalk_left),
        (street.sidewalk_right, street.facade_right),
    ):
        if inner - outer > 0.1:
            canvas.fill(camera.ground(outer, inner, near, far), TERRAIN, terrain, terrain_grain)
    # Sidewalk slab joints and the kerb are texture of the sidewalk, not another class.
    joint = shade(sidewalk, 0.85)
    for z in np.arange(2.0, 60.0, rng.uniform(1.5, 3.0)):
        for x0, x1 in (
            (street.sidewalk_left, street.road_left),
            (street.road_right, street.sidewalk_right),
        ):
            canvas.fill(camera.ground(x0, x1, z, z + 0.08), None, joint)
    kerb = shade(sidewalk, 1.15)
    for x0 in (street.road_left - 0.2, street.road_right):
        canvas.fill(camera.ground(x0, x0 + 0.2, near, far), SIDEWALK, kerb)
    canvas.fill(
        camera.ground(street.road_left, street.road_right, near, far), ROAD, road, GRAIN["road"]
    )
    marking = look.colour("lane_marking")
    dash, gap = rng.uniform(2.0, 4.0), rng.uniform(4.0, 9.0)
    for left, right in zip(street.lanes[:-1], street.lanes[1:], strict=False):
        boundary = 0.5 * (left + right)
        for z in np.arange(rng.uniform(0.5, 3.0), 150.0, dash + gap):
            canvas.fill(camera.ground(boundary - 0.08, boundary + 0.08, z, z + dash), None, marking)
    for edge in (street.road_left + 0.3, street.road_right - 0.45):
        canvas.fill(camera.ground(edge, edge + 0.15, near, 200.0), None, shade(marking, 0.9))
    if rng.random() < 0.3:
        z0 = rng.uniform(6.0, 25.0)
        for x in np.arange(street.road_left + 0.5, street.road_right - 0.5, 1.0):
            canvas.fill(camera.ground(x, x + 0.5, z0, z0 + 3.0), None, marking)
    if street.has_tram:
        rail = shade(road, 0.55)
        centre = street.lanes[len(street.lanes) // 2]
        for x in (centre - 0.72, centre + 0.72):
            canvas.fill(camera.ground(x - 0.05, x + 0.05, near, far), None, rail)


def _draw_windows(
    canvas: Canvas,
    camera: Camera,
    plane: Callable[[np.ndarray], np.ndarray],
    start: float,
    end: float,
    height: float,
    look: Look,
    rng: np.random.Generator,
    pixels_per_metre: float,
) -> None:
    """Window grid on a facade; plane maps (along, up) metres (N,2) to pixels (N,2)."""
    own = look.uses_own()
    glass = look.colour("glass", own)
    frame_share = rng.uniform(0.45, 0.7)
    floor = rng.uniform(2.9, 3.6)
    spacing = rng.uniform(2.0, 4.0)
    ribbon = (not look.style.synthetic) and own and rng.random() < 0.5
    if ribbon:  # the target's office blocks: continuous glass bands
        frame_share = 0.97
    window_height = floor * rng.uniform(0.45, 0.65)
    if window_height * pixels_per_metre < 1.2:
        return
    lit = shade(glass, 1.6)
    length = end - start
    for up in np.arange(1.2, height - 1.0, floor):
        for along in np.arange(0.6, length - spacing * frame_share, spacing):
            a0 = start + along
            a1 = a0 + spacing * frame_share
            corners = np.array(
                [[a0, up], [a1, up], [a1, up + window_height], [a0, up + window_height]]
            )
            colour = lit if rng.random() < 0.12 else glass
            canvas.fill(plane(corners), None, colour)


def _draw_facade_segment(
    canvas: Canvas,
    camera: Camera,
    facade_x: float,
    z0: float,
    z1: float,
    look: Look,
    rng: np.random.Generator,
    vegetation: bool,
) -> None:
    """One building (or a stand of trees) on the facade plane x = facade_x between z0, z1."""
    away = -1.0 if facade_x < 0 else 1.0
    if vegetation:
        green = look.colour("vegetation")
        samples = np.linspace(z0, z1, max(3, int((z1 - z0) / 2.5)))
        tops = rng.uniform(5.0, 13.0, len(samples))
        outline = [[z0, 0.0]] + [[z, top] for z, top in zip(samples, tops, strict=True)]
        outline.append([z1, 0.0])
        canvas.fill(
            camera.side(facade_x, np.array(outline)), VEGETATION, green, GRAIN["vegetation"]
        )
        for z, top in zip(samples, tops, strict=True):
            blob = ellipse(z, top * 0.7, 1.6, top * 0.25, 12)
            canvas.fill(camera.side(facade_x, blob), VEGETATION, shade(green, 0.8))
        return
    height = rng.uniform(5.0, 22.0)
    wall_colour = look.colour("facade")
    end_face = np.array([[0.0, 0.0], [away * 14.0, 0.0], [away * 14.0, height], [0.0, height]])
    canvas.fill(
        camera.front(facade_x, z0, end_face),
        BUILDING,
        shade(wall_colour, 0.78),
        GRAIN["building"],
    )
    side = np.array([[z0, 0.0], [z1, 0.0], [z1, height], [z0, height]])
    canvas.fill(camera.side(facade_x, side), BUILDING, wall_colour, GRAIN["building"])
    if rng.random() < 0.5:  # roof cornice, a darker band
        cornice = np.array([[z0, height - 0.6], [z1, height - 0.6], [z1, height], [z0, height]])
        canvas.fill(camera.side(facade_x, cornice), BUILDING, shade(wall_colour, 0.7))
    _draw_windows(
        canvas,
        camera,
        lambda points: camera.side(facade_x, points),
        z0,
        z1,
        height,
        look,
        rng,
        camera.pixels_per_metre(z0),
    )


def draw_far_block(
    canvas: Canvas, camera: Camera, street: Street, look: Look, rng: np.random.Generator
) -> None:
    """Buildings across the end of the street, facing the camera."""
    depth = street.far_end
    x = -150.0
    while x < 150.0:
        width = rng.uniform(10.0, 30.0)
        height = rng.uniform(6.0, 22.0)
        colour = look.colour("facade")
        canvas.fill(
            camera.front(0.0, depth, quad(x, 0.0, x + width, height)),
            BUILDING,
            colour,
            GRAIN["building"],
        )
        _draw_windows(
            canvas,
            camera,
            lambda points, d=depth: camera.front(0.0, d, points),
            x,
            x + width,
            height,
            look,
            rng,
            camera.pixels_per_metre(depth),
        )
        x += width


def draw_sides(
    canvas: Canvas,
    camera: Camera,
    street: Street,
    rates: dict[str, float],
    look: Look,
    rng: np.random.Generator,
) -> None:
    """Facades, tree stands, walls, fences and hedges along both sides, far to near."""
    for facade_x in (street.facade_left, street.facade_right):
        segments = []
        z = rng.uniform(0.5, 5.0)
        while z < street.far_end:
            length = rng.uniform(6.0, 25.0)
            segments.append((z, min(z + length, street.far_end)))
            z += length
        street_side = 1.0 if facade_x < 0 else -1.0
        front_x = facade_x + street_side * 0.3
        for z0, z1 in reversed(segments):
            vegetation = bool(rng.random() < rates["vegetation_segment"])
            _draw_facade_segment(canvas, camera, facade_x, z0, z1, look, rng, vegetation)
        for z0, z1 in reversed(segments):
            roll = rng.random()
            if roll < rates["wall"]:
                height = rng.uniform(0.8, 2.5)
                colour = look.colour("facade" if look.ambiguous else "wall")
                canvas.fill(
                    camera.side(front_x, quad(z0, 0.0, z1, height)), WALL, colour, GRAIN["wall"]
                )
                canvas.fill(
                    camera.side(front_x, quad(z0, height - 0.15, z1, height)),
                    WALL,
                    shade(colour, 1.15),
                )
            elif roll < rates["wall"] + rates["fence"]:
                height = rng.uniform(1.0, 2.2)
                colour = look.colour("fence")
                canvas.mesh(
                    camera.side(front_x, quad(z0, 0.0, z1, height)), FENCE, colour, GRAIN["fence"]
                )
                for post in np.arange(z0, z1, 2.5):
                    canvas.fill(
                        camera.side(front_x, quad(post, 0.0, post + 0.12, height)),
                        FENCE,
                        shade(colour, 0.8),
                    )
                canvas.fill(camera.side(front_x, quad(z0, height - 0.1, z1, height)), FENCE, colour)
            elif roll < rates["wall"] + rates["fence"] + rates["hedge"]:
                height = rng.uniform(0.8, 1.6)
                canvas.fill(
                    camera.side(front_x, quad(z0, 0.0, z1, height)),
                    VEGETATION,
                    look.colour("vegetation"),
                    GRAIN["vegetation"],
                )
