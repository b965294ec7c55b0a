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
#: Gaussian splats reaching further than this (px) are deposited on a coarse grid (1, 2, 4 or 8 px cells,
#: so the blur is 1.5-3 cells wide) and blurred there, one separable gaussian per size band, instead of
#: drawn pixel by pixel: a defocused rain drop costs the same as a sharp one.
BLUR_REACH_PX = 6
#: width ratio of the size bands of blurred splats (a splat's sigma is within +-10% of its band's)
BLUR_BAND_RATIO = 1.2


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
    wide = np.zeros(n, bool) if quads else reach > BLUR_REACH_PX
    if wide.any():
        _blurred_splats(acc, zflat, splats, np.flatnonzero(wide), cover, sigma, width, height)
    for rad in np.unique(reach[~wide]):
        sel = np.flatnonzero((reach == rad) & ~wide)
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


def _resample(lo: np.ndarray, k_from: int, pad_from: int, k_to: int, pad_to: int, shape: tuple[int, int],
              nearest: bool = False) -> np.ndarray:
    """A (..., h, w) grid of ``k_from``-px cells (``pad_from`` cells of margin) resampled onto the grid of
    ``k_to``-px cells with ``pad_to`` margin and ``shape`` cells: bilinear (or nearest), separably."""
    out = lo
    for axis, n in ((-2, shape[0]), (-1, shape[1])):
        centre = (np.arange(n) - pad_to + 0.5) * k_to  # full-res coordinate of each target cell centre
        c = centre / k_from - 0.5 + pad_from
        size = out.shape[axis]
        if nearest:
            out = np.take(out, np.clip(np.floor(c + 0.5).astype(np.intp), 0, size - 1), axis=axis)
            continue
        i0 = np.clip(np.floor(c).astype(np.intp), 0, size - 2)
        f = np.clip(c - i0, 0.0, 1.0)
        shp = [1] * out.ndim
        shp[axis] = n
        f = f.reshape(shp).astype(out.dtype)
        out = np.take(out, i0, axis=axis) * (1 - f) + np.take(out, i0 + 1, axis=axis) * f
    return out


