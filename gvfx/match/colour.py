"""Colour: match an element's levels, white balance and saturation to the plate's light.

The grade (applied to the element's unpremultiplied colour ``c``, ACEScg, scene-linear)::

    c1 = gain * c + lift                    # per channel: levels and white balance
    c2 = Y(c1) + saturation * (c1 - Y(c1))  # saturation about luminance

Two modes, both bounded (the bounds are module constants, the measured grade is clamped to them and
every clamp is named in ``ColourMatch.clamped``, the log and the EXR's ``gvfx:match:colour``):

``light`` (the default): the plate's *overall* levels and light, measured over the whole frame with
robust statistics, never the pixels behind or around the element (a snowflake in front of a wall is
not wall-coloured; the issue-13 failures were gains of 14.5 and 6.9e6 from exactly that). An element
is rendered under white light, so it takes the plate's light colour: ``wb`` = the plate's trimmed
grey-world cast (per-channel mean of the pixels between the 5th and 95th luminance percentile over
their mean luminance), normalised to unit luminance, each channel within ``WB_BOUNDS``. Exposure
changes only an element outside the plate's range: one whose white (99th percentile luminance) is
above the plate's white is darkened half-way in stops towards it, one whose white is below the
plate's median is brightened half-way towards that median, within ``EXPOSURE_BOUNDS``; anything in
between keeps its level (a dark object is dark, a bright one bright: the plate's levels are frame
statistics -- sky, highlights -- an element's are one object's own). Lift brings the element's black (1st percentile) to the plate's
black floor (flare, veiling glare), within ``LIFT_MAX_FRACTION`` of the plate's white and never
below zero at the element's black. Saturation moves the element's colourfulness (median ``|c - Y| /
Y``) half-way towards the plate's, within the narrow ``SATURATION_BOUNDS`` (an object's colourfulness
is mostly its own; this only follows a plate graded towards or away from colour).

``levels`` (an explicit reference ``patch`` or ``region``: the user says what the element should
look like): black / white (1st / 99th percentile luminance), cast (per-channel mean over mean
luminance) and chroma spread (mean distance of chroma from its mean over the black-to-white range)
are matched by a short fixed-point iteration, then bounded by ``LEVELS_GAIN_BOUNDS``,
``LEVELS_LIFT_MAX_FRACTION`` and ``LEVELS_SATURATION_BOUNDS``.

When colour matching applies at all is decided by :func:`colour_default` (the match stage's
``colour: auto``): off for emissive effects, white / near-white elements and tiny ones. Too few pixels
(< 16 with alpha > 0.5, or on the plate side) -> the identity grade.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from gvfx.errors import InputError
from gvfx.match.flat import ACESCG_LUMA, finite_pixels, rgb_of

__all__ = ["ColourMatch", "region_around", "measure_match", "apply_match", "colour_default", "EMISSIVE_EFFECTS",
           "WHITE_EFFECTS", "TINY_COVERAGE"]

log = logging.getLogger(__name__)

#: fewest pixels a side needs to be measured
MIN_PIXELS = 16
#: region_around falls back to the whole frame when the ring has fewer pixels than this
MIN_REGION_PIXELS = 1024
_ITERATIONS = 8
_SAT_RANGE = (0.05, 20.0)

# --- bounds of the ``light`` mode (the default) ---
#: per-channel white balance (the plate's light colour, unit luminance): at most +-25% a channel
WB_BOUNDS = (0.8, 1.25)
#: exposure gain: at most one stop either way
EXPOSURE_BOUNDS = (0.5, 2.0)
#: |lift| at most this fraction of the plate's white level
LIFT_MAX_FRACTION = 0.02
#: saturation: at most 10% either way
SATURATION_BOUNDS = (0.9, 1.1)
# --- bounds of the ``levels`` mode (an explicit reference patch or region) ---
LEVELS_GAIN_BOUNDS = (0.25, 4.0)
LEVELS_LIFT_MAX_FRACTION = 0.1
LEVELS_SATURATION_BOUNDS = (0.4, 2.5)

# --- when ``colour: auto`` leaves colour alone ---
#: effects that emit light: their colour is their temperature, not the plate's light
EMISSIVE_EFFECTS = frozenset({"fire", "explosion", "sparks"})
#: effects whose colour is white by nature (ice, water catching the light)
WHITE_EFFECTS = frozenset({"snow", "rain"})
#: coverage (sum of alpha over the frame's area) below which an element is too small to measure
TINY_COVERAGE = 0.002
#: an element whose median unpremultiplied luminance exceeds this emits light (no lit surface does)
EMISSIVE_LUMINANCE = 1.5
#: white / near-white: median unpremultiplied luminance at least this, colourfulness at most the next
WHITE_LUMINANCE = 0.5
WHITE_COLOURFULNESS = 0.08


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
    mode: str = "light"
    #: the parameters the bounds clamped, e.g. ("exposure", "wb.b")
    clamped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("gain", "lift", "plate_black", "plate_white", "plate_mean", "element_black",
                     "element_white", "element_mean"):
            object.__setattr__(self, name, _vec(getattr(self, name)))
        object.__setattr__(self, "saturation", float(self.saturation))
        object.__setattr__(self, "clamped", tuple(str(c) for c in self.clamped))

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


def _measure_levels(e: np.ndarray, p: np.ndarray) -> ColourMatch:
    """The ``levels`` mode (module doc) from element and plate colours, (N, 3) each."""

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
    clamped: list[str] = []
    gain = _bound(gain, LEVELS_GAIN_BOUNDS, "gain", clamped)
    lmax = LEVELS_LIFT_MAX_FRACTION * max(target["white"], 1e-6)
    lift = _bound(lift, (-lmax, lmax), "lift", clamped)
    sat = float(_bound(np.array([sat]), LEVELS_SATURATION_BOUNDS, "saturation", clamped)[0])
    return ColourMatch(gain, lift, sat, pct(p, 1.0), pct(p, 99.0), p.mean(axis=0), pct(e, 1.0),
                       pct(e, 99.0), e.mean(axis=0), mode="levels", clamped=tuple(clamped))


def _bound(v: np.ndarray, bounds: tuple[float, float], name: str, clamped: list[str]) -> np.ndarray:
    """``v`` clipped to ``bounds``; the names of clipped entries (``name`` or ``name.r/g/b``) appended."""
    v = np.asarray(v, dtype=np.float64)
    out = np.clip(v, *bounds)
    for i in np.flatnonzero(np.abs(out - v) > 1e-12):
        clamped.append(name if v.size == 1 else f"{name}.{'rgb'[i]}")
    return out


def _colourfulness(c: np.ndarray) -> float:
    """Median ``|c - Y| / Y`` of (N, 3) colours with Y > 0 (0 when none)."""
    y = c @ ACESCG_LUMA.astype(np.float64)
    ok = y > 1e-6
    if not ok.any():
        return 0.0
    return float(np.median(np.linalg.norm(c[ok] - y[ok, None], axis=1) / y[ok]))


def _measure_light(e: np.ndarray, p: np.ndarray) -> ColourMatch:
    """The ``light`` mode (module doc) from element colours and the whole plate's, (N, 3) each."""
    luma = ACESCG_LUMA.astype(np.float64)
    yp, ye = p @ luma, e @ luma
    p_black, p_lo, p_hi, p_white = np.percentile(yp, [1.0, 5.0, 95.0, 99.0])
    e_black, e_white = np.percentile(ye, [1.0, 99.0])
    mid = p[(yp >= p_lo) & (yp <= p_hi)]
    mid = mid if len(mid) >= MIN_PIXELS else p
    cast = mid.mean(axis=0) / max(float(mid.mean(axis=0) @ luma), 1e-9)
    clamped: list[str] = []
    wb = _bound(cast, WB_BOUNDS, "wb", clamped)
    wb = wb / max(float(wb @ luma), 1e-9)  # unit luminance: the light's colour, not its level
    p_median = float(np.median(yp))
    if e_white > p_white > 1e-6:  # brighter than anything in the plate: darken
        ratio = p_white / e_white
    elif 1e-6 < e_white < p_median:  # darker than the plate's middle everywhere: brighten
        ratio = p_median / e_white
    else:  # within the plate's range: its level is its own (a dark object, a bright one)
        ratio = 1.0
    exposure = float(_bound(np.array([np.sqrt(ratio)]), EXPOSURE_BOUNDS, "exposure", clamped)[0])
    log.debug("colour: plate black %.4f median %.4f white %.4f; element black %.4f white %.4f", p_black,
              p_median, p_white, e_black, e_white)
    gain = exposure * wb
    lmax = LIFT_MAX_FRACTION * max(float(p_white), 1e-6)
    lift_y = float(_bound(np.array([max(float(p_black), 0.0) - exposure * float(e_black)]),
                          (-min(lmax, exposure * max(float(e_black), 0.0)), lmax), "lift", clamped)[0])
    lift = lift_y * wb
    cp, ce = _colourfulness(p), _colourfulness(e)
    sat_raw = np.sqrt(cp / ce) if cp > 1e-6 and ce > 1e-6 else 1.0
    sat = float(_bound(np.array([sat_raw]), SATURATION_BOUNDS, "saturation", clamped)[0])

    def pct(c: np.ndarray, q: float) -> np.ndarray:
        return np.percentile(c, q, axis=0)

    return ColourMatch(gain, lift, sat, pct(p, 1.0), pct(p, 99.0), p.mean(axis=0), pct(e, 1.0),
                       pct(e, 99.0), e.mean(axis=0), mode="light", clamped=tuple(clamped))


