"""One street frame: camera, street, background, depth-sorted objects, then the finish.

`render_scene` is the whole scene model in order (see the package docstring): it samples
the camera and the street, paints sky, ground, the far block and the sides, places and
draws the objects far to near, adds the ego vehicle's bonnet to Cityscapes-like frames
and finishes the canvas into the domain's photo.
"""

from __future__ import annotations

import math

import numpy as np

from omuda.data.synthetic.appearance import (
    DOMAINS,
    Look,
    domain_rates,
    domain_style,
    draws_ambiguous_look,
    finish,
)
from omuda.data.synthetic.camera import sample_camera
from omuda.data.synthetic.canvas import Canvas
from omuda.data.synthetic.layout import (
    draw_far_block,
    draw_ground,
    draw_sides,
    draw_sky,
    sample_street,
)
from omuda.data.synthetic.placement import place_objects
from omuda.data.synthetic.vehicles import draw_ego_vehicle
from omuda.errors import OmudaError


def render_scene(
    rng: np.random.Generator, domain: str, shift: float, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one street frame of `domain` ("gta", "cityscapes" or "synthia") at `shift`.

    Returns (rgb (H,W,3) uint8, train_ids (H,W) uint8 with 0..18 and 255 = ignore).
    Everything random is drawn from `rng`; the same generator state gives the same frame.
    """
    if domain not in DOMAINS:
        raise OmudaError(f"unknown domain {domain!r}; valid domains: {', '.join(DOMAINS)}")
    if not math.isfinite(shift) or shift < 0:
        raise OmudaError(f"shift must be a finite number >= 0, got {shift}")
    if height < 32 or width < 32:
        raise OmudaError(f"frames must be at least 32x32 pixels, got {width}x{height}")
    style = domain_style(domain, shift)
    rates = domain_rates(domain, shift)
    look = Look(rng, style)
    look.ambiguous = draws_ambiguous_look(rng, style)  # always the first draw
    camera = sample_camera(rng, domain, height, width)
    canvas = Canvas(height, width)
    street = sample_street(rng, rates)

    draw_sky(canvas, camera, look)
    draw_ground(canvas, camera, street, look, rng)
    if street.has_far_block:
        draw_far_block(canvas, camera, street, look, rng)
    draw_sides(canvas, camera, street, rates, look, rng)
    objects = place_objects(street, camera, rates, look, rng, canvas)
    for _, draw in sorted(objects, key=lambda item: -item[0]):
        draw()
    if domain == "cityscapes" and rng.random() < 0.75:
        draw_ego_vehicle(canvas, rng)
    return finish(canvas, style, rng), canvas.label.copy()
