"""A CPU z-buffer rasteriser of triangles in numpy: no OpenGL, EGL or GPU.

Every (triangle, pixel-centre) pair inside the triangle's screen bounding box is enumerated at once,
tested with edge functions, and the nearest fragment per pixel kept (a sort by pixel then depth).
Barycentrics are perspective-correct (interpolated as ``w_i / z_i``). Pixel centres are at ``i + 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Fragments", "rasterize"]

NEAR_M = 1e-3
MAX_PAIRS = 3_000_000  # (triangle, pixel) pairs per batch: bounds memory for near, large triangles


@dataclass(frozen=True)
class Fragments:
    """The visible fragment of each covered pixel: ``pix`` (K,) flat pixel index (row * width + col),
    ``face`` (K,) triangle index, ``bary`` (K, 3) perspective-correct barycentrics, ``z`` (K,) depth."""

    pix: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    z: np.ndarray


def _empty() -> Fragments:
    return Fragments(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0))


def rasterize(xy: np.ndarray, z: np.ndarray, faces: np.ndarray, width: int, height: int, *,
              cull_back: bool = False) -> Fragments:
    """Rasterise triangles given by screen positions ``xy`` (N, 2) pixels (u right, v down) and depths
    ``z`` (N,) (> 0 in front). ``cull_back`` drops triangles that are clockwise on screen (facing away,
    for counter-clockwise outward meshes). Triangles with a vertex behind ``NEAR_M`` are dropped."""
    tri_xy = xy[faces]  # (M, 3, 2)
    tri_z = z[faces]
    x0, y0 = tri_xy[:, 0, 0], tri_xy[:, 0, 1]
    x1, y1 = tri_xy[:, 1, 0], tri_xy[:, 1, 1]
    x2, y2 = tri_xy[:, 2, 0], tri_xy[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)  # > 0: clockwise on screen with v down
    ok = (tri_z > NEAR_M).all(axis=1) & (np.abs(area) > 1e-12) & np.isfinite(area)
    if cull_back:
        ok &= area < 0  # counter-clockwise in a y-up view is negative here (v points down)
    lo = np.floor(tri_xy.min(axis=1) - 0.5) + 1  # first pixel index whose centre is >= min
    hi = np.floor(tri_xy.max(axis=1) - 0.5)
    bx0 = np.clip(lo[:, 0], 0, width - 1)
    by0 = np.clip(lo[:, 1], 0, height - 1)
    bx1 = np.clip(hi[:, 0], -1, width - 1)
    by1 = np.clip(hi[:, 1], -1, height - 1)
    nx = np.where(ok, bx1 - bx0 + 1, 0).clip(min=0).astype(np.int64)
    ny = np.where(ok, by1 - by0 + 1, 0).clip(min=0).astype(np.int64)
    counts = nx * ny
    live = np.flatnonzero(counts > 0)
    if live.size == 0:
        return _empty()
    inv_z = 1.0 / np.where(tri_z > NEAR_M, tri_z, 1.0)
    parts = []
    csum = np.cumsum(counts[live])
    start = 0
    while start < live.size:
        base = csum[start - 1] if start > 0 else 0
        stop = int(np.searchsorted(csum, base + MAX_PAIRS, side="right"))
        stop = max(stop, start + 1)
        parts.append(_batch(live[start:stop], counts, nx, bx0, by0, tri_xy, inv_z, area, width))
        start = stop
    pix = np.concatenate([p[0] for p in parts])
    if pix.size == 0:
        return _empty()
    face = np.concatenate([p[1] for p in parts])
    bary = np.concatenate([p[2] for p in parts])
    zz = np.concatenate([p[3] for p in parts])
    order = np.lexsort((zz, pix))
    pix, face, bary, zz = pix[order], face[order], bary[order], zz[order]
    first = np.ones(pix.size, bool)
    first[1:] = pix[1:] != pix[:-1]
    return Fragments(pix[first], face[first], bary[first], zz[first])


def _batch(ids, counts, nx, bx0, by0, tri_xy, inv_z, area, width):
    c = counts[ids]
    tri = np.repeat(ids, c)
    offs = np.repeat(np.cumsum(c) - c, c)
    local = np.arange(int(c.sum()), dtype=np.int64) - offs
    nxt = nx[tri]
    px = bx0[tri] + (local % nxt) + 0.5
    py = by0[tri] + (local // nxt) + 0.5
    t = tri_xy[tri]
    a = area[tri]
    # edge functions: w0 for the edge (1, 2), w1 for (2, 0), w2 for (0, 1)
    w0 = ((t[:, 2, 0] - t[:, 1, 0]) * (py - t[:, 1, 1]) - (t[:, 2, 1] - t[:, 1, 1]) * (px - t[:, 1, 0])) / a
    w1 = ((t[:, 0, 0] - t[:, 2, 0]) * (py - t[:, 2, 1]) - (t[:, 0, 1] - t[:, 2, 1]) * (px - t[:, 2, 0])) / a
    w2 = 1.0 - w0 - w1
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    if not inside.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0)
    tri, px, py = tri[inside], px[inside], py[inside]
    w = np.stack([w0[inside], w1[inside], w2[inside]], -1) * inv_z[tri]
    s = w.sum(axis=1)
    bary = w / s[:, None]
    zz = 1.0 / s
    pix = (py - 0.5).astype(np.int64) * width + (px - 0.5).astype(np.int64)
    return pix, tri.astype(np.int64), bary, zz
