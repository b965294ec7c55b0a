"""Defocus: the thin-lens circle of confusion, the plate's focus, and a depth-varying bokeh blur.

- ``coc_radius_px``: thin-lens CoC radius in pixels for metric depth Z.
- ``estimate_focus``: where the plate is sharp vs depth. Blur is measured per tile with the
  re-blur gradient ratio (Zhuo & Sim 2011): at an edge blurred by a Gaussian of sigma ``s``,
  re-blurring by ``s0`` lowers the peak gradient by ``R = sqrt(s^2 + s0^2) / s``, so
  ``s = s0 / sqrt(R^2 - 1)``; this does not depend on the texture's contrast. A disc of radius ``r``
  has per-axis std ``r / 2``, so the tile's blur radius is ``2 s``. The model
  ``r(z)^2 = r_sharp^2 + (K |z - S| / z)^2`` is fitted over a grid of focus distances ``S``;
  ``K`` (the CoC radius at infinity, px) gives the f-stop through the camera
  (``N = f^2 / (2 K (S - f)) * width / haperture``).
  Fallbacks (documented, ``estimated=False``): too little depth range or too few textured tiles ->
  focus at the sharpest tiles' depth (or the median depth) and ``DEFAULT_FSTOP``; no measurable
  falloff -> ``MAX_FSTOP`` (deep focus). Without depth (2D): ``focus_m=None`` meaning "no
  depth-varying defocus": use the uniform disc radius ``uniform_radius_px`` measured from the
  plate's edges (near the element when a region is given).
- ``defocus``: per-pixel CoC blur of a premultiplied element, by layers (see its docstring).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import ndimage, signal

from gvfx.camera import Camera, default_camera
from gvfx.errors import InputError
from gvfx.match.flat import finite_pixels, luminance, rgb_of

__all__ = ["DEFAULT_FSTOP", "FocusEstimate", "coc_radius_px", "estimate_focus", "defocus", "disc_kernel",
           "RADIUS_LEVELS_PX"]

log = logging.getLogger(__name__)

#: the f-stop assumed when the plate's depth of field cannot be measured
DEFAULT_FSTOP = 4.0
#: the f-stop reported when nothing in the plate is measurably out of focus
MAX_FSTOP = 22.0
#: blur radii (px) of the defocus layers; per-pixel radii interpolate between neighbours
RADIUS_LEVELS_PX = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
_TILE_PX = 32
_REBLUR_SIGMA = 1.0
_MIN_TILES = 6
_WORKERS = 2


def coc_radius_px(z: np.ndarray | float, *, focus_m: float, focal_mm: float, fstop: float,
                  haperture_mm: float, width_px: int) -> np.ndarray:
    """Thin-lens circle-of-confusion radius in pixels for metric depth ``z`` (any shape).

    ``c = f^2 / (N (S - f)) * |z - S| / z`` on the sensor (mm), radius ``c / 2 * width_px /
    haperture_mm``; ``z = inf`` gives the limit ``f^2 / (N (S - f)) / 2`` in px. Non-finite or
    non-positive ``z`` other than ``+inf`` gives 0.
    """
    f = float(focal_mm)
    s_mm = float(focus_m) * 1000.0
    if not (f > 0 and fstop > 0 and haperture_mm > 0 and width_px > 0):
        raise InputError("coc_radius_px: focal length, f-stop, film back and width must be positive")
    if s_mm <= f:
        raise InputError(f"focus distance {focus_m} m is inside the {f} mm focal length",
                         hint="focus must be farther than the focal length")
    zz = np.asarray(z, dtype=np.float64)
    k_mm = f * f / (fstop * (s_mm - f))
    z_mm = np.where(np.isfinite(zz) & (zz > 0), zz * 1000.0, 1.0)
    frac = np.where(np.isposinf(zz), 1.0, np.where(np.isfinite(zz) & (zz > 0), np.abs(z_mm - s_mm) / z_mm, 0.0))
    return (k_mm * frac / 2.0 * width_px / haperture_mm).astype(np.float32)


@dataclass(frozen=True)
class FocusEstimate:
    """The plate's focus: ``focus_m`` (None = 2D plate, use ``uniform_radius_px``), ``fstop``,
    ``estimated`` (False = a documented default), ``sharpness_by_depth``: ((depth_m, blur_radius_px,
    tiles), ...) per depth bin for the report, and ``coc_inf_px`` the fitted CoC radius at infinity.
    """

    focus_m: float | None
    fstop: float
    estimated: bool
    sharpness_by_depth: tuple[tuple[float, float, int], ...] = ()
    uniform_radius_px: float = 0.0
    coc_inf_px: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sharpness_by_depth",
                           tuple((float(d), float(r), int(n)) for d, r, n in self.sharpness_by_depth))

    def to_dict(self) -> dict[str, Any]:
        return {"focus_m": self.focus_m, "fstop": self.fstop, "estimated": self.estimated,
                "sharpness_by_depth": [list(t) for t in self.sharpness_by_depth],
                "uniform_radius_px": self.uniform_radius_px, "coc_inf_px": self.coc_inf_px}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FocusEstimate":
        return cls(d["focus_m"], float(d["fstop"]), bool(d["estimated"]),
                   tuple(tuple(t) for t in d.get("sharpness_by_depth", ())),
                   float(d.get("uniform_radius_px", 0.0)), float(d.get("coc_inf_px", 0.0)))


# --- measuring ---------------------------------------------------------------------------------------

def _gradient_mag(y: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(y)
    return np.hypot(gx, gy)


def _reblur_sigma(a: np.ndarray, b: np.ndarray) -> float | None:
    """Re-blur sigma of a tile from its gradient ``a`` and re-blurred gradient ``b`` (None: no edges).

    Taken at the gradient's local maxima (edge centres) above 30% of the tile's strongest edge.
    """
    top = float(a.max())
    if top <= 0.0:
        return None
    sel = (a >= ndimage.maximum_filter(a, 3)) & (a > 0.3 * top)
    if sel.sum() < 3:
        return None
    ratio = max(float(np.median(a[sel] / np.maximum(b[sel], 1e-12))), 1.0 + 1e-9)
    return _REBLUR_SIGMA / float(np.sqrt(ratio * ratio - 1.0))


@functools.lru_cache(maxsize=1)
def _calibration() -> tuple[np.ndarray, np.ndarray]:
    """(measured re-blur sigma, disc radius px): step edges at a few angles blurred by known discs.

    A disc-blurred edge is not a Gaussian one (its gradient has a flat top), so the Gaussian
    formula's sigma is mapped to a disc radius through this table rather than by ``r = 2 sigma``.
    """
    radii = np.array([0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0])
    yy, xx = np.mgrid[:128, :128] - 64.0
    meas = []
    for r in radii:
        vals = []
        for ang in (0.0, 0.3, 0.7):
            img = ((np.cos(ang) * xx + np.sin(ang) * yy) > 0.25).astype(np.float64)
            if r > 0:
                n = int(np.ceil(r))
                img = signal.fftconvolve(np.pad(img, n, mode="edge"), disc_kernel(r), mode="valid")
            a = _gradient_mag(img)[8:-8, 8:-8]
            b = _gradient_mag(ndimage.gaussian_filter(img, _REBLUR_SIGMA, mode="nearest"))[8:-8, 8:-8]
            vals.append(_reblur_sigma(a, b))
        meas.append(float(np.median(vals)))
    return np.maximum.accumulate(np.asarray(meas) + np.arange(len(radii)) * 1e-6), radii


def _sigma_to_radius(sigma: float) -> float:
    ms, radii = _calibration()
    if sigma >= ms[-1]:  # beyond the table: keep its last slope
        return float(radii[-1] + (sigma - ms[-1]) * (radii[-1] - radii[-2]) / (ms[-1] - ms[-2]))
    return float(np.interp(sigma, ms, radii))


def _tile_blur(y: np.ndarray, ok: np.ndarray, tile_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tile: (blur radius px, contrast, valid) arrays of shape (ty, tx), by the re-blur ratio."""
    g1 = _gradient_mag(y)
    g2 = _gradient_mag(ndimage.gaussian_filter(y, _REBLUR_SIGMA, mode="nearest"))
    h, w = y.shape
    ty, tx = h // tile_px, w // tile_px
    rad = np.zeros((ty, tx))
    con = np.zeros((ty, tx))
    val = np.zeros((ty, tx), dtype=bool)
    scale = max(float(np.percentile(g1[ok], 99)), 1e-12) if ok.any() else 1.0
    for i in range(ty):
        for j in range(tx):
            sl = (slice(i * tile_px, (i + 1) * tile_px), slice(j * tile_px, (j + 1) * tile_px))
            if not ok[sl].all():
                continue
            a, b = g1[sl][2:-2, 2:-2], g2[sl][2:-2, 2:-2]
            if a.max() < 0.05 * scale:
                continue  # no texture to measure
            sigma = _reblur_sigma(a, b)
            if sigma is None:
                continue
            rad[i, j], con[i, j], val[i, j] = _sigma_to_radius(sigma), float(a.max()), True
    return rad, con, val


