"""Colour: match an element's levels, white balance and saturation to the plate where it sits.

The grade (applied to the element's unpremultiplied colour ``c``, ACEScg, scene-linear)::

    c1 = gain * c + lift                    # per channel: levels and white balance
    c2 = Y(c1) + saturation * (c1 - Y(c1))  # saturation about luminance

Measured statistics (element: unpremultiplied colour where alpha > 0.5; plate: the neighbourhood
``region_around`` the element, or a user reference patch), all over finite pixels only:

- black / white: 1st / 99th percentile of luminance (levels);
- cast: per-channel mean divided by mean luminance (grey-world white balance in the region);
- chroma spread: mean distance of each pixel's chroma ``c - Y`` from the mean chroma, divided by
  the black-to-white range (saturation, independent of levels and cast).

The parameters are found by a short fixed-point iteration on ``c1`` (saturation scales chroma
about Y exactly, so it has closed-form targets there): saturation from the spread ratio, levels
from the luminance percentiles, then the cast; white balance moves luminance a little, so repeat. Fallbacks:
too few element pixels (< 16 with alpha > 0.5) or plate pixels -> the identity grade; a flat
(zero-range) side -> levels are not changed; no chroma on a side -> saturation 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from gvfx.errors import InputError
from gvfx.match.flat import ACESCG_LUMA, finite_pixels, rgb_of

__all__ = ["ColourMatch", "region_around", "measure_match", "apply_match"]

log = logging.getLogger(__name__)

#: fewest pixels a side needs to be measured
MIN_PIXELS = 16
#: region_around falls back to the whole frame when the ring has fewer pixels than this
MIN_REGION_PIXELS = 1024
_ITERATIONS = 8
_SAT_RANGE = (0.05, 20.0)


def _vec(v: Any) -> tuple[float, float, float]:
    a = np.asarray(v, dtype=np.float64).ravel()
    if a.size != 3:
        raise InputError(f"expected 3 values, got {a.size}")
    return (float(a[0]), float(a[1]), float(a[2]))


@dataclass(frozen=True)
class ColourMatch:
    """A per-channel gain/lift plus saturation grade, and the statistics it was measured from.

    ``plate_*``/``element_*`` (per channel, for the report): ``black``/``white`` are the 1st/99th
    percentiles, ``mean`` the mean, of the measured pixels (element: before the grade).
    """

    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    lift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    saturation: float = 1.0
    plate_black: tuple[float, float, float] = (0.0, 0.0, 0.0)
    plate_white: tuple[float, float, float] = (0.0, 0.0, 0.0)
    plate_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    element_black: tuple[float, float, float] = (0.0, 0.0, 0.0)
    element_white: tuple[float, float, float] = (0.0, 0.0, 0.0)
    element_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        for name in ("gain", "lift", "plate_black", "plate_white", "plate_mean", "element_black",
                     "element_white", "element_mean"):
            object.__setattr__(self, name, _vec(getattr(self, name)))
        object.__setattr__(self, "saturation", float(self.saturation))

    @property
    def is_identity(self) -> bool:
        return self.gain == (1.0, 1.0, 1.0) and self.lift == (0.0, 0.0, 0.0) and self.saturation == 1.0

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ColourMatch":
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


def region_around(alpha: np.ndarray, *, grow_px: int = 64) -> np.ndarray:
    """(H, W) bool: the plate ring within ``grow_px`` of the element, excluding the element itself.

    ``alpha``: (H, W) element alpha; the element is ``alpha > 0.01``. When the ring has fewer than
    ``MIN_REGION_PIXELS`` pixels (element fills the frame, or there is no element) the whole frame
    is returned.
    """
    a = np.nan_to_num(np.asarray(alpha, dtype=np.float32), nan=0.0)
    if a.ndim != 2:
        raise InputError(f"alpha must be (H, W), got {a.shape}")
    inside = a > 0.01
    h, w = a.shape
    full = np.ones((h, w), dtype=bool)
    if not inside.any():
        return full
    ys, xs = np.nonzero(inside)
    g = int(max(1, grow_px))
    y0, y1 = max(0, ys.min() - g), min(h, ys.max() + g + 1)
    x0, x1 = max(0, xs.min() - g), min(w, xs.max() + g + 1)
    crop = inside[y0:y1, x0:x1]
    dist = ndimage.distance_transform_edt(~crop)
    ring = np.zeros((h, w), dtype=bool)
    ring[y0:y1, x0:x1] = (dist <= g) & ~crop
    if ring.sum() < MIN_REGION_PIXELS:
        log.info("colour: the ring around the element has %d pixels; using the whole frame", int(ring.sum()))
        return full
    return ring


def _grade(c: np.ndarray, gain: np.ndarray, lift: np.ndarray, sat: float) -> np.ndarray:
    """(N, 3) colour -> graded (N, 3) (see module doc)."""
    c1 = c * gain + lift
    y = (c1 @ ACESCG_LUMA.astype(np.float64))[..., None]
    return y + sat * (c1 - y)


def _stats(c: np.ndarray) -> dict[str, Any]:
    """Statistics of (N, 3) colours used for matching (see module doc)."""
    y = c @ ACESCG_LUMA.astype(np.float64)
    lo, hi = np.percentile(y, [1.0, 99.0])
    my = float(y.mean())
    chroma = c - y[:, None]
    spread = float(np.linalg.norm(chroma - chroma.mean(axis=0), axis=1).mean())
    return {"black": float(lo), "white": float(hi), "range": float(hi - lo),
            "cast": c.mean(axis=0) / my if abs(my) > 1e-9 else np.ones(3),
            "spread": spread / max(float(hi - lo), 1e-9)}


def _element_colours(element_rgba: np.ndarray) -> np.ndarray:
    el = np.asarray(element_rgba, dtype=np.float32)
    if el.ndim != 3 or el.shape[2] != 4:
        raise InputError(f"element must be (H, W, 4) premultiplied RGBA, got {el.shape}")
    a = el[..., 3]
    sel = np.isfinite(a) & (a > 0.5) & finite_pixels(el[..., :3])
    return (el[..., :3][sel] / a[sel][:, None]).astype(np.float64)


def _plate_colours(plate_rgb: np.ndarray, region: np.ndarray | None,
                   patch: tuple[int, int, int, int] | None) -> np.ndarray:
    p = rgb_of(plate_rgb)
    h, w = p.shape[:2]
    sel = finite_pixels(p)
    if patch is not None:
        x0, y0, x1, y1 = (int(v) for v in patch)
        x0, x1 = sorted((max(0, min(w, x0)), max(0, min(w, x1))))
        y0, y1 = sorted((max(0, min(h, y0)), max(0, min(h, y1))))
        if x1 <= x0 or y1 <= y0:
            raise InputError(f"reference patch {patch} is empty inside the {w}x{h} plate",
                             hint="give x0, y0, x1, y1 in pixels, top-left origin")
        box = np.zeros((h, w), dtype=bool)
        box[y0:y1, x0:x1] = True
        sel &= box
    elif region is not None:
        r = np.asarray(region, dtype=bool)
        if r.shape != (h, w):
            raise InputError(f"colour region is {r.shape}, the plate is {(h, w)}")
        sel &= r
    return p[sel].astype(np.float64)


def measure_match(element_rgba: np.ndarray, plate_rgb: np.ndarray, *, region: np.ndarray | None = None,
                  patch: tuple[int, int, int, int] | None = None) -> ColourMatch:
    """Measure the grade that matches the element to the plate (see module doc).

    ``element_rgba``: (H, W, 4) premultiplied ACEScg; ``plate_rgb``: (H, W, 3|4) ACEScg (NaN/Inf
    ignored). The plate side is ``patch`` (x0, y0, x1, y1 px, reference-patch mode) when given, else
    ``region`` (H, W) bool, else ``region_around`` the element's alpha.
    """
    el = np.asarray(element_rgba)
    if region is None and patch is None:
        region = region_around(np.asarray(el[..., 3], dtype=np.float32))
    e = _element_colours(el)
    p = _plate_colours(plate_rgb, region, patch)
    if len(e) < MIN_PIXELS or len(p) < MIN_PIXELS:
        log.warning("colour: too few pixels to match (element %d, plate %d); leaving colour alone",
                    len(e), len(p))
        return ColourMatch()

    def pct(c: np.ndarray, q: float) -> np.ndarray:
        return np.percentile(c, q, axis=0)

    target = _stats(p)
    gain, lift, sat = np.ones(3), np.zeros(3), 1.0
    for _ in range(_ITERATIONS):
        # work on c1 = gain * c + lift: the saturation scales chroma about Y exactly, so its
        # targets there are the plate's spread / sat and cast 1 + (cast - 1) / sat
        s = _stats(e * gain + lift)
        if s["spread"] > 1e-9 and target["spread"] > 1e-9:
            sat = float(np.clip(target["spread"] / s["spread"], *_SAT_RANGE))
        if s["range"] > 1e-9 and target["range"] > 1e-9:
            k = target["range"] / s["range"]
            b = target["black"] - k * s["black"]
            gain, lift = gain * k, lift * k + b
        s = _stats(e * gain + lift)
        wb = (1.0 + (target["cast"] - 1.0) / sat) / np.where(np.abs(s["cast"]) > 1e-9, s["cast"], 1.0)
        if np.all(np.isfinite(wb)) and np.all(wb > 0):
            gain, lift = gain * wb, lift * wb
    if not (np.all(np.isfinite(gain)) and np.all(np.isfinite(lift)) and np.isfinite(sat)):
        log.warning("colour: the match did not converge; leaving colour alone")
        gain, lift, sat = np.ones(3), np.zeros(3), 1.0
    cm = ColourMatch(gain, lift, sat, pct(p, 1.0), pct(p, 99.0), p.mean(axis=0), pct(e, 1.0),
                     pct(e, 99.0), e.mean(axis=0))
    log.info("colour: gain %s lift %s saturation %.3f", np.round(gain, 4).tolist(),
             np.round(lift, 4).tolist(), sat)
    return cm


def apply_match(element_rgba: np.ndarray, cm: ColourMatch, *, strength: float = 1.0) -> np.ndarray:
    """Grade an element: (H, W, 4) premultiplied in, premultiplied out, alpha unchanged.

    ``strength`` blends the grade's parameters from identity (0) to the measured grade (1). Pixels
    with alpha <= 0 keep their colour (additive light has no colour to unpremultiply).
    """
    el = np.asarray(element_rgba, dtype=np.float32)
    if el.ndim != 3 or el.shape[2] != 4:
        raise InputError(f"element must be (H, W, 4) premultiplied RGBA, got {el.shape}")
    t = float(strength)
    gain = 1.0 + t * (np.asarray(cm.gain) - 1.0)
    lift = t * np.asarray(cm.lift)
    sat = 1.0 + t * (cm.saturation - 1.0)
    a = el[..., 3]
    has = np.isfinite(a) & (a > 0.0)
    out = el.copy()
    if has.any():
        av = a[has][:, None].astype(np.float64)
        c = el[..., :3][has].astype(np.float64) / av
        out[..., :3][has] = (_grade(c, gain, lift, sat) * av).astype(np.float32)
    return out
