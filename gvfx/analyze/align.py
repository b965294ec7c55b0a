"""Making relative depth metric and steady: per-frame scale/shift fits to sparse metric points, and
temporal smoothing of the fitted series.

Monocular models such as Depth Anything output affine-invariant inverse depth (disparity) ``d``: the
metric inverse depth is ``1/z = s * d + t`` for an unknown scale ``s`` and shift ``t`` per frame. The
solve's sparse points give ``z`` at a few pixels; a robust least-squares fit (IRLS with Huber weights,
on residuals relative to depth) recovers ``(s, t)``. Fitting each frame alone flickers, so the
``(s, t)`` series is smoothed over time with a robust windowed mean (median-anchored, Gaussian in
time), which is causal up to a fixed look-ahead and so can run while frames stream.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gvfx.errors import DepthError

log = logging.getLogger(__name__)

__all__ = ["AffineFit", "fit_inverse_depth_affine", "apply_inverse_depth_affine", "sample_bilinear",
           "smooth_fit_at", "smooth_fits"]


@dataclass(frozen=True)
class AffineFit:
    """``1/z = scale * d + shift`` for one frame, with how well the sparse points agreed.

    ``residual_rel``: robust (MAD-based) spread of the relative depth residuals; ``n_points`` used,
    ``n_inliers`` within 3 spreads. ``valid`` is False when there were too few points to fit.
    """

    scale: float
    shift: float
    residual_rel: float
    n_points: int
    n_inliers: int
    valid: bool = True


def fit_inverse_depth_affine(d: np.ndarray, z: np.ndarray, weights: np.ndarray | None = None, *,
                             iterations: int = 6, huber_k: float = 1.345, min_points: int = 8) -> AffineFit:
    """Robust fit of ``1/z ≈ s * d + t`` to model values ``d`` (N,) at points of metric depth ``z`` (N,).

    Residuals are relative depth errors ``r = z * (s d + t) - 1``, so near and far points count alike.
    IRLS with Huber weights (threshold ``huber_k`` robust sigmas), then two plain fits on the points
    within 3 robust sigmas, rejects outliers (points on the wrong side of an edge, bad tracks). ``weights`` (N,) are prior per-point weights (e.g. from reprojection
    error).
    """
    d = np.asarray(d, dtype=np.float64).ravel()
    z = np.asarray(z, dtype=np.float64).ravel()
    w0 = np.ones_like(d) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    ok = np.isfinite(d) & np.isfinite(z) & (z > 0) & np.isfinite(w0) & (w0 > 0)
    d, z, w0 = d[ok], z[ok], w0[ok]
    if len(d) < min_points or np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max(initial=0.0))):
        return AffineFit(1.0, 0.0, np.inf, int(len(d)), 0, valid=False)
    a = np.stack([z * d, z], axis=1)  # rows of z * (s d + t) = 1
    b = np.ones_like(d)
    w = w0.copy()
    sigma = np.inf
    params = np.zeros(2)
    for _ in range(max(1, iterations)):
        sw = np.sqrt(w)
        params, *_ = np.linalg.lstsq(a * sw[:, None], b * sw, rcond=None)
        r = a @ params - b
        sigma = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 1e-9)
        u = np.abs(r) / (huber_k * sigma)
        w = w0 * np.where(u <= 1.0, 1.0, 1.0 / np.maximum(u, 1e-12))
    # Huber keeps some pull from gross outliers: finish with two least-squares fits on the inliers only
    for _ in range(2):
        r = a @ params - b
        inl = np.abs(r) < 3 * sigma
        if inl.sum() < min_points:
            break
        sw = np.sqrt(w0[inl])
        params, *_ = np.linalg.lstsq(a[inl] * sw[:, None], b[inl] * sw, rcond=None)
        r = a @ params - b
        sigma = max(1.4826 * float(np.median(np.abs(r[inl] - np.median(r[inl])))), 1e-9)
    r = a @ params - b
    inliers = int((np.abs(r) < 3 * sigma).sum())
    return AffineFit(float(params[0]), float(params[1]), float(sigma), int(len(d)), inliers, valid=True)


def apply_inverse_depth_affine(d: np.ndarray, scale: float, shift: float, *, min_inv_z: float = 1e-6
                               ) -> np.ndarray:
    """(H, W) float32 metric Z from model disparity ``d``; ``inf`` where ``s d + t`` is not positive
    (beyond the fitted range: sky)."""
    inv = scale * np.asarray(d, dtype=np.float64) + shift
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(inv > min_inv_z, 1.0 / inv, np.inf)
    return z.astype(np.float32)


def sample_bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N,) values of ``image`` (H, W) at pixel coordinates ``uv`` (N, 2) (centres at i+0.5), clamped."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape
    x = np.clip(np.asarray(uv, dtype=np.float64)[:, 0] - 0.5, 0.0, w - 1.0)
    y = np.clip(np.asarray(uv, dtype=np.float64)[:, 1] - 0.5, 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2) if w > 1 else np.zeros(len(x), np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2) if h > 1 else np.zeros(len(y), np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def smooth_fit_at(fits: Sequence[AffineFit], index: int, *, radius: int = 4, sigma_frames: float = 2.0,
                  reject_sigmas: float = 3.0) -> tuple[float, float]:
    """Smoothed ``(scale, shift)`` at ``fits[index]`` from the window ``index ± radius``.

    Robust moving median + Gaussian: valid fits in the window are weighted by a Gaussian in frame
    distance, by their fit quality (1 / residual^2), and by zero when ``s`` or ``t`` lies more than
    ``reject_sigmas`` robust spreads from the window median. With no valid fit in the window, the
    nearest valid fit anywhere in ``fits`` is used.
    """
    n = len(fits)
    lo, hi = max(0, index - radius), min(n, index + radius + 1)
    win = [(j, fits[j]) for j in range(lo, hi) if fits[j].valid]
    if not win:
        valid = [j for j in range(n) if fits[j].valid]
        if not valid:
            raise DepthError("no frame had enough sparse points to make the depth metric",
                             hint="use the 'sfm' back-end on a moving camera, or give a depth pass")
        j = min(valid, key=lambda k: abs(k - index))
        return fits[j].scale, fits[j].shift
    idx = np.array([j for j, _ in win], dtype=np.float64)
    st = np.array([[f.scale, f.shift] for _, f in win])
    res = np.array([f.residual_rel for _, f in win])
    med = np.median(st, axis=0)
    mad = 1.4826 * np.median(np.abs(st - med), axis=0)
    spread = np.maximum(mad, 1e-6 * np.maximum(np.abs(med), 1e-12))
    keep = np.all(np.abs(st - med) <= reject_sigmas * spread, axis=1)
    if not keep.any():
        keep[:] = True
    w = np.exp(-0.5 * ((idx - index) / max(sigma_frames, 1e-6)) ** 2) / np.maximum(res, 1e-4) ** 2
    w = np.where(keep, w, 0.0)
    s, t = (w[:, None] * st).sum(axis=0) / w.sum()
    return float(s), float(t)


def smooth_fits(fits: Sequence[AffineFit], *, radius: int = 4, sigma_frames: float = 2.0
                ) -> list[tuple[float, float]]:
    """``smooth_fit_at`` for every frame of a whole series (for tests and offline use)."""
    return [smooth_fit_at(fits, i, radius=radius, sigma_frames=sigma_frames) for i in range(len(fits))]
