"""Raised surfaces the plate never shows: the part of a table top hidden behind a box standing on it.

Each flat raised surface seen in the depth (the cells of the support field's top layer at one height,
connected) continues, at its height, over the empty cells inside its convex outline that no camera
saw through: a view whose depth at a cell's pixel lies beyond the cell proves free space there (a
table's cut-out, the inner corner of an L-shaped desk), so only what every view had hidden is filled.
Beyond the outline nothing is guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from gvfx.camera import Camera

log = logging.getLogger(__name__)

__all__ = ["fill_hidden_tops", "View"]

#: Cells of one surface agree on its height within this many metres.
HEIGHT_TOLERANCE_M = 0.02
#: A flat surface needs this many cells (1 cm cells: 0.02 m²) before it is extended.
MIN_SURFACE_CELLS = 200

#: A plate view: depth Z (H, W), its camera, camera-to-world 4x4.
View = tuple[np.ndarray, Camera, np.ndarray]


def fill_hidden_tops(layers: np.ndarray, origin: tuple[float, float], cell_m: float, up: np.ndarray,
                     e1: np.ndarray, e2: np.ndarray, views: Sequence[View]) -> tuple[np.ndarray, int]:
    """``layers`` (NA, NB, L), highest first, with each flat surface of the top layer extended over the
    empty cells inside its outline that no view saw through; returns the new layers and the cells filled."""
    from scipy import ndimage

    top = layers[..., 0]
    empty = ~np.isfinite(top)
    if empty.all() or not empty.any():
        return layers, 0
    out = layers.copy()
    filled = 0
    eight = np.ones((3, 3), bool)
    for h in _surface_heights(top[~empty]):
        flat = np.abs(np.where(empty, np.inf, top) - h) <= HEIGHT_TOLERANCE_M
        labels, count = ndimage.label(flat, structure=eight)
        for k in range(1, count + 1):
            comp = labels == k
            if comp.sum() < MIN_SURFACE_CELLS:
                continue
            inside = _inside_outline(comp) & empty & ~np.isfinite(out[..., 0])
            if not inside.any():
                continue
            ia, ib = np.nonzero(inside)
            cand = np.zeros_like(inside)
            hidden = ~_seen_through((ia, ib), h, origin, cell_m, up, e1, e2, views)
            cand[ia[hidden], ib[hidden]] = True
            grown, _ = ndimage.label(cand | comp, structure=eight)
            keep = cand & np.isin(grown, np.unique(grown[comp]))
            out[..., 0][keep] = h
            filled += int(keep.sum())
    if filled:
        log.info("support: %d hidden cells of raised surfaces inferred (%.2f m²)", filled, filled * cell_m ** 2)
    return out, filled


def _surface_heights(heights: np.ndarray) -> list[float]:
    """The heights that many top-layer cells share (flat surfaces), lowest first."""
    lo = float(heights.min())
    bins = np.floor((heights - lo) / HEIGHT_TOLERANCE_M).astype(np.int64)
    counts = np.bincount(bins)
    out = []
    for b in np.flatnonzero(counts >= MIN_SURFACE_CELLS):
        sel = np.abs(bins - b) <= 1
        h = float(np.median(heights[sel]))
        if not out or abs(h - out[-1]) > HEIGHT_TOLERANCE_M:
            out.append(h)
    return out


def _inside_outline(comp: np.ndarray) -> np.ndarray:
    """Cells inside the convex outline of the cells ``comp`` (a boolean grid)."""
    from scipy.spatial import ConvexHull, QhullError

    ia, ib = np.nonzero(comp)
    pts = np.stack([ia, ib], axis=1).astype(np.float64)
    try:
        hull = ConvexHull(pts)
    except QhullError:  # collinear cells: no area to extend over
        return comp.copy()
    a0, a1, b0, b1 = ia.min(), ia.max() + 1, ib.min(), ib.max() + 1
    ga, gb = np.mgrid[a0:a1, b0:b1]
    q = np.stack([ga.ravel(), gb.ravel()], axis=1).astype(np.float64)
    ok = np.all(q @ hull.equations[:, :2].T + hull.equations[:, 2] <= 0.5, axis=1)
    out = np.zeros_like(comp)
    out[a0:a1, b0:b1] = ok.reshape(ga.shape)
    return out


def _seen_through(cells: tuple[np.ndarray, np.ndarray], h: float, origin: tuple[float, float], cell_m: float,
                  up: np.ndarray, e1: np.ndarray, e2: np.ndarray, views: Sequence[View]) -> np.ndarray:
    """(M,) whether some view saw past the centre of each cell at height ``h``: its depth there lies
    beyond the cell (by more than two cells and 0.3% of the distance), so the ray went on through free space."""
    ia, ib = cells
    p = ((ia + 0.5) * cell_m + origin[0])[:, None] * e1 + ((ib + 0.5) * cell_m + origin[1])[:, None] * e2 + h * up
    seen = np.zeros(len(p), bool)
    for z, camera, cam_to_world in views:
        m = np.asarray(cam_to_world, np.float64)
        pc = (p - m[:3, 3]) @ m[:3, :3]
        uv, zc = camera.project(pc)
        hh, ww = z.shape
        u = np.floor(uv[:, 0] * ww / camera.width).astype(np.int64)
        v = np.floor(uv[:, 1] * hh / camera.height).astype(np.int64)
        ok = (zc > 0) & (u >= 0) & (u < ww) & (v >= 0) & (v < hh)
        zp = np.full(len(p), np.nan)
        zp[ok] = z[v[ok], u[ok]]
        with np.errstate(invalid="ignore"):
            beyond = ok & ((zp > zc + np.maximum(2.0 * cell_m, 0.003 * zc)) | np.isposinf(zp))
        seen |= beyond
    return seen
