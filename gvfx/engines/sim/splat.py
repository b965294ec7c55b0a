"""Rasterising particles: anti-aliased gaussian or rotated-quad footprints, motion-blurred streaks,
accumulated with ``np.bincount`` (order-fixed, so renders are bitwise deterministic) plus a nearest-Z
buffer. Output is premultiplied scene-linear RGBA.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: Largest footprint half-width in pixels (bigger particles are clamped: they are not sprites).
MAX_RADIUS_PX = 24
#: Streak sub-points per pixel of screen motion.
STREAK_DENSITY = 1.0
MAX_STREAK_POINTS = 96


@dataclass(frozen=True)
class Splats:
    """N screen-space splats: ``uv`` (N, 2) pixels, ``z`` (N,) depth, ``rgb`` (N, 3) colour (emitted or
    reflected radiance, not premultiplied), ``alpha`` (N,) opacity, ``radius_px`` (N,) footprint radius.
    Optional quads: ``angle`` (N,) screen rotation (radians) and ``aspect`` (N,) height/width."""

    uv: np.ndarray
    z: np.ndarray
    rgb: np.ndarray
    alpha: np.ndarray
    radius_px: np.ndarray
    angle: np.ndarray | None = None
    aspect: np.ndarray | None = None


def _take(s: Splats, idx: np.ndarray) -> Splats:
    opt = (None if s.angle is None else s.angle[idx], None if s.aspect is None else s.aspect[idx])
    return Splats(s.uv[idx], s.z[idx], s.rgb[idx], s.alpha[idx], s.radius_px[idx], *opt)


def concat(parts: list[Splats]) -> Splats:
    """One ``Splats`` from several (quads lose nothing: missing angle/aspect become 0/1)."""
    quads = any(p.angle is not None for p in parts)
    return Splats(np.concatenate([p.uv for p in parts]), np.concatenate([p.z for p in parts]),
                  np.concatenate([p.rgb for p in parts]), np.concatenate([p.alpha for p in parts]),
                  np.concatenate([p.radius_px for p in parts]),
                  np.concatenate([np.zeros(len(p.z)) if p.angle is None else p.angle for p in parts]) if quads else None,
                  np.concatenate([np.ones(len(p.z)) if p.aspect is None else p.aspect for p in parts]) if quads else None)


def streaks(uv: np.ndarray, z: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, radius_px: np.ndarray,
            valid: np.ndarray, angle: np.ndarray | None = None, aspect: np.ndarray | None = None) -> Splats:
    """Motion-blurred splats from S shutter samples per particle: ``uv`` (S, N, 2), ``z`` (S, N),
    ``rgb`` (S, N, 3), ``alpha``/``radius_px`` (S, N), ``valid`` (S, N) bool (alive at that time).

    Each particle's polyline through its samples is filled with sub-points about 1/STREAK_DENSITY px
    apart; every valid time sample gets an equal share of the alpha, so a streak keeps the particle's
    total energy whatever its length.
    """
    s_count, n = z.shape
    if s_count == 1:
        keep = valid[0] & np.isfinite(z[0]) & (z[0] > 0)
        sp = Splats(uv[0], z[0], rgb[0], alpha[0], radius_px[0],
                    None if angle is None else angle[0], None if aspect is None else aspect[0])
        return _take(sp, np.flatnonzero(keep))
    ok = valid & np.isfinite(z) & (z > 0) & np.isfinite(uv).all(axis=-1)
    seg_ok = ok[:-1] & ok[1:]  # (S-1, N)
    seg_len = np.linalg.norm(uv[1:] - uv[:-1], axis=-1)
    seg_len = np.where(seg_ok, seg_len, 0.0)
    # sub-points 1/STREAK_DENSITY px apart, or 3/4 of a footprint radius for wide (defocused) splats
    spacing = np.maximum(1.0, 0.75 * np.asarray(radius_px, np.float64)[:-1])
    steps = np.where(seg_ok, np.clip(np.ceil(seg_len * STREAK_DENSITY / spacing), 1, MAX_STREAK_POINTS),
                     0).astype(np.intp)
    # Time weight of each segment: the shutter is split evenly between the S-1 intervals; a particle
    # alive over only part of the shutter is drawn only there (its alpha fades with the fraction).
    share = 1.0 / (s_count - 1)
    seg_idx = np.repeat(np.arange(steps.size), steps.ravel())  # flat (S-1)*N index per sub-point
    if seg_idx.size == 0:
        return _take(Splats(uv[0], z[0], rgb[0], alpha[0], radius_px[0]), np.zeros(0, np.intp))
    start = np.cumsum(steps.ravel()) - steps.ravel()
    k = np.arange(seg_idx.size) - start[seg_idx]
    cnt = steps.ravel()[seg_idx]
    f = (k + 0.5) / cnt
    si, pi = np.divmod(seg_idx, n)

    def lerp(a: np.ndarray) -> np.ndarray:
        a0, a1 = a[si, pi], a[si + 1, pi]
        ff = f.reshape((-1,) + (1,) * (a0.ndim - 1))
        return a0 + (a1 - a0) * ff

    w = share / cnt
    return Splats(lerp(uv), lerp(z), lerp(rgb), lerp(alpha) * w, lerp(radius_px),
                  None if angle is None else lerp(angle), None if aspect is None else lerp(aspect))


def rasterize(splats: Splats, width: int, height: int, *, emissive: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 4) float32 premultiplied RGBA and (H, W) float32 Z (nearest splat, inf where none).

    Gaussian footprints (sigma = r / sqrt 2, peak = alpha at r >= 0.5 px; sub-pixel splats keep their
    area-weighted coverage so tiny bright sparks keep their energy); quads when ``angle`` is given.
    Colours are combined order-independently: alpha = 1 - exp(-sum a), colour = coverage-weighted mean
    (or, with ``emissive``, the plain sum of a * rgb: light adds up).
    """
    live = np.asarray(splats.alpha) > 0  # transparent splats add nothing
    if not live.all():
        splats = _take(splats, np.flatnonzero(live))
    n = len(splats.z)
    rgba = np.zeros((height, width, 4), np.float32)
    zbuf = np.full((height, width), np.inf, np.float32)
    if n == 0:
        return rgba, zbuf
    r = np.clip(np.asarray(splats.radius_px, np.float64), 0.05, MAX_RADIUS_PX)
    quads = splats.angle is not None
    sigma = np.maximum(r, 0.5) / np.sqrt(2.0)
    # Whole-footprint coverage in pixels: pi r^2 for discs, (2r)(2r*aspect) for quads; peak <= alpha.
    if quads:
        aspect = np.clip(np.asarray(splats.aspect, np.float64), 0.05, 1.0)
        cover = 4 * r * r * aspect
        reach = np.ceil(r + 1.0).astype(np.intp)
    else:
        cover = np.pi * r * r
        reach = np.ceil(2.0 * sigma).astype(np.intp)  # 2 sigma: the weights are renormalised
    reach = np.clip(reach, 1, MAX_RADIUS_PX + 2)
    acc = np.zeros((height * width, 4), np.float64)
    zflat = zbuf.reshape(-1)
    for rad in np.unique(reach):
        sel = np.flatnonzero(reach == rad)
        oy, ox = np.mgrid[-rad:rad + 1, -rad:rad + 1]
        ox, oy = ox.ravel(), oy.ravel()
        u, v = splats.uv[sel, 0], splats.uv[sel, 1]
        cu, cv = np.floor(u).astype(np.intp), np.floor(v).astype(np.intp)
        px = cu[:, None] + ox[None]
        py = cv[:, None] + oy[None]
        dx = px + 0.5 - u[:, None]
        dy = py + 0.5 - v[:, None]
        if quads:
            ang = splats.angle[sel][:, None]
            ca, sa = np.cos(ang), np.sin(ang)
            lx, ly = ca * dx + sa * dy, -sa * dx + ca * dy
            hw = r[sel][:, None]
            hh = (r[sel] * aspect[sel])[:, None]
            # 1-px box-filtered edges: coverage of the pixel by the rectangle, separably.
            wx = np.clip(hw + 0.5 - np.abs(lx), 0.0, 1.0) * np.minimum(1.0, 2 * hw)
            wy = np.clip(hh + 0.5 - np.abs(ly), 0.0, 1.0) * np.minimum(1.0, 2 * hh)
            w = wx * wy
        else:
            w = np.exp(-(dx * dx + dy * dy) / (2.0 * sigma[sel][:, None] ** 2))
        tot = w.sum(axis=1, keepdims=True)
        w = w / np.where(tot > 0, tot, 1.0) * cover[sel][:, None]
        if not quads:
            w = np.minimum(w, 1.0)
        inb = (px >= 0) & (px < width) & (py >= 0) & (py < height)
        a = splats.alpha[sel][:, None] * w
        a = np.where(inb, a, 0.0)
        flat = np.where(inb, py * width + px, 0).ravel()
        av = a.ravel()
        rgb = splats.rgb[sel]
        for c in range(3):
            acc[:, c] += np.bincount(flat, weights=(a * rgb[:, c][:, None]).ravel(), minlength=height * width)
        acc[:, 3] += np.bincount(flat, weights=av, minlength=height * width)
        zs = np.broadcast_to(splats.z[sel][:, None], a.shape).ravel()
        hit = av > 0
        np.minimum.at(zflat, flat[hit], zs[hit].astype(np.float32))
    asum = acc[:, 3]
    alpha = 1.0 - np.exp(-asum)
    if emissive:
        rgb = acc[:, :3]
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            rgb = np.where(asum[:, None] > 0, acc[:, :3] * (alpha / asum)[:, None], 0.0)
    rgba[..., :3] = rgb.reshape(height, width, 3)
    rgba[..., 3] = alpha.reshape(height, width)
    zbuf[rgba[..., 3] <= 0] = np.inf
    return rgba, zbuf


