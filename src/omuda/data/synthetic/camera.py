"""The pinhole camera every scene element is projected through, and how it is sampled.

x is to the right, up is up and z (depth) points forward, all in metres; the camera sits
`height_m` above flat ground, so a ground point at depth Z lies focal * height_m / Z pixels
below the horizon and every size shrinks as 1 / Z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
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
        """Image size in pixels of one metre on a plane facing the camera at depth z_m."""
        return self.focal / max(z_m, 0.05)


def sample_camera(rng: np.random.Generator, domain: str, height: int, width: int) -> Camera:
    """A camera for one (height, width) frame of `domain`: height, tilt (horizon row),
    focal length and a small sideways offset drawn from `rng`."""
    if domain == "synthia":  # higher, more downward-looking viewpoint
        camera_height, horizon_share = rng.uniform(2.5, 7.0), rng.uniform(0.2, 0.38)
    else:
        camera_height, horizon_share = rng.uniform(1.3, 1.7), rng.uniform(0.42, 0.5)
    return Camera(
        focal=width * rng.uniform(0.95, 1.15),
        height_m=camera_height,
        horizon_y=height * horizon_share,
        center_x=width * (0.5 + rng.uniform(-0.07, 0.07)),
    )
