"""The drawing surface every part of a scene paints on, and the class ids it paints.

`Canvas` keeps the image, the label and the surface-grain map in step: every polygon is
filled into all three at once, so a frame's label always matches its pixels. Points are
float pixel coordinates drawn with 1/16 px vertex precision.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from omuda.data.labels import IGNORE_INDEX

# Train ids, named once so that the drawing code reads as the scene it draws.
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN = range(8)
VEGETATION, TERRAIN, SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN = range(8, 17)
MOTORCYCLE, BICYCLE = 17, 18
SYNTHIA_ABSENT_CLASSES: tuple[int, ...] = (TERRAIN, TRUCK, TRAIN)

SUBPIXEL_BITS = 4  # cv2 drawing with 1/16 px vertex precision
SUBPIXEL_SCALE = float(1 << SUBPIXEL_BITS)


def fixed_point(points: np.ndarray) -> np.ndarray:
    """Float pixel points (N,2) -> int32 cv2 points with SUBPIXEL_BITS fractional bits."""
    clipped = np.clip(points, -1.0e6, 1.0e6)
    return np.round(clipped * SUBPIXEL_SCALE).astype(np.int32)


def ellipse(cx: float, cy: float, rx: float, ry: float, count: int = 20) -> np.ndarray:
    """Polygon (count,2) approximating an axis-aligned ellipse, in any units."""
    angles = np.linspace(0.0, 2.0 * math.pi, count, endpoint=False)
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=-1)


def quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Axis-aligned rectangle (4,2) from two corners, in any units."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


class Canvas:
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
        polygon = [fixed_point(points)]
        cv2.fillPoly(self.rgb, polygon, tuple(float(c) for c in colour), cv2.LINE_8, SUBPIXEL_BITS)
        if class_id is not None:
            cv2.fillPoly(self.label, polygon, int(class_id), cv2.LINE_8, SUBPIXEL_BITS)
        if grain is not None:
            cv2.fillPoly(self.grain, polygon, float(grain), cv2.LINE_8, SUBPIXEL_BITS)

    def stroke(
        self,
        points: np.ndarray,
        class_id: int | None,
        colour: np.ndarray,
        thickness: float,
        closed: bool = False,
    ) -> None:
        """Draw a polyline (N,2) of the given pixel thickness (at least 1)."""
        polyline = [fixed_point(points)]
        width = max(1, round(thickness))
        cv2.polylines(
            self.rgb,
            polyline,
            closed,
            tuple(float(c) for c in colour),
            width,
            cv2.LINE_8,
            SUBPIXEL_BITS,
        )
        if class_id is not None:
            cv2.polylines(
                self.label, polyline, closed, int(class_id), width, cv2.LINE_8, SUBPIXEL_BITS
            )

    def mesh(self, points: np.ndarray, class_id: int, colour: np.ndarray, grain: float) -> None:
        """A see-through fence: the polygon's label is the class, its image a wire mesh over
        whatever was drawn behind it."""
        mask = np.zeros(self.label.shape, dtype=np.uint8)
        cv2.fillPoly(mask, [fixed_point(points)], 1, cv2.LINE_8, SUBPIXEL_BITS)
        inside = mask.astype(bool)
        wires = ((self.rows + self.cols) % 3 == 0) | ((self.rows - self.cols) % 3 == 0)
        self.rgb[inside] = 0.6 * self.rgb[inside] + 0.4 * colour * 0.7
        self.rgb[inside & wires] = colour
        self.label[inside] = class_id
        self.grain[inside] = grain


def shade(colour: np.ndarray, factor: float) -> np.ndarray:
    """A (3,) colour in [0,1] made darker (factor < 1) or lighter (> 1), clipped."""
    return np.clip(colour * factor, 0.0, 1.0)