def glow(rgba: np.ndarray, z: np.ndarray, strength: float, size_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Add a glow to an emissive render: ``strength`` times its light spread by two gaussians
    (``size_px`` and 3 ``size_px`` sigma, 60/40), added to rgb with no alpha (glow is light, it hides
    nothing). Z spreads to the glowing pixels (nearest emitter within the glow's reach) so the glow is
    held out like the emitter. Returns new (rgba, z)."""
    from scipy import ndimage

    if strength <= 0 or size_px <= 0:
        return rgba, z
    rgb = rgba[..., :3].astype(np.float32)
    g = np.empty_like(rgb)
    for c in range(3):
        near = ndimage.gaussian_filter(rgb[..., c], size_px, mode="constant", truncate=3.0)
        far = ndimage.gaussian_filter(near, np.sqrt(8.0) * size_px, mode="constant", truncate=3.0)
        g[..., c] = 0.6 * near + 0.4 * far
    out = rgba.copy()
    out[..., :3] += np.float32(strength) * g
    reach = int(np.ceil(9.0 * size_px))
    if np.isfinite(z).any():
        zs = ndimage.minimum_filter(z, size=2 * min(reach, 64) + 1, mode="nearest")
        lit = (g.max(axis=-1) > 0) & ~np.isfinite(z)
        z = np.where(lit, zs, z).astype(np.float32)
    return out, z