def _blurred_splats(acc: np.ndarray, zflat: np.ndarray, s: Splats, idx: np.ndarray, cover: np.ndarray,
                    sigma: np.ndarray, width: int, height: int) -> None:
    """Add the wide gaussian splats ``idx`` to ``acc`` (H*W, 4: a*rgb, a) and ``zflat`` (nearest Z).

    Each size band's splats are deposited bilinearly on a grid of k-px cells (k a power of two, the
    band's sigma 1.5-3 cells), blurred there by the band's sigma (less the deposit's and the upsample's
    own spread); the grids are added coarse to fine, each upsampled bilinearly into the next, so the full
    frame is touched once. Z is the nearest splat within 3 sigma; the footprint is a gaussian cut at
    3 sigma (1% of its peak) carrying the splat's whole mass alpha * cover."""
    from scipy import ndimage

    band = np.floor(np.log(sigma[idx]) / np.log(BLUR_BAND_RATIO)).astype(np.intp)
    sig_b = BLUR_BAND_RATIO ** (band + 0.5)
    cell = (2 ** np.floor(np.log2(np.maximum(sig_b / 1.5, 1.0)))).astype(np.intp)
    pad = 14  # cells of margin: 3 sigma of the widest band of a level (< 3 cells) plus the deposit
    levels = sorted({int(c) for c in cell}, reverse=True)
    grid = zgrid = None
    prev_k = 0
    for k in levels:
        hl, wl = -(-height // k) + 2 * pad, -(-width // k) + 2 * pad
        if grid is None:
            lo, zl = np.zeros((4, hl, wl), np.float32), np.full((hl, wl), np.inf, np.float32)
        else:
            lo = _resample(grid, prev_k, pad, k, pad, (hl, wl))
            zl = _resample(zgrid, prev_k, pad, k, pad, (hl, wl), nearest=True)
        in_k = cell == k
        for b in np.unique(band[in_k]):
            sel = idx[in_k & (band == b)]
            cu = s.uv[sel, 0] / k - 0.5 + pad
            cv = s.uv[sel, 1] / k - 0.5 + pad
            ok = (cu >= 0) & (cu < wl - 1) & (cv >= 0) & (cv < hl - 1)
            if not ok.any():
                continue
            sel, cu, cv = sel[ok], cu[ok], cv[ok]
            x0, y0 = np.floor(cu).astype(np.intp), np.floor(cv).astype(np.intp)
            fx, fy = cu - x0, cv - y0
            m = s.alpha[sel] * cover[sel] / (k * k)
            vals = np.concatenate([s.rgb[sel] * m[:, None], m[:, None]], axis=1)  # (M, 4)
            flat = np.concatenate([(y0 + dy) * wl + x0 + dx for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))])
            wgt = np.concatenate([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
            vv = np.tile(vals, (4, 1)) * wgt[:, None]
            sb = float(BLUR_BAND_RATIO ** (b + 0.5)) / k
            # the bilinear deposit and the bilinear upsample each spread a point by ~1/6 cell^2 per axis
            sb_blur = np.sqrt(max(sb * sb - 1.0 / 3.0, 0.25))
            for c in range(4):
                dep = np.bincount(flat, weights=vv[:, c], minlength=hl * wl).reshape(hl, wl)
                lo[c] += ndimage.gaussian_filter(dep, sb_blur, mode="constant", truncate=3.0)
            zd = np.full(hl * wl, np.inf, np.float32)
            np.minimum.at(zd, np.floor(cv + 0.5).astype(np.intp) * wl + np.floor(cu + 0.5).astype(np.intp),
                          s.z[sel].astype(np.float32))
            r3 = int(np.ceil(3.0 * sb))
            zl = np.minimum(zl, ndimage.minimum_filter(zd.reshape(hl, wl), size=2 * r3 + 1, mode="constant",
                                                       cval=np.inf))
        grid, zgrid, prev_k = lo, zl, k
    up = _resample(grid, prev_k, pad, 1, 0, (height, width))
    zu = _resample(zgrid, prev_k, pad, 1, 0, (height, width), nearest=True)
    reached = np.isfinite(zu)  # nothing is added where no splat reaches (Z inf)
    up *= reached[None]
    for c in range(4):
        acc[:, c] += up[c].ravel()
    np.minimum(zflat, zu.ravel(), out=zflat)


def glow(rgba: np.ndarray, z: np.ndarray, strength: float, size_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Add a glow to an emissive render: ``strength`` times its light spread by two gaussians
    (``size_px`` and 3 ``size_px`` sigma, 60/40), added to rgb with no alpha (glow is light, it hides
    nothing). Z spreads to the glowing pixels (nearest emitter within the glow's reach) so the glow is
    held out like the emitter. Returns new (rgba, z)."""
    from scipy import ndimage

    if strength <= 0 or size_px <= 0:
        return rgba, z
    # the filters run on the box of the emitters grown by the kernels' reach: outside it the glow is 0
    # and inside it the result is the whole frame's, to the bit (constant-mode edges are zeros either way)
    reach = int(np.ceil(9.0 * size_px))
    zr = min(reach, 64)
    pad = int(3.0 * size_px + 0.5) + int(3.0 * np.sqrt(8.0) * size_px + 0.5) + zr + 1
    mask = np.any(rgba[..., :3] != 0, axis=-1) | np.isfinite(z)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return rgba, z
    h, w = mask.shape
    box = (slice(max(0, rows[0] - pad), min(h, rows[-1] + pad + 1)),
           slice(max(0, cols[0] - pad), min(w, cols[-1] + pad + 1)))
    rgb = rgba[box][..., :3].astype(np.float32)
    g = np.empty_like(rgb)
    for c in range(3):
        near = ndimage.gaussian_filter(rgb[..., c], size_px, mode="constant", truncate=3.0)
        far = ndimage.gaussian_filter(near, np.sqrt(8.0) * size_px, mode="constant", truncate=3.0)
        g[..., c] = 0.6 * near + 0.4 * far
    out = rgba.copy()
    out[box][..., :3] += np.float32(strength) * g
    if np.isfinite(z).any():
        zb = z[box]
        zs = ndimage.minimum_filter(zb, size=2 * zr + 1, mode="nearest")
        lit = (g.max(axis=-1) > 0) & ~np.isfinite(zb)
        z = z.copy()
        z[box] = np.where(lit, zs, zb).astype(np.float32)
    return out, z
