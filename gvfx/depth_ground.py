"""Weight-free depth for any plate: a ground plane from the camera's height and the horizon's row.

For a still or a locked-off plate with no depth pass (analysis needs parallax, an estimator needs
weights), ``depth: {source: ground, height_m: H, horizon: Y}`` gives every pixel below the horizon the
camera-space Z of a flat ground H metres below the lens; above the horizon is sky (``inf``). ``Y`` is
the horizon's row as a fraction of the frame height from the top (0.5: the camera looks level). The
camera's tilt follows from it: ``tan(tilt) = (cy - v_h) / f``; roll is taken as zero.
"""

from __future__ import annotations

import math

import numpy as np

from gvfx.camera import Camera
from gvfx.errors import DepthError

__all__ = ["ground_depth", "tilt_from_horizon"]


def tilt_from_horizon(camera: Camera, horizon: float) -> float:
    """The camera's downward tilt in radians when the horizon is at ``horizon`` (fraction from the top)."""
    f_px = camera.focal_mm / camera.haperture_mm * camera.width
    v_h = float(horizon) * camera.height
    return math.atan2(camera.height / 2.0 - v_h, f_px)


def ground_depth(camera: Camera, height_m: float, horizon: float) -> np.ndarray:
    """(H, W) float32 camera-space Z of the ground ``height_m`` below the camera, ``inf`` above the horizon.

    A pixel's ray ``(x, y, -1)`` (gvfx camera: Y up, looking down -Z, ``y = -(v - cy) / f``) meets the
    ground at ``Z = height / (sin(tilt) - y cos(tilt))`` when that is positive."""
    if not (math.isfinite(height_m) and height_m > 0):
        raise DepthError(f"depth.height_m is {height_m}: the camera height above the ground must be positive",
                         hint="e.g. depth: {source: ground, height_m: 1.6, horizon: 0.45}")
    if not (math.isfinite(horizon) and -2.0 <= horizon <= 3.0):
        raise DepthError(f"depth.horizon is {horizon}: give the horizon's row as a fraction of the frame "
                         "height from the top", hint="0.5 for a level camera, less when it looks down")
    tilt = tilt_from_horizon(camera, horizon)
    f_px = camera.focal_mm / camera.haperture_mm * camera.width
    y = -((np.arange(camera.height, dtype=np.float64) + 0.5) - camera.height / 2.0) / f_px
    den = math.sin(tilt) - y * math.cos(tilt)
    with np.errstate(divide="ignore"):
        z = np.where(den > 1e-9, height_m / np.maximum(den, 1e-12), np.inf)
    return np.ascontiguousarray(np.repeat(z[:, None], camera.width, axis=1).astype(np.float32))
