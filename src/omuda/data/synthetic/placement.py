"""Where the depth-sorted objects of a scene stand, and how many there are.

`place_objects` draws each object's count from the domain's rates and its position in
metres (trees between kerb and facade, poles at the kerb, vehicles in their lanes or
parked, persons on the sidewalk or crossing, riders near the kerb) and returns one draw
per object for `scene.render_scene` to run far to near.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from omuda.data.synthetic import sizes
from omuda.data.synthetic.appearance import Look
from omuda.data.synthetic.camera import Camera
from omuda.data.synthetic.canvas import BICYCLE, MOTORCYCLE, PERSON, RIDER, Canvas
from omuda.data.synthetic.layout import Street
from omuda.data.synthetic.people import draw_human, draw_two_wheeler
from omuda.data.synthetic.roadside import (
    draw_streetlight,
    draw_traffic_light,
    draw_traffic_sign,
    draw_tree,
)
from omuda.data.synthetic.vehicles import draw_bus, draw_car, draw_tram, draw_truck

Draw = Callable[[], None]  # paints one object on the canvas it was bound to


def _poisson(rng: np.random.Generator, rate: float) -> int:
    """A Poisson count with mean `rate`; no draw at all when the rate is 0."""
    return int(rng.poisson(rate)) if rate > 0 else 0


def place_objects(
    street: Street,
    camera: Camera,
    rates: dict[str, float],
    look: Look,
    rng: np.random.Generator,
    canvas: Canvas,
) -> list[tuple[float, Draw]]:
    """Sample every depth-sorted object; returns (depth, draw) pairs.

    Each draw runs later, far to near, and draws its remaining details from `rng` then.
    """
    objects: list[tuple[float, Draw]] = []

    def add(depth: float, draw: Draw) -> None:
        objects.append((depth, draw))

    # (inner edge, outer edge, direction towards the road) of each sidewalk
    sidewalks = (
        (street.sidewalk_left, street.road_left, 1.0),
        (street.road_right, street.sidewalk_right, -1.0),
    )

    def sidewalk_x() -> float:
        low, high, _ = sidewalks[int(rng.integers(2))]
        return rng.uniform(low + 0.3, high - 0.3)

    def kerb_side(offset: float) -> tuple[float, float]:
        """A point `offset` metres in from the kerb, and which way the road lies."""
        low, high, toward = sidewalks[int(rng.integers(2))]
        return ((high - offset) if toward > 0 else (low + offset)), toward

    for facade_x, kerb_x in (
        (street.facade_left, street.road_left),
        (street.facade_right, street.road_right),
    ):
        inner, outer = sorted((facade_x, kerb_x))
        margin = min(1.0, (outer - inner) / 3)
        for _ in range(_poisson(rng, rates["trees_per_side"])):
            x, z = rng.uniform(inner + margin, outer - margin), rng.uniform(3.0, 53.25)
            add(z, partial(draw_tree, canvas, camera, x, z, look, rng))
    for _ in range(_poisson(rng, rates["streetlights"])):
        (x, toward), z = kerb_side(0.5), rng.uniform(4.0, 46.0)
        add(z, partial(draw_streetlight, canvas, camera, x, z, toward, look, rng))
    for _ in range(_poisson(rng, rates["traffic_lights"])):
        (x, toward), z = kerb_side(0.4), rng.uniform(6.0, 35.25)
        add(z, partial(draw_traffic_light, canvas, camera, x, z, toward, look, rng))
    for _ in range(_poisson(rng, rates["traffic_signs"])):
        (x, _toward), z = kerb_side(0.5), rng.uniform(4.0, 31.0)
        add(z, partial(draw_traffic_sign, canvas, camera, x, z, look, rng))

    tram_lane = street.lanes[len(street.lanes) // 2] if street.has_tram else None
    if tram_lane is not None:
        z = rng.uniform(12.0, 40.5)
        add(z, partial(draw_tram, canvas, camera, tram_lane, z, look, rng))
    road_lanes = [lane for lane in street.lanes if lane != tram_lane] or list(street.lanes)

    def lane_x() -> float:
        return road_lanes[int(rng.integers(len(road_lanes)))]

    for _ in range(_poisson(rng, rates["moving_cars"])):
        x, z = lane_x() + rng.normal(0.0, 0.25), rng.uniform(6.0, 46.5)
        add(z, partial(draw_car, canvas, camera, x, z, look, rng))
    for _ in range(_poisson(rng, rates["parked_cars"])):
        x = street.road_left + 1.1 if rng.random() < 0.5 else street.road_right - 1.1
        z = rng.uniform(4.0, 38.5)
        add(z, partial(draw_car, canvas, camera, x, z, look, rng))
    for _ in range(_poisson(rng, rates["trucks"])):
        x, z = lane_x(), rng.uniform(9.0, 43.5)
        add(z, partial(draw_truck, canvas, camera, x, z, look, rng))
    for _ in range(_poisson(rng, rates["buses"])):
        x, z = lane_x(), rng.uniform(9.0, 47.25)
        add(z, partial(draw_bus, canvas, camera, x, z, look, rng))

    for _ in range(_poisson(rng, rates["persons"])):
        crossing = rng.random() < 0.15
        x = rng.uniform(street.road_left, street.road_right) if crossing else sidewalk_x()
        z, height = rng.uniform(4.0, 34.75), rng.uniform(*sizes.PERSON_HEIGHT)
        add(z, partial(draw_human, canvas, camera, PERSON, x, z, height, look, rng, False, 1.0))
    for count_name, class_id in (("bicycle_riders", BICYCLE), ("motorcycle_riders", MOTORCYCLE)):
        for _ in range(_poisson(rng, rates[count_name])):
            near_left = rng.random() < 0.5
            offset = rng.uniform(0.6, 1.5)
            x = street.road_left + offset if near_left else street.road_right - offset
            facing = 1.0 if rng.random() < 0.5 else -1.0
            z, height = rng.uniform(5.0, 31.25), rng.uniform(*sizes.RIDER_HEIGHT)
            add(z, partial(draw_two_wheeler, canvas, camera, class_id, x, z, look, facing))
            # the rider is a hair nearer than the bike, so it is drawn over it
            add(
                z - 0.01,
                partial(draw_human, canvas, camera, RIDER, x, z, height, look, rng, True, facing),
            )
    for count_name, class_id in (("parked_bicycles", BICYCLE), ("parked_motorcycles", MOTORCYCLE)):
        for _ in range(_poisson(rng, rates[count_name])):
            facing = 1.0 if rng.random() < 0.5 else -1.0
            x, z = sidewalk_x(), rng.uniform(4.0, 27.25)
            add(z, partial(draw_two_wheeler, canvas, camera, class_id, x, z, look, facing))
    return objects
