"""Haze: fit the plate's own atmospheric falloff with depth, and apply it to elements.

Model (Koschmieder): ``I = J T + A (1 - T)``, ``T = exp(-density_per_m * z)``, one density for all
channels, airlight colour ``A`` per channel.

Fitting (``fit_haze``), over finite pixels with finite depth:

- density: haze scales local contrast by ``T``, so the median local luminance std per depth bin
  falls as ``exp(-density z)``; a weighted line through ``log(contrast)`` vs ``z`` gives it. Windows
  across a depth edge are skipped (the edge is not texture). This assumes the scene's texture has
  the same contrast at every depth, and grain adds a floor that biases density low on noisy plates.
- airlight ``A``: with the density known, the per-depth-bin mean colour is linear in
  ``(mean J, A)``: ``mean I = mean J T + A (1 - T)``; least squares per channel. When the haze is too
  thin to separate them (``1 - T`` spans < 0.2), ``A`` = mean colour of the farthest 2% of pixels.

Fallbacks: depth range ``z_max / z_min < MIN_DEPTH_RATIO`` (robust percentiles), too few bins, or no
depth -> ``Haze(0, ..., fitted=False)`` (off). A fitted density <= 0 -> ``Haze(0, A, fitted=True)``
(measured: no haze).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from gvfx.errors import InputError
from gvfx.match.flat import finite_pixels, luminance, rgb_of

__all__ = ["Haze", "fit_haze", "apply_haze", "MIN_DEPTH_RATIO"]

log = logging.getLogger(__name__)

#: haze is only fitted when the plate's depth spans at least this ratio (2nd to 98th percentile)
MIN_DEPTH_RATIO = 3.0
_WINDOW_PX = 7
_BINS = 24
_MIN_BIN_PIXELS = 200


@dataclass(frozen=True)
class Haze:
    """Atmospheric haze: ``density_per_m`` (1/m), airlight ``colour`` (3,) ACEScg, ``fitted``."""

    density_per_m: float = 0.0
    colour: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fitted: bool = False

    def __post_init__(self) -> None:
        c = np.asarray(self.colour, dtype=np.float64).ravel()
        if c.size != 3:
            raise InputError(f"haze colour needs 3 values, got {c.size}")
        if not np.isfinite(self.density_per_m) or self.density_per_m < 0:
            raise InputError(f"haze density must be finite and >= 0, got {self.density_per_m}")
        object.__setattr__(self, "colour", tuple(float(v) for v in c))
        object.__setattr__(self, "density_per_m", float(self.density_per_m))

    @property
    def is_off(self) -> bool:
        return self.density_per_m <= 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"density_per_m": self.density_per_m, "colour": list(self.colour), "fitted": self.fitted}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Haze":
        return cls(float(d["density_per_m"]), tuple(d["colour"]), bool(d["fitted"]))


def _off(colour: np.ndarray | None = None) -> Haze:
    return Haze(0.0, (0.0, 0.0, 0.0) if colour is None else tuple(np.maximum(colour, 0.0)), False)


def fit_haze(plate_rgb: np.ndarray, plate_z: np.ndarray | None) -> Haze:
    """Fit the plate's haze (see module doc).

    ``plate_rgb``: (H, W, 3|4) float32 ACEScg (NaN/Inf ignored); ``plate_z``: (H, W) metric Z, inf =
    sky (ignored), or None (-> off).
    """
    if plate_z is None:
        log.info("haze: no depth; off")
        return _off()
    rgb = rgb_of(plate_rgb)
    z = np.asarray(plate_z, dtype=np.float64)
    if z.shape != rgb.shape[:2]:
        raise InputError(f"plate depth is {z.shape}, the plate is {rgb.shape[:2]}")
    ok = finite_pixels(rgb) & np.isfinite(z) & (z > 0)
    if ok.sum() < _MIN_BIN_PIXELS * 3:
        log.info("haze: too few pixels with depth; off")
        return _off()
    z_lo, z_hi = np.percentile(z[ok], [2.0, 98.0])
    if z_hi / z_lo < MIN_DEPTH_RATIO:
        log.info("haze: depth range %.2f-%.2f m (ratio %.2f < %.1f); off", z_lo, z_hi, z_hi / z_lo,
                 MIN_DEPTH_RATIO)
        return _off()
    y = np.where(ok, luminance(np.where(ok[..., None], rgb, 0.0)), 0.0).astype(np.float64)
    zf = np.where(ok, z, 0.0)
    # local std of luminance in windows that lie on one depth (no depth edge, no invalid pixel)
    m = ndimage.uniform_filter(y, _WINDOW_PX)
    m2 = ndimage.uniform_filter(y * y, _WINDOW_PX)
    std = np.sqrt(np.maximum(m2 - m * m, 0.0))
    zmax = ndimage.maximum_filter(zf, _WINDOW_PX)
    zmin = ndimage.minimum_filter(np.where(ok, z, np.inf), _WINDOW_PX)
    good = ok & (zmax <= zmin * 1.05) & np.isfinite(zmin)
    edges = np.linspace(z_lo, z_hi, _BINS + 1)
    zs, cs, ns, means = [], [], [], []
    idx = np.searchsorted(edges, z, side="right") - 1
    for b in range(_BINS):
        sel_all = ok & (idx == b)
        sel = good & (idx == b)
        if sel.sum() < _MIN_BIN_PIXELS or sel_all.sum() < _MIN_BIN_PIXELS:
            continue
        c = float(np.median(std[sel]))
        if c <= 0:
            continue
        zs.append(float(np.median(z[sel])))
        cs.append(c)
        ns.append(float(sel.sum()))
        means.append(rgb[sel_all].mean(axis=0))
    if len(zs) < 3:
        log.info("haze: only %d usable depth bins; off", len(zs))
        return _off()
    zs_a, logc, wts = np.asarray(zs), np.log(np.asarray(cs)), np.sqrt(np.asarray(ns))
    a = np.stack([np.ones_like(zs_a), zs_a], axis=1)
    coef, *_ = np.linalg.lstsq(a * wts[:, None], logc * wts, rcond=None)
    beta = float(-coef[1])
    far = ok & (z >= np.percentile(z[ok], 98.0))
    far_colour = rgb[far].mean(axis=0).astype(np.float64)
    if beta <= 0:
        log.info("haze: contrast does not fall with depth (slope %.4g); no haze", beta)
        return Haze(0.0, tuple(np.maximum(far_colour, 0.0)), True)
    t = np.exp(-beta * zs_a)
    if (1 - t).max() - (1 - t).min() < 0.2:
        airlight = far_colour
        log.info("haze: too thin to separate airlight from the scene; airlight = farthest pixels")
    else:
        design = np.stack([t, 1 - t], axis=1)
        sol, *_ = np.linalg.lstsq(design * wts[:, None], np.asarray(means) * wts[:, None], rcond=None)
        airlight = sol[1]
    airlight = np.maximum(np.nan_to_num(airlight, nan=0.0), 0.0)
    log.info("haze: density %.4g /m, airlight %s", beta, np.round(airlight, 4).tolist())
    return Haze(beta, tuple(airlight), True)


def apply_haze(element_rgba: np.ndarray, element_z: np.ndarray, haze: Haze) -> np.ndarray:
    """Haze a premultiplied element: ``rgb' = rgb T + A alpha (1 - T)``, ``T = exp(-density z)``.

    ``element_rgba``: (H, W, 4) premultiplied ACEScg; ``element_z``: (H, W) metric Z. Alpha is
    unchanged. Pixels without a finite depth are left as they are.
    """
    el = np.asarray(element_rgba, dtype=np.float32)
    if el.ndim != 3 or el.shape[2] != 4:
        raise InputError(f"element must be (H, W, 4) premultiplied RGBA, got {el.shape}")
    z = np.asarray(element_z, dtype=np.float64)
    if z.shape != el.shape[:2]:
        raise InputError(f"element depth is {z.shape}, the element is {el.shape[:2]}")
    out = el.copy()
    if haze.is_off:
        return out
    has = np.isfinite(z) & (z >= 0)
    t = np.exp(-haze.density_per_m * np.where(has, z, 0.0))[..., None]
    a = el[..., 3:4]
    hazed = el[..., :3] * t + np.asarray(haze.colour)[None, None, :] * a * (1.0 - t)
    out[..., :3] = np.where(has[..., None], hazed, el[..., :3]).astype(np.float32)
    return out
