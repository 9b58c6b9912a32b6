"""The embedded synthetic benchmark: procedural street scenes in the 19-class label space.

`render_scene` draws one street frame with its label; `generate_benchmark` writes a
GTA5-like source domain, a Cityscapes-like target domain and a SYNTHIA-like source domain
in the real datasets' file layouts, with raw label ids, so that the real loaders and
`omuda prepare` read them unchanged.

Scene model (the same in every domain). A pinhole camera at height h above a flat ground
looks along a straight street; every element is placed in metres and projected, so sizes
shrink with depth exactly as in a real frame (a ground point at depth Z lies f*h/Z pixels
below the horizon). Back to front: sky (blue gradient, on top); ground strips on each side
(road in the middle with lane markings and sometimes tram rails, kerbed sidewalks, grass or
earth terrain strips); a row of building facades with window grids or stands of trees
along each side and sometimes a block across the far end; walls, fences and hedges in
front of them; then, sorted by depth, trees, street lights, poles carrying traffic lights
(dark box with one lit dot) and traffic signs (disc, triangle, diamond or plate), cars
(body, darker cabin windows, wheels, side face in perspective), trucks (cab and cargo box),
buses (tall box with a window band), trams on the rails, persons (head, torso, arms, legs),
riders on bicycles or motorcycles, and parked two-wheelers. Cityscapes-like frames often
show the ego vehicle's bonnet at the bottom (ignore). SYNTHIA-like frames look from a
higher, more downward viewpoint and never contain terrain, truck or train.

Domain shift. Every component below is a continuous, monotone function of `shift` (s) and
vanishes at s = 0, where both domains are drawn from one shared appearance and rendering
model. Source domains (gta, synthia) are rendered "synthetic", the target (cityscapes)
"real":

- saturation: source x exp(0.20 s), target x exp(-0.35 s);
- contrast about the mean grey: source x exp(0.12 s), target x exp(-0.22 s);
- brightness and white balance: source brighter and warm (red gain exp(0.05 s), blue gain
  exp(-0.06 s)), target darker and cool, overcast (red exp(-0.04 s), blue exp(0.05 s));
- sharpness: source unsharp-masked with amount 0.4 (1 - exp(-s)), target Gaussian blur with
  sigma 0.45 s pixels (at 256 px width, scaled with the width);
- sensor noise: target Gaussian noise with std 0.003 + 0.012 s (of full range), source 0.003;
- vignetting: target corners darkened by min(0.6, 0.18 s);
- surface texture: per-surface grain amplitude x exp(-0.6 s) in the source (flat, clean
  surfaces) and x exp(0.4 s) in the target (worn asphalt, dirty facades, leafy trees);
- compression: target JPEG-encoded at quality clip(95 - 25 s, 20, 95) (blockiness), s > 0;
- object appearance: each object colour and facade or window style comes from the domain's
  own palette with probability 1 - exp(-1.2 s), else from the shared one (source palettes
  are vivid and wide: red, yellow, lime cars, pastel and terracotta facades, yellow lane
  lines; target palettes are muted: grey, silver, black cars, concrete and glass facades);
  sky, road and sidewalk base colours move from the shared colour towards the domain's by
  1 - exp(-s). Sky stays blue-ish, vegetation green and road grey in every domain: the
  cues that hold in every real street are never changed;
- class frequencies: each rate is the shared base rate times exp(k s) with a per-domain k,
  e.g. the target has more cars, persons and bicycles per frame, the source more
  vegetation, terrain and trucks.

Determinism: image i (0-based) of split d is drawn from
`np.random.default_rng([seed, d, i])` only (d = 0 gta, 1 cityscapes train, 2 cityscapes
val, 3 synthia), so the output bytes depend on (seed, shift, counts), never on `workers`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from omuda.data import io
from omuda.data.labels import (
    IGNORE_INDEX,
    TRAIN_ID_TO_CITYSCAPES_ID,
    TRAIN_ID_TO_SYNTHIA_ID,
)
from omuda.errors import OmudaError

DOMAINS: tuple[str, ...] = ("gta", "cityscapes", "synthia")
SOURCE_DOMAINS: tuple[str, ...] = ("gta", "synthia")

# Default frame sizes as (height, width): GTA5's 1.82 aspect, Cityscapes' 2.0, SYNTHIA's 1.68.
FRAME_SIZES: dict[str, tuple[int, int]] = {
    "gta": (176, 320),
    "cityscapes": (128, 256),
    "synthia": (190, 320),
}

CITIES: dict[str, tuple[str, ...]] = {
    "train": ("aachen", "bochum", "bremen"),
    "val": ("frankfurt", "lindau", "munster"),
}

# Raw ids written for ignored pixels: Cityscapes' "ego vehicle" (the only ignored region
# the target scenes contain is the bonnet) and "unlabeled" / SYNTHIA's "void" elsewhere.
CITYSCAPES_EGO_VEHICLE_ID = 1
UNLABELED_ID = 0

# Index of each written split in the per-image seed sequence [seed, domain_index, image].
_DOMAIN_INDEX = {("gta", ""): 0, ("cityscapes", "train"): 1, ("cityscapes", "val"): 2}
_DOMAIN_INDEX[("synthia", "")] = 3

# Train ids, named once so that the drawing code reads as the scene it draws.
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN = range(8)
VEGETATION, TERRAIN, SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN = range(8, 17)
MOTORCYCLE, BICYCLE = 17, 18
SYNTHIA_ABSENT_CLASSES: tuple[int, ...] = (TERRAIN, TRUCK, TRAIN)

_SUBPIXEL_BITS = 4  # cv2 drawing with 1/16 px vertex precision
_SUBPIXEL_SCALE = float(1 << _SUBPIXEL_BITS)

# Surface grain amplitude per surface kind before the domain's texture factor: vegetation
# is leafy and rough in every domain (a cue that holds in real streets), sky nearly smooth.
_GRAIN = {
    "sky": 0.015,
    "road": 0.07,
    "sidewalk": 0.07,
    "terrain": 0.16,
    "building": 0.06,
    "vegetation": 0.26,
    "wall": 0.07,
    "fence": 0.05,
    "metal": 0.02,
    "vehicle": 0.025,
    "person": 0.05,
}

# Colour palettes (RGB 0..255). "shared" is what every domain draws from at shift 0;
# "synthetic" and "real" are the source's and the target's own appearance distributions.
_PALETTES: dict[str, dict[str, tuple[tuple[int, int, int], ...]]] = {
    "car": {
        "shared": (
            (170, 172, 176),
            (222, 222, 220),
            (32, 32, 35),
            (82, 84, 88),
            (40, 55, 95),
            (150, 35, 35),
        ),
        "synthetic": (
            (205, 25, 20),
            (235, 195, 25),
            (240, 115, 20),
            (95, 205, 45),
            (30, 120, 225),
            (125, 45, 175),
            (225, 55, 145),
            (245, 245, 245),
        ),
        "real": (
            (160, 162, 165),
            (118, 120, 124),
            (20, 20, 23),
            (198, 198, 196),
            (30, 38, 62),
            (92, 28, 30),
            (168, 160, 142),
        ),
    },
    "truck_box": {
        "shared": ((210, 210, 205), (150, 150, 150), (60, 90, 140)),
        "synthetic": ((230, 60, 30), (245, 240, 230), (40, 170, 70), (250, 200, 30)),
        "real": ((185, 185, 182), (120, 118, 112), (70, 78, 90)),
    },
    "bus": {
        "shared": ((215, 210, 190), (200, 60, 45), (60, 110, 170)),
        "synthetic": ((235, 40, 30), (250, 205, 30), (30, 160, 90), (40, 120, 230)),
        "real": ((220, 220, 212), (210, 205, 165), (150, 160, 175)),
    },
    "train": {
        "shared": ((220, 215, 200), (190, 50, 45), (230, 200, 60)),
        "synthetic": ((245, 60, 40), (250, 220, 40), (60, 200, 230)),
        "real": ((215, 215, 210), (175, 60, 55), (200, 190, 150)),
    },
    "facade": {
        "shared": ((190, 176, 152), (142, 142, 140), (162, 112, 92)),
        "synthetic": (
            (205, 122, 80),
            (232, 212, 140),
            (222, 170, 160),
            (238, 228, 202),
            (232, 232, 226),
            (175, 72, 52),
        ),
        "real": (
            (122, 121, 118),
            (86, 86, 90),
            (166, 156, 136),
            (112, 82, 72),
            (186, 186, 180),
            (96, 110, 120),
        ),
    },
    "glass": {
        "shared": ((55, 65, 80), (70, 75, 80)),
        "synthetic": ((40, 70, 130), (90, 150, 200), (30, 40, 70)),
        "real": ((45, 48, 52), (95, 100, 105), (60, 70, 75)),
    },
    "vegetation": {
        "shared": ((72, 112, 42), (60, 98, 38)),
        "synthetic": ((86, 158, 40), (112, 166, 52), (70, 140, 60)),
        "real": ((62, 92, 46), (52, 78, 42), (78, 96, 52)),
    },
    "terrain": {
        "shared": ((112, 140, 72), (132, 112, 82)),
        "synthetic": ((132, 184, 62), (172, 162, 92), (150, 190, 80)),
        "real": ((102, 116, 72), (116, 106, 86), (122, 128, 88)),
    },
    "wall": {
        "shared": ((152, 142, 126), (128, 126, 122)),
        "synthetic": ((212, 196, 160), (190, 120, 90), (225, 225, 215)),
        "real": ((118, 114, 108), (140, 132, 120), (96, 96, 98)),
    },
    "fence": {
        "shared": ((112, 112, 112), (132, 98, 64)),
        "synthetic": ((200, 200, 200), (160, 110, 60), (40, 110, 60)),
        "real": ((86, 88, 90), (104, 90, 74), (70, 80, 72)),
    },
    "pole": {
        "shared": ((122, 122, 122), (60, 62, 64)),
        "synthetic": ((160, 160, 165), (90, 95, 100)),
        "real": ((100, 102, 104), (48, 50, 52)),
    },
    "light_housing": {
        "shared": ((32, 32, 32),),
        "synthetic": ((210, 170, 30), (25, 25, 25)),
        "real": ((28, 30, 30), (55, 58, 56)),
    },
    "clothes": {
        "shared": ((40, 40, 45), (60, 70, 110), (150, 150, 150), (120, 30, 40), (190, 180, 160)),
        "synthetic": (
            (230, 40, 40),
            (40, 180, 230),
            (250, 220, 40),
            (240, 240, 240),
            (60, 200, 90),
            (230, 120, 30),
        ),
        "real": ((30, 30, 34), (45, 52, 80), (95, 95, 98), (130, 115, 95), (80, 40, 45)),
    },
    "skin": {
        "shared": ((225, 185, 150), (190, 140, 105), (130, 90, 65)),
        "synthetic": ((240, 195, 155), (150, 100, 70)),
        "real": ((205, 170, 145), (170, 130, 105)),
    },
    "bike": {
        "shared": ((30, 30, 30), (150, 30, 30), (40, 60, 120)),
        "synthetic": ((235, 40, 40), (40, 160, 230), (250, 210, 40)),
        "real": ((40, 42, 45), (90, 92, 95), (70, 40, 40)),
    },
    "lane_marking": {
        "shared": ((225, 225, 220),),
        "synthetic": ((240, 200, 40), (245, 245, 245)),
        "real": ((200, 200, 195),),
    },
}

# Continuous base colours (RGB 0..255): shared, synthetic, real.
_SKY_TOP = ((85, 140, 210), (50, 120, 225), (128, 156, 192))
_SKY_HORIZON = ((180, 202, 230), (165, 205, 245), (196, 206, 218))
_ROAD = ((86, 86, 90), (70, 70, 74), (104, 100, 106))
_SIDEWALK = ((156, 150, 144), (182, 174, 160), (138, 134, 134))


@dataclass(frozen=True)
class _Style:
    """How one domain renders at a given shift (see the module docstring)."""

    synthetic: bool
    own_share: float  # probability that an object's look comes from the domain's palette
    colour_mix: float  # weight of the domain's own continuous base colours
    saturation: float
    contrast: float
    brightness: float
    gains: tuple[float, float, float]
    sharpen: float
    blur_sigma: float  # pixels at 256 px image width
    noise_std: float
    vignette: float
    grain_scale: float
    jpeg_quality: int | None


# Calibrated by training (docs/RESULTS.md): up to 1.4 the oracle beat source-only by at most
# ~15 mIoU (the target's blur and noise cost the oracle too), at 1.5 source-only fell to 39%
# of the oracle; 1.45 gives a gap above 15 with source-only at about half the oracle.
DEFAULT_SHIFT = 1.45


def _style(domain: str, shift: float) -> _Style:
    s = shift
    if domain in SOURCE_DOMAINS:
        return _Style(
            synthetic=True,
            own_share=1.0 - math.exp(-1.2 * s),
            colour_mix=1.0 - math.exp(-s),
            saturation=math.exp(0.20 * s),
            contrast=math.exp(0.12 * s),
            brightness=math.exp(0.06 * s),
            gains=(math.exp(0.05 * s), 1.0, math.exp(-0.06 * s)),
            sharpen=0.4 * (1.0 - math.exp(-s)),
            blur_sigma=0.0,
            noise_std=0.003,
            vignette=0.0,
            grain_scale=math.exp(-0.6 * s),
            jpeg_quality=None,
        )
    return _Style(
        synthetic=False,
        own_share=1.0 - math.exp(-1.2 * s),
        colour_mix=1.0 - math.exp(-s),
        saturation=math.exp(-0.35 * s),
        contrast=math.exp(-0.22 * s),
        brightness=math.exp(-0.08 * s),
        gains=(math.exp(-0.04 * s), 1.0, math.exp(0.05 * s)),
        sharpen=0.0,
        blur_sigma=0.45 * s,
        noise_std=0.003 + 0.012 * s,
        vignette=min(0.6, 0.18 * s),
        grain_scale=math.exp(0.4 * s),
        jpeg_quality=int(np.clip(round(95 - 25 * s), 20, 95)) if s > 0 else None,
    )


# Per-frame rates: (shared base, k for source domains, k for the target); rate = base e^(k s).
_RATE_TABLE: dict[str, tuple[float, float, float]] = {
    "moving_cars": (1.8, -0.15, 0.30),
    "parked_cars": (1.4, -0.15, 0.30),
    "trucks": (0.35, 0.25, -0.35),
    "buses": (0.30, 0.0, 0.0),
    "train": (0.25, 0.0, -0.1),  # probability of a tram on rails
    "persons": (2.2, -0.20, 0.35),
    "bicycle_riders": (0.35, -0.10, 0.20),
    "motorcycle_riders": (0.30, 0.10, -0.10),
    "parked_bicycles": (0.40, -0.10, 0.20),
    "parked_motorcycles": (0.25, 0.10, -0.10),
    "trees_per_side": (2.2, 0.25, -0.15),
    "vegetation_segment": (0.30, 0.30, -0.15),  # probability per facade segment
    "terrain_strip": (0.50, 0.20, -0.10),  # probability per side
    "streetlights": (1.8, 0.0, 0.0),
    "traffic_lights": (1.0, 0.0, 0.10),
    "traffic_signs": (1.4, 0.0, 0.10),
    "wall": (0.18, 0.0, 0.0),  # probability per facade segment
    "fence": (0.18, 0.0, 0.0),
    "hedge": (0.15, 0.10, -0.10),
    "far_block": (0.4, 0.0, 0.0),
}


def _rates(domain: str, shift: float) -> dict[str, float]:
    """Expected counts per frame (probabilities for the names noted in the table)."""
    column = 1 if domain in SOURCE_DOMAINS else 2
    rates = {name: row[0] * math.exp(row[column] * shift) for name, row in _RATE_TABLE.items()}
    for name in ("train", "vegetation_segment", "terrain_strip", "wall", "fence", "hedge"):
        rates[name] = min(rates[name], 0.9)
    if domain == "synthia":
        rates["trucks"] = rates["train"] = rates["terrain_strip"] = 0.0
    return rates


@dataclass(frozen=True)
class _Camera:
    """Pinhole camera over flat ground; x to the right, up, z (depth) forward, in metres."""

    focal: float  # pixels
    height_m: float
    horizon_y: float
    center_x: float

    def project(self, x_m: np.ndarray, up_m: np.ndarray, z_m: np.ndarray) -> np.ndarray:
        """World points (N,) each -> (N,2) float pixel coordinates (x, y)."""
        z_m = np.maximum(np.asarray(z_m, dtype=np.float64), 0.05)
        px = self.center_x + self.focal * np.asarray(x_m, dtype=np.float64) / z_m
        py = (
            self.horizon_y + self.focal * (self.height_m - np.asarray(up_m, dtype=np.float64)) / z_m
        )
        return np.stack(np.broadcast_arrays(px, py), axis=-1)

    def front(self, x_m: float, z_m: float, local: np.ndarray) -> np.ndarray:
        """Points (N,2) of (dx, up) metres on the plane facing the camera at depth z_m."""
        local = np.asarray(local, dtype=np.float64)
        return self.project(x_m + local[:, 0], local[:, 1], np.full(len(local), z_m))

    def side(self, x_m: float, local: np.ndarray) -> np.ndarray:
        """Points (N,2) of (z, up) metres on the street-parallel plane at lateral x_m."""
        local = np.asarray(local, dtype=np.float64)
        return self.project(np.full(len(local), x_m), local[:, 1], local[:, 0])

    def ground(self, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
        """The ground rectangle [x0,x1] x [z0,z1] as a (4,2) pixel polygon."""
        return self.project(np.array([x0, x1, x1, x0]), np.zeros(4), np.array([z0, z0, z1, z1]))

    def pixels_per_metre(self, z_m: float) -> float:
        return self.focal / max(z_m, 0.05)


def _fixed_point(points: np.ndarray) -> np.ndarray:
    """Float pixel points (N,2) -> int32 cv2 points with _SUBPIXEL_BITS fractional bits."""
    clipped = np.clip(points, -1.0e6, 1.0e6)
    return np.round(clipped * _SUBPIXEL_SCALE).astype(np.int32)


def _ellipse(cx: float, cy: float, rx: float, ry: float, count: int = 20) -> np.ndarray:
    """Polygon (count,2) approximating an axis-aligned ellipse, in any units."""
    angles = np.linspace(0.0, 2.0 * math.pi, count, endpoint=False)
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=-1)


def _quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Axis-aligned rectangle (4,2) from two corners, in any units."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


class _Canvas:
    """Image, label and grain-amplitude maps painted together, so they always agree.

    rgb (H,W,3) float32 in [0,1]; label (H,W) uint8 train ids, 255 = ignore; grain (H,W)
    float32 surface texture amplitude used when the frame is finished.
    """

    def __init__(self, height: int, width: int) -> None:
        self.rgb = np.zeros((height, width, 3), dtype=np.float32)
        self.label = np.full((height, width), IGNORE_INDEX, dtype=np.uint8)
        self.grain = np.zeros((height, width), dtype=np.float32)
        self.rows, self.cols = np.indices((height, width))

    def fill(
        self,
        points: np.ndarray,
        class_id: int | None,
        colour: np.ndarray,
        grain: float | None = None,
    ) -> None:
        """Fill a pixel polygon (N,2); class_id None paints the image only (detail)."""
        polygon = [_fixed_point(points)]
        cv2.fillPoly(self.rgb, polygon, tuple(float(c) for c in colour), cv2.LINE_8, _SUBPIXEL_BITS)
        if class_id is not None:
            cv2.fillPoly(self.label, polygon, int(class_id), cv2.LINE_8, _SUBPIXEL_BITS)
        if grain is not None:
            cv2.fillPoly(self.grain, polygon, float(grain), cv2.LINE_8, _SUBPIXEL_BITS)

    def stroke(
        self,
        points: np.ndarray,
        class_id: int | None,
        colour: np.ndarray,
        thickness: float,
        closed: bool = False,
    ) -> None:
        """Draw a polyline (N,2) of the given pixel thickness (at least 1)."""
        polyline = [_fixed_point(points)]
        width = max(1, round(thickness))
        cv2.polylines(
            self.rgb,
            polyline,
            closed,
            tuple(float(c) for c in colour),
            width,
            cv2.LINE_8,
            _SUBPIXEL_BITS,
        )
        if class_id is not None:
            cv2.polylines(
                self.label, polyline, closed, int(class_id), width, cv2.LINE_8, _SUBPIXEL_BITS
            )

    def mesh(self, points: np.ndarray, class_id: int, colour: np.ndarray, grain: float) -> None:
        """A see-through fence: the polygon's label is the class, its image a wire mesh over
        whatever was drawn behind it."""
        mask = np.zeros(self.label.shape, dtype=np.uint8)
        cv2.fillPoly(mask, [_fixed_point(points)], 1, cv2.LINE_8, _SUBPIXEL_BITS)
        inside = mask.astype(bool)
        wires = ((self.rows + self.cols) % 3 == 0) | ((self.rows - self.cols) % 3 == 0)
        self.rgb[inside] = 0.6 * self.rgb[inside] + 0.4 * colour * 0.7
        self.rgb[inside & wires] = colour
        self.label[inside] = class_id
        self.grain[inside] = grain


class _Look:
    """Draws object colours: the domain's own palette with probability own_share."""

    def __init__(self, rng: np.random.Generator, style: _Style) -> None:
        self.rng = rng
        self.style = style
        self.own_palette = "synthetic" if style.synthetic else "real"
        self.jitter = 0.09 if style.synthetic else 0.05

    def uses_own(self) -> bool:
        return bool(self.rng.random() < self.style.own_share)

    def colour(self, name: str, own: bool | None = None) -> np.ndarray:
        """A (3,) float colour in [0,1] from palette `name`, with a small random jitter."""
        own = self.uses_own() if own is None else own
        choices = _PALETTES[name][self.own_palette if own else "shared"]
        base = np.asarray(choices[int(self.rng.integers(len(choices)))], dtype=np.float64)
        jitter = 1.0 + self.rng.normal(0.0, self.jitter, 3)
        return np.clip(base / 255.0 * jitter, 0.0, 1.0)

    def blend(self, triple: tuple[tuple[int, int, int], ...], spread: float = 0.04) -> np.ndarray:
        """A continuous base colour: shared moved towards the domain's own by colour_mix."""
        shared = np.asarray(triple[0], dtype=np.float64)
        own = np.asarray(triple[1 if self.style.synthetic else 2], dtype=np.float64)
        mixed = shared + self.style.colour_mix * (own - shared)
        return np.clip(mixed / 255.0 * (1.0 + self.rng.normal(0.0, spread)), 0.0, 1.0)