def measure_match(element_rgba: np.ndarray, plate_rgb: np.ndarray, *, region: np.ndarray | None = None,
                  patch: tuple[int, int, int, int] | None = None) -> ColourMatch:
    """Measure the bounded grade that matches the element to the plate (see module doc).

    ``element_rgba``: (H, W, 4) premultiplied ACEScg; ``plate_rgb``: (H, W, 3|4) ACEScg (NaN/Inf
    ignored). ``patch`` (x0, y0, x1, y1 px) or ``region`` (H, W) bool: the ``levels`` mode against
    that reference; neither: the ``light`` mode against the whole frame.
    """
    e = _element_colours(np.asarray(element_rgba))
    p = _plate_colours(plate_rgb, region, patch)
    if len(e) < MIN_PIXELS or len(p) < MIN_PIXELS:
        log.warning("colour: too few pixels to match (element %d, plate %d); leaving colour alone",
                    len(e), len(p))
        return ColourMatch()
    cm = _measure_levels(e, p) if (patch is not None or region is not None) else _measure_light(e, p)
    log.info("colour (%s): gain %s lift %s saturation %.3f%s", cm.mode, np.round(cm.gain, 4).tolist(),
             np.round(cm.lift, 4).tolist(), cm.saturation,
             f" (clamped to the bounds: {', '.join(cm.clamped)})" if cm.clamped else "")
    return cm


