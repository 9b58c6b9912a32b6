"""How each domain looks at a given shift: the one place for the domain-shift parameters.

`domain_style` holds every rendering parameter of a domain as a function of `shift`
(colour, contrast, white balance, sharpness, noise, vignetting, surface texture,
palette share, local ambiguity); `RATE_TABLE` / `domain_rates` the class frequencies; the colour
tables live in `palettes`. `Look` draws object colours from them while a scene is painted,
and `finish` turns the painted canvas into the domain's photo. The docstring of
`omuda.data.synthetic` states every component of the shift in words: keep it in step with
the numbers here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from omuda.data.synthetic.canvas import Canvas
from omuda.data.synthetic.palettes import PALETTES

DOMAINS: tuple[str, ...] = ("gta", "cityscapes", "synthia")
SOURCE_DOMAINS: tuple[str, ...] = ("gta", "synthia")

# Surface grain amplitude per surface kind before the domain's texture factor: vegetation
# is leafy and rough in every domain (a cue that holds in real streets), sky nearly smooth.
GRAIN = {
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


@dataclass(frozen=True)
class Style:
    """How one domain renders at a given shift (see the package docstring)."""

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
    # Probability that a frame's locally alike classes share one look (road and sidewalk
    # one asphalt, terrain grassy like vegetation, walls in facade colours, trucks in bus
    # paint), so that only context tells them apart.
    ambiguity: float = 0.0


# Calibrated by training against the orderings known from real data (docs/RESULTS.md):
# blur and noise that the oracle cannot see through were reduced and JPEG removed; the shift
# that is left is colour, texture, palettes, class frequencies and local ambiguity.
DEFAULT_SHIFT = 1.35
# Share of target frames whose locally alike classes share one look, per unit of shift.
AMBIGUITY_PER_SHIFT = 0.45


def domain_style(domain: str, shift: float) -> Style:
    """The rendering parameters of `domain` at `shift`; source and target agree at shift 0."""
    s = shift
    if domain in SOURCE_DOMAINS:
        return Style(
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
        )
    return Style(
        synthetic=False,
        own_share=1.0 - math.exp(-1.2 * s),
        colour_mix=1.0 - math.exp(-s),
        saturation=math.exp(-0.35 * s),
        contrast=math.exp(-0.22 * s),
        brightness=math.exp(-0.08 * s),
        gains=(math.exp(-0.04 * s), 1.0, math.exp(0.05 * s)),
        sharpen=0.0,
        blur_sigma=0.2 * s,
        noise_std=0.003 + 0.005 * s,
        vignette=min(0.6, 0.1 * s),
        grain_scale=math.exp(0.4 * s),
        ambiguity=min(0.9, AMBIGUITY_PER_SHIFT * s),
    )


def draws_ambiguous_look(rng: np.random.Generator, style: Style) -> bool:
    """Whether a frame paints its locally alike classes with one look.

    A target frame spends one uniform draw of `rng` on it (the first draw `render_scene`
    makes); a source frame spends none and is never ambiguous.
    """
    return not style.synthetic and bool(rng.random() < style.ambiguity)


# Per-frame rates: (shared base, k for source domains, k for the target); rate = base e^(k s).
RATE_TABLE: dict[str, tuple[float, float, float]] = {
    "moving_cars": (1.8, -0.15, 0.30),
    "parked_cars": (1.4, -0.15, 0.30),
    "trucks": (0.35, 0.25, -0.35),
    "buses": (0.30, 0.0, 0.0),
    "train": (0.25, 0.0, -0.1),  # probability of a tram on rails
    "persons": (2.2, -0.20, 0.35),
    "bicycle_riders": (0.875, -0.10, 0.20),
    "motorcycle_riders": (0.75, 0.10, -0.10),
    "parked_bicycles": (0.8, -0.10, 0.20),
    "parked_motorcycles": (0.5, 0.10, -0.10),
    "trees_per_side": (2.2, 0.25, -0.15),
    "vegetation_segment": (0.30, 0.30, -0.15),  # probability per facade segment
    "terrain_strip": (0.50, 0.20, -0.10),  # probability per side
    "streetlights": (1.8, 0.0, 0.0),
    "traffic_lights": (2.0, 0.0, 0.10),
    "traffic_signs": (2.52, 0.0, 0.10),
    "wall": (0.18, 0.0, 0.0),  # probability per facade segment
    "fence": (0.18, 0.0, 0.0),
    "hedge": (0.15, 0.10, -0.10),
    "far_block": (0.4, 0.0, 0.0),
}


def domain_rates(domain: str, shift: float) -> dict[str, float]:
    """Expected counts per frame (probabilities for the names noted in the table)."""
    column = 1 if domain in SOURCE_DOMAINS else 2
    rates = {name: row[0] * math.exp(row[column] * shift) for name, row in RATE_TABLE.items()}
    for name in ("train", "vegetation_segment", "terrain_strip", "wall", "fence", "hedge"):
        rates[name] = min(rates[name], 0.9)
    if domain == "synthia":
        rates["trucks"] = rates["train"] = rates["terrain_strip"] = 0.0
    return rates


class Look:
    """Draws object colours: the domain's own palette with probability own_share."""

    def __init__(self, rng: np.random.Generator, style: Style) -> None:
        self.rng = rng
        self.style = style
        self.own_palette = "synthetic" if style.synthetic else "real"
        self.jitter = 0.09 if style.synthetic else 0.05
        self.ambiguous = False  # set per frame by the scene (style.ambiguity)

    def uses_own(self) -> bool:
        """Whether the next look comes from the domain's own palette (one draw)."""
        return bool(self.rng.random() < self.style.own_share)

    def colour(self, name: str, own: bool | None = None) -> np.ndarray:
        """A (3,) float colour in [0,1] from palette `name`, with a small random jitter."""
        own = self.uses_own() if own is None else own
        choices = PALETTES[name][self.own_palette if own else "shared"]
        base = np.asarray(choices[int(self.rng.integers(len(choices)))], dtype=np.float64)
        jitter = 1.0 + self.rng.normal(0.0, self.jitter, 3)
        return np.clip(base / 255.0 * jitter, 0.0, 1.0)

    def blend(self, triple: tuple[tuple[int, int, int], ...], spread: float = 0.04) -> np.ndarray:
        """A continuous base colour: shared moved towards the domain's own by colour_mix."""
        shared = np.asarray(triple[0], dtype=np.float64)
        own = np.asarray(triple[1 if self.style.synthetic else 2], dtype=np.float64)
        mixed = shared + self.style.colour_mix * (own - shared)
        return np.clip(mixed / 255.0 * (1.0 + self.rng.normal(0.0, spread)), 0.0, 1.0)


def finish(canvas: Canvas, style: Style, rng: np.random.Generator) -> np.ndarray:
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
    return np.ascontiguousarray(image)
