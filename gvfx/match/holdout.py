"""Depth holdouts with anti-aliased edges: where the plate is nearer than the element, hide the element.

A hard per-pixel test (``plate Z < element Z``) stair-steps along every depth discontinuity of the
plate (a wall's silhouette). Here the plate's depth is evaluated at ``samples x samples`` sub-pixel
positions by bilinear interpolation of its *disparity* (1 / Z, so sky is 0 and a tilted plane
interpolates exactly), each sub-sample is tested with a soft ramp of ``softness`` (a fraction of the
element's depth), and the results are averaged: the matte has a pixel's coverage along the edge.
Sub-sampling is only done where it can matter (a pixel whose 3x3 neighbourhood of plate depth straddles
the element's depth); elsewhere one sample at the centre gives the same answer.

Combining with an engine's own holdout (``mode``):
- ``"max"`` (default): ``max(engine, depth)``. Volumes give a fractional holdout (the share of their
  opacity behind the surface) that the depth test, which sees only the element's front Z, cannot;
  the depth test gives the anti-aliased edge engines do not. The max keeps the stronger of the two.
- ``"engine"``: the engine's holdout where it gave one (any value > 0 in the frame), else the depth one.
- ``"depth"``: the depth holdout only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["depth_holdout", "combine_holdouts", "HOLDOUT_MODES"]

HOLDOUT_MODES = ("max", "engine", "depth")


def _disparity(z: np.ndarray) -> np.ndarray:
    zz = np.asarray(z, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(np.isfinite(zz) & (zz > 0), 1.0 / zz, 0.0)
    return d.astype(np.float32)


def _ramp(element_z: np.ndarray, plate_z: np.ndarray, softness: float) -> np.ndarray:
    """1 where the plate is nearer than the element by more than half the ramp, 0 where farther."""
    soft = np.maximum(softness * element_z, 1e-6)
    with np.errstate(invalid="ignore", over="ignore"):
        h = np.clip((element_z - plate_z) / soft + 0.5, 0.0, 1.0)
    return np.where(np.isfinite(h), h, np.where(plate_z < element_z, 1.0, 0.0))


def depth_holdout(element_z: np.ndarray, plate_z: np.ndarray, *, element_alpha: np.ndarray | None = None,
                  softness: float = 0.02, samples: int = 4) -> np.ndarray:
    """(H, W) float32 holdout in 0..1: the share of each pixel where the plate is in front of the element.

    ``element_z``, ``plate_z``: (H, W) metric camera Z (``inf`` = no element / sky, NaN treated as inf).
    ``element_alpha`` (optional): only pixels with alpha > 0 are computed (the rest are 0).
    ``softness``: width of the depth ramp as a fraction of the element's depth (0.02 = 2 cm at 1 m).
    ``samples``: sub-samples per axis on depth edges (1 = centre only, hard edges).
    """
    ez = np.asarray(element_z, dtype=np.float32)
    ez = np.where(np.isnan(ez), np.inf, ez)
    pz = np.asarray(plate_z, dtype=np.float32)
    h, w = ez.shape
    active = np.isfinite(ez)
    if element_alpha is not None:
        active &= np.asarray(element_alpha) > 0
    out = np.zeros((h, w), np.float32)
    if not active.any():
        return out
    disp = _disparity(pz)
    pz_c = np.where(disp > 0, 1.0 / np.maximum(disp, 1e-30), np.inf).astype(np.float32)
    centre = _ramp(ez, pz_c, softness)
    out[active] = centre[active]
    s = max(1, int(samples))
    if s == 1:
        return out
    # pixels whose 3x3 plate-disparity range straddles the element's disparity: those need sub-samples
    ed = np.where(active, 1.0 / np.where(active, ez, 1.0), 0.0).astype(np.float32)
    dmin = ndimage.minimum_filter(disp, size=3, mode="nearest")
    dmax = ndimage.maximum_filter(disp, size=3, mode="nearest")
    band = softness * 0.5 * ed
    edge = active & (dmin < ed + band) & (dmax > ed - band) & (dmax - dmin > band)
    ys, xs = np.nonzero(edge)
    if len(ys) == 0:
        return out
    offs = (np.arange(s, dtype=np.float32) + 0.5) / s  # sub-sample positions inside a pixel
    acc = np.zeros(len(ys), np.float32)
    ezs = ez[ys, xs]
    for oy in offs:
        for ox in offs:
            # continuous position in pixel units; sample centres are at i + 0.5
            fx = xs + ox - 0.5
            fy = ys + oy - 0.5
            x0 = np.clip(np.floor(fx).astype(np.int64), 0, w - 1)
            y0 = np.clip(np.floor(fy).astype(np.int64), 0, h - 1)
            x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
            tx = np.clip(fx - x0, 0.0, 1.0)
            ty = np.clip(fy - y0, 0.0, 1.0)
            d = ((disp[y0, x0] * (1 - tx) + disp[y0, x1] * tx) * (1 - ty)
                 + (disp[y1, x0] * (1 - tx) + disp[y1, x1] * tx) * ty)
            with np.errstate(divide="ignore"):
                zs = np.where(d > 0, 1.0 / d, np.inf).astype(np.float32)
            acc += _ramp(ezs, zs, softness)
    out[ys, xs] = acc / (s * s)
    return out


def combine_holdouts(depth: np.ndarray, engine: np.ndarray | None, mode: str = "max") -> np.ndarray:
    """The element's holdout from the depth test and the engine's own (see the module doc for ``mode``)."""
    if mode not in HOLDOUT_MODES:
        raise ValueError(f"holdout mode {mode!r} is not one of {', '.join(HOLDOUT_MODES)}")
    d = np.clip(np.asarray(depth, dtype=np.float32), 0.0, 1.0)
    if engine is None or mode == "depth":
        return d
    e = np.clip(np.nan_to_num(np.asarray(engine, dtype=np.float32)), 0.0, 1.0)
    if mode == "engine":
        return e if bool((e > 0).any()) else d
    return np.maximum(d, e)