@dataclass
class _Street:
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


_Draw = Callable[[], None]


def _shade(colour: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(colour * factor, 0.0, 1.0)


def _poisson(rng: np.random.Generator, rate: float) -> int:
    return int(rng.poisson(rate)) if rate > 0 else 0


# ---------------------------------------------------------------------------------------
# Background: sky, ground, facades


def _draw_sky(canvas: _Canvas, camera: _Camera, look: _Look) -> None:
    height = canvas.label.shape[0]
    top, horizon = look.blend(_SKY_TOP), look.blend(_SKY_HORIZON)
    rows = np.arange(height, dtype=np.float64)
    weight = np.clip(rows / max(camera.horizon_y, 1.0), 0.0, 1.0) ** 1.4
    gradient = top[None, :] + weight[:, None] * (horizon - top)[None, :]
    canvas.rgb[:] = gradient[:, None, :].astype(np.float32)
    canvas.label[:] = SKY
    canvas.grain[:] = _GRAIN["sky"]


def _sample_street(rng: np.random.Generator, rates: dict[str, float]) -> _Street:
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
    return _Street(
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


def _draw_ground(
    canvas: _Canvas, camera: _Camera, street: _Street, look: _Look, rng: np.random.Generator
) -> None:
    near, far = 0.5, 3000.0
    sidewalk = look.blend(_SIDEWALK)
    road = look.blend(_ROAD)
    terrain = look.colour("terrain")
    canvas.fill(camera.ground(-400.0, 400.0, near, far), SIDEWALK, sidewalk, _GRAIN["sidewalk"])
    for outer, inner in (
        (street.facade_left, street.sidewalk_left),
        (street.sidewalk_right, street.facade_right),
    ):
        if inner - outer > 0.1:
            canvas.fill(camera.ground(outer, inner, near, far), TERRAIN, terrain, _GRAIN["terrain"])
    # Sidewalk slab joints and the kerb are texture of the sidewalk, not another class.
    joint = _shade(sidewalk, 0.85)
    for z in np.arange(2.0, 60.0, rng.uniform(1.5, 3.0)):
        for x0, x1 in (
            (street.sidewalk_left, street.road_left),
            (street.road_right, street.sidewalk_right),
        ):
            canvas.fill(camera.ground(x0, x1, z, z + 0.08), None, joint)
    kerb = _shade(sidewalk, 1.15)
    for x0 in (street.road_left - 0.2, street.road_right):
        canvas.fill(camera.ground(x0, x0 + 0.2, near, far), SIDEWALK, kerb)
    canvas.fill(
        camera.ground(street.road_left, street.road_right, near, far), ROAD, road, _GRAIN["road"]
    )
    marking = look.colour("lane_marking")
    dash, gap = rng.uniform(2.0, 4.0), rng.uniform(4.0, 9.0)
    for left, right in zip(street.lanes[:-1], street.lanes[1:], strict=False):
        boundary = 0.5 * (left + right)
        for z in np.arange(rng.uniform(0.5, 3.0), 150.0, dash + gap):
            canvas.fill(camera.ground(boundary - 0.08, boundary + 0.08, z, z + dash), None, marking)
    for edge in (street.road_left + 0.3, street.road_right - 0.45):
        canvas.fill(camera.ground(edge, edge + 0.15, near, 200.0), None, _shade(marking, 0.9))
    if rng.random() < 0.3:
        z0 = rng.uniform(6.0, 25.0)
        for x in np.arange(street.road_left + 0.5, street.road_right - 0.5, 1.0):
            canvas.fill(camera.ground(x, x + 0.5, z0, z0 + 3.0), None, marking)
    if street.has_tram:
        rail = _shade(road, 0.55)
        centre = street.lanes[len(street.lanes) // 2]
        for x in (centre - 0.72, centre + 0.72):
            canvas.fill(camera.ground(x - 0.05, x + 0.05, near, far), None, rail)


def _draw_windows(
    canvas: _Canvas,
    camera: _Camera,
    plane: Callable[[np.ndarray], np.ndarray],
    start: float,
    end: float,
    height: float,
    look: _Look,
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
    lit = _shade(glass, 1.6)
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
    canvas: _Canvas,
    camera: _Camera,
    facade_x: float,
    z0: float,
    z1: float,
    look: _Look,
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
            camera.side(facade_x, np.array(outline)), VEGETATION, green, _GRAIN["vegetation"]
        )
        for z, top in zip(samples, tops, strict=True):
            blob = _ellipse(z, top * 0.7, 1.6, top * 0.25, 12)
            canvas.fill(camera.side(facade_x, blob), VEGETATION, _shade(green, 0.8))
        return
    height = rng.uniform(5.0, 22.0)
    wall_colour = look.colour("facade")
    end_face = np.array([[0.0, 0.0], [away * 14.0, 0.0], [away * 14.0, height], [0.0, height]])
    canvas.fill(
        camera.front(facade_x, z0, end_face),
        BUILDING,
        _shade(wall_colour, 0.78),
        _GRAIN["building"],
    )
    side = np.array([[z0, 0.0], [z1, 0.0], [z1, height], [z0, height]])
    canvas.fill(camera.side(facade_x, side), BUILDING, wall_colour, _GRAIN["building"])
    if rng.random() < 0.5:  # roof cornice, a darker band
        cornice = np.array([[z0, height - 0.6], [z1, height - 0.6], [z1, height], [z0, height]])
        canvas.fill(camera.side(facade_x, cornice), BUILDING, _shade(wall_colour, 0.7))
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


def _draw_far_block(
    canvas: _Canvas, camera: _Camera, street: _Street, look: _Look, rng: np.random.Generator
) -> None:
    """Buildings across the end of the street, facing the camera."""
    depth = street.far_end
    x = -150.0
    while x < 150.0:
        width = rng.uniform(10.0, 30.0)
        height = rng.uniform(6.0, 22.0)
        colour = look.colour("facade")
        canvas.fill(
            camera.front(0.0, depth, _quad(x, 0.0, x + width, height)),
            BUILDING,
            colour,
            _GRAIN["building"],
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


def _draw_sides(
    canvas: _Canvas,
    camera: _Camera,
    street: _Street,
    rates: dict[str, float],
    look: _Look,
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
                colour = look.colour("wall")
                canvas.fill(
                    camera.side(front_x, _quad(z0, 0.0, z1, height)), WALL, colour, _GRAIN["wall"]
                )
                canvas.fill(
                    camera.side(front_x, _quad(z0, height - 0.15, z1, height)),
                    WALL,
                    _shade(colour, 1.15),
                )
            elif roll < rates["wall"] + rates["fence"]:
                height = rng.uniform(1.0, 2.2)
                colour = look.colour("fence")
                canvas.mesh(
                    camera.side(front_x, _quad(z0, 0.0, z1, height)), FENCE, colour, _GRAIN["fence"]
                )
                for post in np.arange(z0, z1, 2.5):
                    canvas.fill(
                        camera.side(front_x, _quad(post, 0.0, post + 0.12, height)),
                        FENCE,
                        _shade(colour, 0.8),
                    )
                canvas.fill(
                    camera.side(front_x, _quad(z0, height - 0.1, z1, height)), FENCE, colour
                )
            elif roll < rates["wall"] + rates["fence"] + rates["hedge"]:
                height = rng.uniform(0.8, 1.6)
                canvas.fill(
                    camera.side(front_x, _quad(z0, 0.0, z1, height)),
                    VEGETATION,
                    look.colour("vegetation"),
                    _GRAIN["vegetation"],
                )


# ---------------------------------------------------------------------------------------
# Depth-sorted objects: trees, poles, vehicles, people


def _pole_width(camera: _Camera, z_m: float, width_m: float) -> float:
    """Widen thin poles far away so they keep at least one pixel."""
    return max(width_m, 1.1 / camera.pixels_per_metre(z_m))


def _tree(
    canvas: _Canvas, camera: _Camera, x_m: float, z_m: float, look: _Look, rng: np.random.Generator
) -> None:
    trunk_height = rng.uniform(1.8, 4.0)
    radius = rng.uniform(1.4, 3.5)
    trunk_width = _pole_width(camera, z_m, rng.uniform(0.2, 0.4))
    trunk = _quad(-trunk_width / 2, 0.0, trunk_width / 2, trunk_height + radius * 0.5)
    canvas.fill(
        camera.front(x_m, z_m, trunk),
        VEGETATION,
        np.array([0.32, 0.24, 0.17]),
        _GRAIN["vegetation"],
    )
    green = look.colour("vegetation")
    centre_up = trunk_height + radius * 0.8
    for _ in range(int(rng.integers(3, 6))):
        dx, dy = rng.normal(0.0, radius * 0.35, 2)
        blob = _ellipse(
            dx, centre_up + dy, radius * rng.uniform(0.6, 0.9), radius * rng.uniform(0.5, 0.8), 16
        )
        canvas.fill(
            camera.front(x_m, z_m, blob),
            VEGETATION,
            _shade(green, rng.uniform(0.8, 1.1)),
            _GRAIN["vegetation"],
        )


def _pole(
    canvas: _Canvas,
    camera: _Camera,
    x_m: float,
    z_m: float,
    height: float,
    colour: np.ndarray,
    width_m: float = 0.18,
) -> None:
    width = _pole_width(camera, z_m, width_m)
    canvas.fill(
        camera.front(x_m, z_m, _quad(-width / 2, 0.0, width / 2, height)),
        POLE,
        colour,
        _GRAIN["metal"],
    )


def _arm(
    canvas: _Canvas,
    camera: _Camera,
    x_m: float,
    z_m: float,
    length: float,
    up: float,
    colour: np.ndarray,
) -> None:
    """A horizontal pole arm reaching `length` metres sideways (negative = to the left)."""
    thickness = _pole_width(camera, z_m, 0.14)
    canvas.fill(camera.front(x_m, z_m, _quad(0.0, up - thickness, length, up)), POLE, colour)


def _streetlight(
    canvas: _Canvas,
    camera: _Camera,
    x_m: float,
    z_m: float,
    toward_road: float,
    look: _Look,
    rng: np.random.Generator,
) -> None:
    colour = look.colour("pole")
    height = rng.uniform(6.0, 9.0)
    _pole(canvas, camera, x_m, z_m, height, colour, 0.2)
    reach = toward_road * rng.uniform(1.0, 2.5)
    _arm(canvas, camera, x_m, z_m, reach, height, colour)
    lamp = _quad(reach - 0.35 * toward_road, height - 0.25, reach + 0.1 * toward_road, height)
    canvas.fill(camera.front(x_m, z_m, lamp), POLE, _shade(colour, 0.8))


def _traffic_light(
    canvas: _Canvas,
    camera: _Camera,
    x_m: float,
    z_m: float,
    toward_road: float,
    look: _Look,
    rng: np.random.Generator,
) -> None:
    pole_colour = look.colour("pole")
    height = rng.uniform(3.2, 6.5)
    _pole(canvas, camera, x_m, z_m, height, pole_colour)
    centre_x, box_top = 0.0, height + 0.9
    if height > 4.5:  # hanging over the road from an arm
        centre_x = toward_road * rng.uniform(2.0, 5.0)
        _arm(canvas, camera, x_m, z_m, centre_x, height, pole_colour)
        box_top = height
    box_bottom = box_top - 0.95
    housing = look.colour("light_housing")
    canvas.fill(
        camera.front(x_m, z_m, _quad(centre_x - 0.18, box_bottom, centre_x + 0.18, box_top)),
        TRAFFIC_LIGHT,
        housing,
        _GRAIN["metal"],
    )
    lit_index = int(rng.integers(3))
    lamp_colours = ((1.0, 0.12, 0.05), (1.0, 0.7, 0.05), (0.15, 1.0, 0.45))
    for index in range(3):
        centre_up = box_top - 0.17 - index * 0.3
        colour = np.array(lamp_colours[index]) * (1.0 if index == lit_index else 0.25)
        disc = _ellipse(centre_x, centre_up, 0.11, 0.11, 10)
        canvas.fill(camera.front(x_m, z_m, disc), TRAFFIC_LIGHT, colour)


def _traffic_sign(
    canvas: _Canvas, camera: _Camera, x_m: float, z_m: float, look: _Look, rng: np.random.Generator
) -> None:
    height = rng.uniform(2.0, 2.8)
    _pole(canvas, camera, x_m, z_m, height, look.colour("pole"), 0.1)
    size = rng.uniform(0.55, 0.85)
    centre_up = height + size * 0.45
    kind = int(rng.integers(5))
    red, white = np.array([0.85, 0.1, 0.1]), np.array([0.95, 0.95, 0.95])
    blue, yellow = np.array([0.1, 0.3, 0.75]), np.array([0.98, 0.8, 0.1])
    half = size / 2
    if kind == 0:  # prohibition disc: red rim, white face
        outer, inner = (
            _ellipse(0, centre_up, half, half, 16),
            _ellipse(0, centre_up, half * 0.7, half * 0.7, 16),
        )
        rim, face = red, white
    elif kind == 1:  # mandatory disc: all blue with a white mark
        outer = _ellipse(0, centre_up, half, half, 16)
        inner = _quad(-half * 0.15, centre_up - half * 0.5, half * 0.15, centre_up + half * 0.5)
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
        outer = _quad(-half, centre_up - half * 0.7, half, centre_up + half * 0.7)
        inner = _quad(-half * 0.8, centre_up - half * 0.5, half * 0.8, centre_up + half * 0.5)
        rim, face = white, blue if rng.random() < 0.6 else yellow
    canvas.fill(camera.front(x_m, z_m, outer), TRAFFIC_SIGN, rim, _GRAIN["metal"])
    canvas.fill(camera.front(x_m, z_m, inner), None, face)


def _wheel_disc(
    canvas: _Canvas,
    camera: _Camera,
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
        points = _ellipse(z_m if side_plane else 0.0, up, r, r, 14)
        pixels = camera.side(x_m, points) if side_plane else camera.front(x_m, z_m, points)
        canvas.fill(pixels, class_id, colour)


def _vehicle_box(
    canvas: _Canvas,
    camera: _Camera,
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
        side = _quad(z_m, bottom, z_m + length, top)
        canvas.fill(camera.side(side_x, side), class_id, _shade(colour, 0.82), _GRAIN["vehicle"])
    face = _quad(-width / 2, bottom, width / 2, top)
    canvas.fill(camera.front(x_m, z_m, face), class_id, colour, _GRAIN["vehicle"])
    return side_x


def _car(
    canvas: _Canvas, camera: _Camera, x_m: float, z_m: float, look: _Look, rng: np.random.Generator
) -> None:
    width, height, length = rng.uniform(1.65, 1.95), rng.uniform(1.35, 1.6), rng.uniform(3.9, 4.8)
    body = look.colour("car")
    glass = np.array([0.1, 0.12, 0.15]) + 0.15 * body
    waist = 0.55 * height + 0.1
    side_x = None
    if abs(x_m) > width / 2:
        side_x = x_m - math.copysign(width / 2, x_m)
        canvas.fill(
            camera.side(side_x, _quad(z_m, 0.3, z_m + length, waist)),
            CAR,
            _shade(body, 0.82),
            _GRAIN["vehicle"],
        )
        cabin = np.array(
            [
                [z_m + 0.12 * length, waist],
                [z_m + 0.3 * length, height],
                [z_m + 0.72 * length, height],
                [z_m + 0.85 * length, waist],
            ]
        )
        canvas.fill(camera.side(side_x, cabin), CAR, _shade(body, 0.75))
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
            camera.front(x_m, z_m, _quad(dx - 0.13, 0.0, dx + 0.13, 0.35)),
            CAR,
            np.array([0.06, 0.06, 0.07]),
        )
    canvas.fill(
        camera.front(x_m, z_m, _quad(-half, 0.25, half, waist)), CAR, body, _GRAIN["vehicle"]
    )
    cabin = np.array(
        [[-half * 0.9, waist], [half * 0.9, waist], [half * 0.75, height], [-half * 0.75, height]]
    )
    canvas.fill(camera.front(x_m, z_m, cabin), CAR, _shade(body, 0.9))
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
            camera.front(x_m, z_m, _quad(dx, waist - 0.22, dx + 0.25, waist - 0.08)),
            None,
            np.array([0.8, 0.08, 0.06]),
        )
    canvas.fill(
        camera.front(x_m, z_m, _quad(-0.25, 0.38, 0.25, 0.5)), None, np.array([0.85, 0.85, 0.8])
    )


def _truck(
    canvas: _Canvas, camera: _Camera, x_m: float, z_m: float, look: _Look, rng: np.random.Generator
) -> None:
    width, box_length = rng.uniform(2.3, 2.55), rng.uniform(5.5, 9.0)
    box_top = rng.uniform(3.2, 3.9)
    box_colour, cab_colour = look.colour("truck_box"), look.colour("car")
    chassis = np.array([0.12, 0.12, 0.13])
    if abs(x_m) > width / 2:  # cab ahead of the box, seen on the side
        side_x = x_m - math.copysign(width / 2, x_m)
        cab = _quad(z_m + box_length, 0.5, z_m + box_length + 2.3, 2.9)
        canvas.fill(camera.side(side_x, cab), TRUCK, cab_colour, _GRAIN["vehicle"])
        window = _quad(z_m + box_length + 1.2, 1.8, z_m + box_length + 2.2, 2.7)
        canvas.fill(camera.side(side_x, window), None, np.array([0.12, 0.14, 0.17]))
    _vehicle_box(canvas, camera, TRUCK, x_m, z_m, width, box_length, 0.45, 1.0, chassis)
    side_x = _vehicle_box(
        canvas, camera, TRUCK, x_m, z_m, width, box_length, 1.0, box_top, box_colour
    )
    if side_x is not None:
        for wheel_z in (z_m + 1.0, z_m + 2.3, z_m + box_length + 1.5):
            _wheel_disc(canvas, camera, TRUCK, side_x, wheel_z, 0.5, 0.5, side_plane=True)
    for dx in (-width / 2 + 0.35, width / 2 - 0.35):
        canvas.fill(camera.front(x_m, z_m, _quad(dx - 0.2, 0.0, dx + 0.2, 0.5)), TRUCK, chassis)
    door_line = _quad(-0.03, 1.05, 0.03, box_top - 0.05)
    canvas.fill(camera.front(x_m, z_m, door_line), None, _shade(box_colour, 0.6))


def _bus(
    canvas: _Canvas, camera: _Camera, x_m: float, z_m: float, look: _Look, rng: np.random.Generator
) -> None:
    width, length, top = 2.55, rng.uniform(11.0, 14.0), rng.uniform(3.0, 3.4)
    colour = look.colour("bus")
    glass = np.array([0.1, 0.12, 0.16])
    side_x = _vehicle_box(canvas, camera, BUS, x_m, z_m, width, length, 0.3, top, colour)
    if side_x is not None:
        for window_z in np.arange(z_m + 0.4, z_m + length - 1.0, 1.6):
            window = _quad(window_z, 1.55, window_z + 1.4, top - 0.35)
            canvas.fill(camera.side(side_x, window), None, glass)
        for wheel_z in (z_m + 2.5, z_m + length - 2.6):
            _wheel_disc(canvas, camera, BUS, side_x, wheel_z, 0.5, 0.5, side_plane=True)
    canvas.fill(camera.front(x_m, z_m, _quad(-1.1, 1.8, 1.1, top - 0.25)), None, glass)
    canvas.fill(
        camera.front(x_m, z_m, _quad(-1.0, top - 0.22, 1.0, top - 0.05)),
        None,
        np.array([0.95, 0.6, 0.1]),
    )
    for dx in (-1.1, 0.85):
        canvas.fill(
            camera.front(x_m, z_m, _quad(dx, 0.5, dx + 0.25, 0.75)),
            None,
            np.array([0.85, 0.1, 0.06]),
        )


def _tram(
    canvas: _Canvas, camera: _Camera, x_m: float, z_m: float, look: _Look, rng: np.random.Generator
) -> None:
    width, length, top = 2.65, rng.uniform(25.0, 35.0), rng.uniform(3.4, 3.7)
    colour = look.colour("train")
    glass = np.array([0.1, 0.12, 0.16])
    side_x = _vehicle_box(canvas, camera, TRAIN, x_m, z_m, width, length, 0.35, top, colour)
    if side_x is not None:
        for window_z in np.arange(z_m + 1.0, z_m + length - 1.0, 2.2):
            window = _quad(window_z, 1.2, window_z + 1.7, top - 0.5)
            canvas.fill(camera.side(side_x, window), None, glass)
    canvas.fill(camera.front(x_m, z_m, _quad(-1.15, 1.3, 1.15, top - 0.3)), None, glass)
    canvas.fill(camera.front(x_m, z_m, _quad(-1.3, 0.35, 1.3, 0.7)), None, _shade(colour, 0.6))
    pantograph = np.array([[-0.6, top], [0.6, top], [0.1, top + 0.9], [-0.1, top + 0.9]])
    canvas.fill(camera.front(x_m, z_m, pantograph), TRAIN, np.array([0.2, 0.2, 0.2]))


def _limb(start: tuple[float, float], end: tuple[float, float], width: float) -> np.ndarray:
    """A quad of `width` metres along the segment start -> end, as (4,2) (dx, up)."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    nx, ny = -(y1 - y0) / length * width / 2, (x1 - x0) / length * width / 2
    return np.array(
        [[x0 + nx, y0 + ny], [x1 + nx, y1 + ny], [x1 - nx, y1 - ny], [x0 - nx, y0 - ny]]
    )


def _human(
    canvas: _Canvas,
    camera: _Camera,
    class_id: int,
    x_m: float,
    z_m: float,
    height: float,
    look: _Look,
    rng: np.random.Generator,
    seated: bool,
    facing: float,
) -> None:
    """A person (standing) or a rider (seated, leaning towards `facing` = +-1)."""
    s = height / 1.75
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
        canvas.fill(camera.front(x_m, z_m, scaled), class_id, colour, _GRAIN["person"])
    head_points = _ellipse(head[0] * s, head[1] * s, 0.1 * s, 0.125 * s, 14)
    canvas.fill(camera.front(x_m, z_m, head_points), class_id, skin, _GRAIN["person"])
    hair_points = _ellipse(head[0] * s, head[1] * s + 0.06 * s, 0.1 * s, 0.07 * s, 12)
    canvas.fill(camera.front(x_m, z_m, hair_points), class_id, hair)


def _two_wheeler(
    canvas: _Canvas,
    camera: _Camera,
    class_id: int,
    x_m: float,
    z_m: float,
    look: _Look,
    facing: float,
) -> None:
    """A bicycle (thin rings and frame) or a motorcycle (thick wheels and a body), side view."""
    ppm = camera.pixels_per_metre(z_m)
    frame = look.colour("bike")
    tyre = np.array([0.05, 0.05, 0.06])
    f = facing
    if class_id == BICYCLE:
        radius, hub_dx = 0.34, 0.55
        for dx in (-hub_dx, hub_dx):
            ring = camera.front(x_m, z_m, _ellipse(dx, radius, radius, radius, 16))
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
    radius, hub_dx = 0.32, 0.7
    for dx in (-hub_dx, hub_dx):
        canvas.fill(
            camera.front(x_m, z_m, _ellipse(dx, radius, radius, radius, 16)), MOTORCYCLE, tyre
        )
        canvas.fill(
            camera.front(x_m, z_m, _ellipse(dx, radius, radius * 0.4, radius * 0.4, 10)),
            MOTORCYCLE,
            np.array([0.55, 0.55, 0.57]),
        )
    body = np.array(
        [[-0.55, 0.4], [0.55, 0.45], [0.62, 0.85], [0.25, 0.98], [-0.3, 0.92], [-0.75, 0.78]]
    ) * np.array([f, 1.0])
    canvas.fill(camera.front(x_m, z_m, body), MOTORCYCLE, frame, _GRAIN["vehicle"])
    canvas.fill(
        camera.front(x_m, z_m, _quad(0.55 * f, 0.9, 0.68 * f, 1.15)),
        MOTORCYCLE,
        np.array([0.9, 0.9, 0.8]),
    )


def _place_objects(
    street: _Street,
    camera: _Camera,
    rates: dict[str, float],
    look: _Look,
    rng: np.random.Generator,
    canvas: _Canvas,
) -> list[tuple[float, _Draw]]:
    """Sample every depth-sorted object; returns (depth, draw) pairs.

    Each draw runs later, far to near, and draws its remaining details from `rng` then.
    """
    objects: list[tuple[float, _Draw]] = []

    def add(depth: float, draw: _Draw) -> None:
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
            x, z = rng.uniform(inner + margin, outer - margin), rng.uniform(3.0, 70.0)
            add(z, partial(_tree, canvas, camera, x, z, look, rng))
    for _ in range(_poisson(rng, rates["streetlights"])):
        (x, toward), z = kerb_side(0.5), rng.uniform(4.0, 60.0)
        add(z, partial(_streetlight, canvas, camera, x, z, toward, look, rng))
    for _ in range(_poisson(rng, rates["traffic_lights"])):
        (x, toward), z = kerb_side(0.4), rng.uniform(6.0, 45.0)
        add(z, partial(_traffic_light, canvas, camera, x, z, toward, look, rng))
    for _ in range(_poisson(rng, rates["traffic_signs"])):
        (x, _toward), z = kerb_side(0.5), rng.uniform(4.0, 40.0)
        add(z, partial(_traffic_sign, canvas, camera, x, z, look, rng))

    tram_lane = street.lanes[len(street.lanes) // 2] if street.has_tram else None
    if tram_lane is not None:
        z = rng.uniform(12.0, 50.0)
        add(z, partial(_tram, canvas, camera, tram_lane, z, look, rng))
    road_lanes = [lane for lane in street.lanes if lane != tram_lane] or list(street.lanes)

    def lane_x() -> float:
        return road_lanes[int(rng.integers(len(road_lanes)))]

    for _ in range(_poisson(rng, rates["moving_cars"])):
        x, z = lane_x() + rng.normal(0.0, 0.25), rng.uniform(6.0, 60.0)
        add(z, partial(_car, canvas, camera, x, z, look, rng))
    for _ in range(_poisson(rng, rates["parked_cars"])):
        x = street.road_left + 1.1 if rng.random() < 0.5 else street.road_right - 1.1
        z = rng.uniform(4.0, 50.0)
        add(z, partial(_car, canvas, camera, x, z, look, rng))
    for _ in range(_poisson(rng, rates["trucks"])):
        x, z = lane_x(), rng.uniform(9.0, 55.0)
        add(z, partial(_truck, canvas, camera, x, z, look, rng))
    for _ in range(_poisson(rng, rates["buses"])):
        x, z = lane_x(), rng.uniform(9.0, 60.0)
        add(z, partial(_bus, canvas, camera, x, z, look, rng))

    for _ in range(_poisson(rng, rates["persons"])):
        crossing = rng.random() < 0.15
        x = rng.uniform(street.road_left, street.road_right) if crossing else sidewalk_x()
        z, height = rng.uniform(4.0, 45.0), rng.uniform(1.55, 1.95)
        add(z, partial(_human, canvas, camera, PERSON, x, z, height, look, rng, False, 1.0))
    for count_name, class_id in (("bicycle_riders", BICYCLE), ("motorcycle_riders", MOTORCYCLE)):
        for _ in range(_poisson(rng, rates[count_name])):
            near_left = rng.random() < 0.5
            offset = rng.uniform(0.6, 1.5)
            x = street.road_left + offset if near_left else street.road_right - offset
            facing = 1.0 if rng.random() < 0.5 else -1.0
            z, height = rng.uniform(5.0, 40.0), rng.uniform(1.6, 1.9)
            add(z, partial(_two_wheeler, canvas, camera, class_id, x, z, look, facing))
            # the rider is a hair nearer than the bike, so it is drawn over it
            add(
                z - 0.01,
                partial(_human, canvas, camera, RIDER, x, z, height, look, rng, True, facing),
            )
    for count_name, class_id in (("parked_bicycles", BICYCLE), ("parked_motorcycles", MOTORCYCLE)):
        for _ in range(_poisson(rng, rates[count_name])):
            facing = 1.0 if rng.random() < 0.5 else -1.0
            x, z = sidewalk_x(), rng.uniform(4.0, 35.0)
            add(z, partial(_two_wheeler, canvas, camera, class_id, x, z, look, facing))
    return objects


def _draw_ego_vehicle(canvas: _Canvas, rng: np.random.Generator) -> None:
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
    canvas.stroke(reflection, None, _shade(paint, 1.8), max(1.0, bonnet_height * 0.12))


# ---------------------------------------------------------------------------------------
# Rendering


def _finish(canvas: _Canvas, style: _Style, rng: np.random.Generator) -> np.ndarray:
    """Turn the painted canvas into the domain's photo: (H,W,3) uint8 RGB."""
    height, width = canvas.label.shape
    fine = rng.standard_normal((height, width)).astype(np.float32)
    coarse_grid = rng.standard_normal((height // 6 + 2, width // 6 + 2)).astype(np.float32)
    coarse = cv2.resize(coarse_grid, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = (0.6 * fine + 0.8 * coarse) * canvas.grain * style.grain_scale
    rgb = canvas.rgb * (1.0 + grain[:, :, None])

    gains = np.asarray(style.gains) * (1.0 + rng.normal(0.0, 0.025, 3))
    brightness = style.brightness * math.exp(rng.normal(0.0, 0.08))
    rgb = rgb * (gains * brightness).astype(np.float32)
    luminance = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    saturation = style.saturation * math.exp(rng.normal(0.0, 0.05))
    rgb = luminance[:, :, None] + saturation * (rgb - luminance[:, :, None])
    mean_grey = float(luminance.mean())
    rgb = mean_grey + style.contrast * (rgb - mean_grey)

    if style.vignette > 0:
        ys = (np.arange(height, dtype=np.float32) - height / 2) / (height / 2)
        xs = (np.arange(width, dtype=np.float32) - width / 2) / (width / 2)
        radius_sq = (ys[:, None] ** 2 + xs[None, :] ** 2) / 2.0
        rgb = rgb * (1.0 - style.vignette * radius_sq)[:, :, None]
    pixel_scale = width / 256.0
    if style.sharpen > 0:
        smooth = cv2.GaussianBlur(rgb, (0, 0), 1.0 * pixel_scale)
        rgb = rgb + style.sharpen * (rgb - smooth)
    if style.blur_sigma > 0.05:
        rgb = cv2.GaussianBlur(rgb, (0, 0), style.blur_sigma * pixel_scale)
    rgb = rgb + rng.normal(0.0, style.noise_std, rgb.shape).astype(np.float32)
    image = np.clip(rgb * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
    if style.jpeg_quality is not None:
        ok, encoded = cv2.imencode(
            ".jpg",
            cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, style.jpeg_quality],
        )
        if ok:
            image = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def _sample_camera(rng: np.random.Generator, domain: str, height: int, width: int) -> _Camera:
    if domain == "synthia":  # higher, more downward-looking viewpoint
        camera_height, horizon_share = rng.uniform(2.5, 7.0), rng.uniform(0.2, 0.38)
    else:
        camera_height, horizon_share = rng.uniform(1.3, 1.7), rng.uniform(0.42, 0.5)
    return _Camera(
        focal=width * rng.uniform(0.95, 1.15),
        height_m=camera_height,
        horizon_y=height * horizon_share,
        center_x=width * (0.5 + rng.uniform(-0.07, 0.07)),
    )


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
    style = _style(domain, shift)
    rates = _rates(domain, shift)
    look = _Look(rng, style)
    camera = _sample_camera(rng, domain, height, width)
    canvas = _Canvas(height, width)
    street = _sample_street(rng, rates)

    _draw_sky(canvas, camera, look)
    _draw_ground(canvas, camera, street, look, rng)
    if street.has_far_block:
        _draw_far_block(canvas, camera, street, look, rng)
    _draw_sides(canvas, camera, street, rates, look, rng)
    objects = _place_objects(street, camera, rates, look, rng, canvas)
    for _, draw in sorted(objects, key=lambda item: -item[0]):
        draw()
    if domain == "cityscapes" and rng.random() < 0.75:
        _draw_ego_vehicle(canvas, rng)
    return _finish(canvas, style, rng), canvas.label.copy()


# ---------------------------------------------------------------------------------------
# Writing the benchmark


@dataclass(frozen=True)
class _Job:
    """One frame to render and write: everything a worker process needs."""

    out: Path
    seed: int
    shift: float
    domain: str
    split: str  # "train" / "val" for Cityscapes, "" for the flat datasets
    index: int  # 0-based position within its split


def _cityscapes_stem(split: str, index: int) -> tuple[str, str]:
    """(city, file stem) of image `index` of a split, e.g. ('aachen', 'aachen_000000_000019')."""
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_000019"


def _raw_label(train_ids: np.ndarray, domain: str) -> np.ndarray:
    """Train ids (H,W) uint8 -> the dataset's raw ids: uint8 Cityscapes label ids, or uint16
    SYNTHIA class ids."""
    if domain == "synthia":
        table = np.full(256, UNLABELED_ID, dtype=np.uint16)
        for train_id, class_id in TRAIN_ID_TO_SYNTHIA_ID.items():
            table[train_id] = class_id
        return table[train_ids]
    table = np.full(256, UNLABELED_ID, dtype=np.uint8)
    for train_id, label_id in TRAIN_ID_TO_CITYSCAPES_ID.items():
        table[train_id] = label_id
    if domain == "cityscapes":
        table[IGNORE_INDEX] = CITYSCAPES_EGO_VEHICLE_ID
    return table[train_ids]


def _render_job(job: _Job) -> None:
    """Render one frame from its own seed sequence and write its image and label."""
    rng = np.random.default_rng([job.seed, _DOMAIN_INDEX[(job.domain, job.split)], job.index])
    height, width = FRAME_SIZES[job.domain]
    rgb, train_ids = render_scene(rng, job.domain, job.shift, height, width)
    raw_ids = _raw_label(train_ids, job.domain)
    if job.domain == "gta":
        name = f"{job.index + 1:05d}.png"
        io.write_image(job.out / "gta" / "images" / name, rgb)
        io.write_label(job.out / "gta" / "labels" / name, raw_ids)
    elif job.domain == "synthia":
        name = f"{job.index + 1:07d}.png"
        io.write_image(job.out / "synthia" / "RGB" / name, rgb)
        io.write_synthia_label(job.out / "synthia" / "GT" / "LABELS" / name, raw_ids)
    else:
        city, stem = _cityscapes_stem(job.split, job.index)
        root = job.out / "cityscapes"
        io.write_image(root / "leftImg8bit" / job.split / city / f"{stem}_leftImg8bit.png", rgb)
        io.write_label(root / "gtFine" / job.split / city / f"{stem}_gtFine_labelIds.png", raw_ids)


def _init_worker() -> None:
    # One OpenCV thread per process: the processes already use the cores.
    cv2.setNumThreads(1)


def _readme(seed: int, shift: float, counts: dict[str, int]) -> str:
    return (
        "OMUDA synthetic benchmark (generated by `omuda synth`; NOT real data)\n"
        "\n"
        "Procedural street scenes in the 19 Cityscapes train-id classes, written in the real\n"
        "datasets' file layouts with raw label ids, for `omuda prepare` and the loaders:\n"
        f"  gta/         GTA5-like source: {counts['gta']} frames, images/NNNNN.png and\n"
        "               labels/NNNNN.png (Cityscapes label ids), 320x176\n"
        f"  cityscapes/  Cityscapes-like target: {counts['train']} train and {counts['val']} val\n"
        "               frames, leftImg8bit/ and gtFine/*_gtFine_labelIds.png, 256x128\n"
        f"  synthia/     SYNTHIA-like source: {counts['synthia']} frames, RGB/ and GT/LABELS/\n"
        "               (16-bit 3-channel, class id in R), 320x190; no terrain, truck, train\n"
        "\n"
        f"seed: {seed}\n"
        f"shift: {shift!r} (0 = both domains rendered alike; 1 = default; larger = harder)\n"
        "\n"
        "The source is rendered synthetic (saturated, contrasty, sharp, warm, clean surfaces,\n"
        "vivid object colours); the target real (desaturated, blurred, noisy, cool, vignetted,\n"
        "JPEG-compressed, muted object colours, more cars and persons). See the docstring of\n"
        "omuda.data.synthetic for every component of the shift.\n"
    )


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise OmudaError(f"{name} must be an integer >= 0, got {value!r}")


def generate_benchmark(
    out: Path,
    seed: int = 0,
    shift: float = DEFAULT_SHIFT,
    num_source: int = 400,
    num_target_train: int = 300,
    num_target_val: int = 100,
    num_synthia: int = 200,
    workers: int = 0,
    progress: bool = True,
) -> None:
    """Write the synthetic benchmark under `out` (see the module docstring).

    out/gta (num_source frames), out/cityscapes (num_target_train + num_target_val frames),
    out/synthia (num_synthia frames) and out/README.txt. The bytes written depend only on
    (seed, shift) and the counts, never on `workers` (0 or 1 = in-process, else that many
    processes). Writing into an existing benchmark folder overwrites its files in place,
    each atomically; files that this run does not write (e.g. from a run with larger
    counts, or `prepare`'s outputs) are left as they are. Raises OmudaError on bad
    arguments or when `out` is a file.
    """
    for name, value in (
        ("seed", seed),
        ("num_source", num_source),
        ("num_target_train", num_target_train),
        ("num_target_val", num_target_val),
        ("num_synthia", num_synthia),
        ("workers", workers),
    ):
        _check_count(name, value)
    if (
        isinstance(shift, bool)
        or not isinstance(shift, (int, float))
        or not (math.isfinite(shift) and shift >= 0)
    ):
        raise OmudaError(f"shift must be a finite number >= 0, got {shift!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OmudaError(f"cannot write the benchmark to {out}: it is a file, not a folder")
    shift = float(shift)
    seed = int(seed)
    jobs = [_Job(out, seed, shift, "gta", "", i) for i in range(num_source)]
    jobs += [_Job(out, seed, shift, "cityscapes", "train", i) for i in range(num_target_train)]
    jobs += [_Job(out, seed, shift, "cityscapes", "val", i) for i in range(num_target_val)]
    jobs += [_Job(out, seed, shift, "synthia", "", i) for i in range(num_synthia)]
    try:
        out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=len(jobs), desc="synth", unit="frame", disable=not progress)
        with bar:
            if workers <= 1:
                for job in jobs:
                    _render_job(job)
                    bar.update()
            else:
                chunksize = max(1, len(jobs) // (workers * 8))
                with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
                    for _ in pool.map(_render_job, jobs, chunksize=chunksize):
                        bar.update()
        counts = {
            "gta": num_source,
            "train": num_target_train,
            "val": num_target_val,
            "synthia": num_synthia,
        }
        io.atomic_write_bytes(out / "README.txt", _readme(seed, shift, counts).encode("utf-8"))
    except OSError as error:
        raise OmudaError(
            f"cannot write the benchmark to {out}: {error.strerror or error}"
        ) from error