def estimate_focus(plate_rgb: np.ndarray, plate_z: np.ndarray | None, *, camera: Camera | None = None,
                   region: np.ndarray | None = None) -> FocusEstimate:
    """Estimate the plate's focus distance and f-stop from sharpness vs depth (see module doc).

    ``plate_rgb``: (H, W, 3|4) ACEScg; ``plate_z``: (H, W) metric Z (inf = sky) or None (2D plate);
    ``camera``: for the f-stop (default: ``default_camera``, the same guess the stage makes);
    ``region``: (H, W) bool, where the 2D fallback measures the uniform blur (e.g. near the element).
    """
    rgb = rgb_of(plate_rgb)
    h, w = rgb.shape[:2]
    ok = finite_pixels(rgb)
    y = np.where(ok, luminance(np.where(ok[..., None], rgb, 0.0)), 0.0)
    # blur is measured on a log-like encoding so bright and dark edges count alike
    y = np.log1p(np.maximum(y, 0.0) * 16.0).astype(np.float64)
    tile = _TILE_PX if min(h, w) >= 4 * _TILE_PX else max(8, min(h, w) // 4)
    if plate_z is None:
        rad, _, val = _tile_blur(y, ok, tile)
        if region is not None:
            ty, tx = rad.shape
            rt = np.asarray(region, dtype=bool)[:ty * tile, :tx * tile].reshape(ty, tile, tx, tile).any(axis=(1, 3))
            val &= rt
        r = float(np.median(rad[val])) if val.any() else 0.0
        log.info("focus: no depth; uniform blur radius %.2f px from %d tiles", r, int(val.sum()))
        return FocusEstimate(None, DEFAULT_FSTOP, False, (), r, 0.0)

    z = np.asarray(plate_z, dtype=np.float64)
    if z.shape != (h, w):
        raise InputError(f"plate depth is {z.shape}, the plate is {(h, w)}")
    zok = np.isfinite(z) & (z > 0)
    rad, _, val = _tile_blur(y, ok & zok, tile)
    ty, tx = rad.shape
    zt = z[:ty * tile, :tx * tile].reshape(ty, tile, tx, tile)
    zok_t = zok[:ty * tile, :tx * tile].reshape(ty, tile, tx, tile)
    zmin = np.where(zok_t, zt, np.inf).min(axis=(1, 3))
    zmax = np.where(zok_t, zt, 0.0).max(axis=(1, 3))
    # a tile measures one depth only if its depth is nearly constant (no depth edge across it)
    val &= np.isfinite(zmin) & (zmax <= zmin * 1.1)
    with np.errstate(invalid="ignore"):  # inf * 0 in tiles with no depth; those are not in ``val``
        zs, rs = np.sqrt(zmin * zmax)[val], rad[val]
    cam = camera if camera is not None else default_camera(w, h)
    table = _bin_by_depth(zs, rs)
    if zs.size < _MIN_TILES or zs.max() / zs.min() < 1.5:
        focus = float(zs[np.argmin(rs)]) if zs.size else float(np.median(z[zok])) if zok.any() else 10.0
        log.info("focus: too little depth range / texture (%d tiles); focus %.2f m, f/%.1f assumed",
                 zs.size, focus, DEFAULT_FSTOP)
        return FocusEstimate(focus, DEFAULT_FSTOP, False, table)
    best = None
    for s in np.geomspace(zs.min(), zs.max(), 96):
        d2 = (np.abs(zs - s) / zs) ** 2
        a = np.stack([np.ones_like(d2), d2], axis=1)
        coef, *_ = np.linalg.lstsq(a, rs ** 2, rcond=None)
        coef = np.maximum(coef, 0.0)
        err = float(np.abs(a @ coef - rs ** 2).sum())
        if best is None or err < best[0]:
            best = (err, float(s), float(np.sqrt(coef[1])))
    _, focus, k_px = best
    f = cam.focal_mm
    s_mm = focus * 1000.0
    if k_px < 0.25 or s_mm <= f:
        log.info("focus: nothing measurably out of focus; focus %.2f m, f/%.0f", focus, MAX_FSTOP)
        return FocusEstimate(focus, MAX_FSTOP, True, table, 0.0, k_px)
    fstop = f * f / (2.0 * k_px * (s_mm - f)) * cam.width / cam.haperture_mm
    fstop = float(np.clip(fstop, 0.7, MAX_FSTOP))
    log.info("focus: %.2f m, f/%.2f (CoC at infinity %.2f px, %d tiles)", focus, fstop, k_px, zs.size)
    return FocusEstimate(focus, fstop, True, table, 0.0, k_px)


def _bin_by_depth(zs: np.ndarray, rs: np.ndarray, bins: int = 8) -> tuple[tuple[float, float, int], ...]:
    if zs.size == 0:
        return ()
    edges = np.geomspace(zs.min(), zs.max() * 1.0001, bins + 1)
    out = []
    for i in range(bins):
        sel = (zs >= edges[i]) & (zs < edges[i + 1])
        if sel.any():
            out.append((float(np.sqrt(edges[i] * edges[i + 1])), float(np.median(rs[sel])), int(sel.sum())))
    return tuple(out)


# --- applying ----------------------------------------------------------------------------------------

def disc_kernel(radius_px: float) -> np.ndarray:
    """(2R+1, 2R+1) float64 disc of ``radius_px``, anti-aliased by 8x8 supersampling, sums to 1."""
    r = float(radius_px)
    if r <= 0.0:
        return np.ones((1, 1))
    n = int(np.ceil(r))
    ss = 8
    o = (np.arange(ss) + 0.5) / ss - 0.5
    c = np.arange(-n, n + 1, dtype=np.float64)
    xs = (c[:, None] + o[None, :]).ravel()
    inside = (xs[:, None] ** 2 + xs[None, :] ** 2) <= r * r
    k = inside.reshape(2 * n + 1, ss, 2 * n + 1, ss).mean(axis=(1, 3))
    return k / k.sum()


def _blur_pair(a: np.ndarray, r_a: float, b: np.ndarray, r_b: float) -> np.ndarray:
    """``disc(r_a) * a + disc(r_b) * b`` for (h, w, C) float32 images, 'same' size, zero outside.

    One FFT per input and one inverse for the sum (the convolutions are linear).
    """
    h, w = a.shape[:2]
    n = int(np.ceil(max(r_a, r_b)))
    fh, fw = sfft.next_fast_len(h + 2 * n, real=True), sfft.next_fast_len(w + 2 * n, real=True)
    acc = None
    for img, r in ((a, r_a), (b, r_b)):
        k = disc_kernel(r).astype(np.float32)
        kn = k.shape[0] // 2
        kp = np.zeros((fh, fw), dtype=np.float32)
        kp[:k.shape[0], :k.shape[1]] = k
        kp = np.roll(kp, (-kn, -kn), axis=(0, 1))  # centre the kernel at the origin
        spec = sfft.rfft2(img, s=(fh, fw), axes=(0, 1), workers=_WORKERS) * \
            sfft.rfft2(kp, workers=_WORKERS)[..., None]
        acc = spec if acc is None else acc + spec
    out = sfft.irfft2(acc, s=(fh, fw), axes=(0, 1), workers=_WORKERS)
    # circular wrap only reaches the zero padding (>= n px beyond each side)
    return np.ascontiguousarray(out[:h, :w], dtype=np.float32)


def defocus(element_rgba: np.ndarray, element_z: np.ndarray, radius_px: np.ndarray) -> np.ndarray:
    """Depth-varying disc (bokeh) blur of a premultiplied element: (H, W, 4) -> (H, W, 4).

    ``element_z``: (H, W) metric Z (inf where empty); ``radius_px``: (H, W) per-pixel CoC radius
    (e.g. ``coc_radius_px(element_z, ...)``). The element is cut into layers: by radius level
    (``RADIUS_LEVELS_PX``) and by side of focus (nearer / farther than the sharpest pixels). Each
    pixel's weight is split between its two neighbouring levels linearly in ``r^2``, so the blur's
    second moment matches the exact disc; each layer is blurred with its level's disc and the layers
    are composited ``over`` back to front by their mean depth. Work happens on the element's
    bounding box grown by the largest radius.
    """
    el = np.asarray(element_rgba, dtype=np.float32)
    if el.ndim != 3 or el.shape[2] != 4:
        raise InputError(f"element must be (H, W, 4) premultiplied RGBA, got {el.shape}")
    h, w = el.shape[:2]
    z = np.asarray(element_z)
    rad = np.asarray(radius_px)
    if z.shape != (h, w) or rad.shape != (h, w):
        raise InputError(f"element is {(h, w)} but depth is {z.shape} and radius {rad.shape}")
    levels = np.asarray(RADIUS_LEVELS_PX)
    present = el.any(axis=-1)
    if not present.any():
        return el.copy()
    rows, cols = np.flatnonzero(present.any(axis=1)), np.flatnonzero(present.any(axis=0))
    bb = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    rb = np.clip(np.nan_to_num(rad[bb].astype(np.float64), nan=0.0, posinf=levels[-1]), 0.0, levels[-1])
    rmax = float(rb[present[bb]].max())
    if rmax < 0.05:
        return np.nan_to_num(el, nan=0.0, posinf=0.0, neginf=0.0)
    # the interpolation reaches the level above the largest radius
    pad = int(np.ceil(levels[min(int(np.searchsorted(levels, rmax, side="right")), len(levels) - 1)])) + 1
    y0, y1 = max(0, rows[0] - pad), min(h, rows[-1] + pad + 1)
    x0, x1 = max(0, cols[0] - pad), min(w, cols[-1] + pad + 1)
    e = np.nan_to_num(el[y0:y1, x0:x1], nan=0.0, posinf=0.0, neginf=0.0)
    pc = present[y0:y1, x0:x1]
    rc = np.clip(np.nan_to_num(rad[y0:y1, x0:x1].astype(np.float64), nan=0.0, posinf=levels[-1]), 0.0, levels[-1])
    zc = np.asarray(z[y0:y1, x0:x1], dtype=np.float64)
    zc = np.where(np.isfinite(zc), zc, 1e12)
    # side of focus: nearer or farther than the sharpest pixels
    sharp = pc & (rc <= rc[pc].min() + 0.5)
    z_focus = float(np.median(zc[sharp]))
    near = zc < z_focus
    k = np.clip(np.searchsorted(levels, rc, side="right") - 1, 0, len(levels) - 2)
    lo, hi = levels[k], levels[k + 1]
    t = np.clip((rc * rc - lo * lo) / (hi * hi - lo * lo), 0.0, 1.0)
    hc, wc = pc.shape
    layers = []
    for side in (False, True):
        for lev in np.unique(k[pc & (near == side)]):
            m = pc & (near == side) & (k == lev)
            # blur only the layer's own box, grown by its larger radius
            my, mx = np.nonzero(m)
            g = int(np.ceil(levels[lev + 1])) + 1
            sy = slice(max(0, my.min() - g), min(hc, my.max() + g + 1))
            sx = slice(max(0, mx.min() - g), min(wc, mx.max() + g + 1))
            part = e[sy, sx] * m[sy, sx][..., None]
            ts = t[sy, sx][..., None]
            wa = np.average(zc[m], weights=np.maximum(e[..., 3][m], 1e-6))
            blurred = _blur_pair(part * (1.0 - ts), levels[lev], part * ts, levels[lev + 1])
            layers.append((wa, sy, sx, blurred))
    layers.sort(key=lambda item: -item[0])  # back to front
    acc = np.zeros(e.shape, dtype=np.float32)
    for _, sy, sx, lay in layers:
        acc[sy, sx] = lay + acc[sy, sx] * (1.0 - np.clip(lay[..., 3:4], 0.0, 1.0))
    out = el.copy()
    out[y0:y1, x0:x1] = acc.astype(np.float32)
    return out