def colour_default(element_rgba: np.ndarray, effect: str | None = None) -> tuple[bool, str]:
    """Whether ``colour: auto`` matches this element, and why: ``(on, reason)``.

    Off for an emissive effect (``EMISSIVE_EFFECTS``) or element (median unpremultiplied luminance
    above ``EMISSIVE_LUMINANCE``), a white one (``WHITE_EFFECTS``, or median luminance at least
    ``WHITE_LUMINANCE`` with colourfulness at most ``WHITE_COLOURFULNESS``) and a tiny one (coverage,
    the sum of alpha over the frame's area, under ``TINY_COVERAGE``).
    """
    if effect in EMISSIVE_EFFECTS:
        return False, f"{effect} emits light: its colour is its own"
    if effect in WHITE_EFFECTS:
        return False, f"{effect} is white by nature"
    el = np.asarray(element_rgba, dtype=np.float32)
    if el.ndim != 3 or el.shape[2] != 4:
        raise InputError(f"element must be (H, W, 4) premultiplied RGBA, got {el.shape}")
    a = np.clip(np.nan_to_num(el[..., 3], nan=0.0), 0.0, 1.0)
    coverage = float(a.sum()) / max(a.size, 1)
    if coverage < TINY_COVERAGE:
        return False, f"the element covers {coverage:.2%} of the frame (< {TINY_COVERAGE:.1%}): too small to measure"
    sel = (a > 0.05) & finite_pixels(el[..., :3])
    c = el[..., :3][sel].astype(np.float64) / a[sel][:, None]
    y = float(np.median(c @ ACESCG_LUMA.astype(np.float64))) if len(c) else 0.0
    if y > EMISSIVE_LUMINANCE:
        return False, f"the element's median luminance {y:.2f} > {EMISSIVE_LUMINANCE}: it emits light"
    if y >= WHITE_LUMINANCE and _colourfulness(c) <= WHITE_COLOURFULNESS:
        return False, "the element is white / near-white"
    return True, "matched to the plate's light"


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
