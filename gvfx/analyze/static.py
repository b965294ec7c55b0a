"""Cameras with no baseline: locked-off (nothing moves) and nodal (pan/tilt about the lens).

Structure from motion needs parallax. A locked-off camera gives none and a nodal pan gives only a
rotation: the matches between frames are then explained by a homography ``H = K R K^-1`` and the
depth of the scene cannot be recovered. This module tells these cases apart from feature matches and
solves rotation (and focal, for a pan) from homographies.

Pixels here are proxy pixels of the solve (origin top-left, centres at i+0.5); rotations are in the
OpenCV camera convention (+X right, +Y down, +Z forward) like COLMAP's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["MotionStats", "PairMatches", "fit_homography", "motion_stats", "rotation_from_homography",
           "solve_rotations", "LOCKED_OFF_PX", "NODAL_RESIDUAL_PX"]

#: Median feature motion (proxy px) between the most distant matched frames below which the camera is locked off.
LOCKED_OFF_PX = 0.75
#: Median homography residual (proxy px) on the widest pairs below which the motion has no parallax.
NODAL_RESIDUAL_PX = 0.6


@dataclass(frozen=True)
class PairMatches:
    """Inlier matches between plate indices ``i < j``: (K, 2) proxy-pixel positions in each image."""

    i: int
    j: int
    uv_i: np.ndarray
    uv_j: np.ndarray


@dataclass(frozen=True)
class MotionStats:
    """How much, and how, the image moves: measured on the widest-gap matched pairs."""

    median_motion_px: float     # median feature displacement on the widest pairs (largest over them)
    homography_residual_px: float  # median residual of a homography fit on the widest pairs
    pairs_used: int

    @property
    def locked_off(self) -> bool:
        return self.median_motion_px < LOCKED_OFF_PX

    @property
    def homography_fits(self) -> bool:
        return self.homography_residual_px < NODAL_RESIDUAL_PX


def _normalise(uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = uv.mean(axis=0)
    s = np.sqrt(2) / max(float(np.mean(np.linalg.norm(uv - c, axis=1))), 1e-9)
    t = np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1.0]])
    return np.c_[uv, np.ones(len(uv))] @ t.T, t


def _dlt(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Homography mapping ``a`` to ``b`` (both (N, 2), N >= 4) by the normalised DLT."""
    pa, ta = _normalise(a)
    pb, tb = _normalise(b)
    n = len(a)
    rows = np.zeros((2 * n, 9))
    rows[0::2, 0:3] = pa
    rows[0::2, 6:9] = -pb[:, :1] * pa
    rows[1::2, 3:6] = pa
    rows[1::2, 6:9] = -pb[:, 1:2] * pa
    try:
        _, _, vt = np.linalg.svd(rows, full_matrices=False)
    except np.linalg.LinAlgError:
        return None
    h = vt[-1].reshape(3, 3)
    h = np.linalg.inv(tb) @ h @ ta
    if abs(h[2, 2]) < 1e-12:
        return None
    return h / h[2, 2]


def _transfer_error(h: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    p = np.c_[a, np.ones(len(a))] @ h.T
    with np.errstate(divide="ignore", invalid="ignore"):
        q = p[:, :2] / p[:, 2:3]
    err = np.linalg.norm(q - b, axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def fit_homography(a: np.ndarray, b: np.ndarray, *, threshold_px: float = 1.5, iterations: int = 300,
                   seed: int = 0) -> tuple[np.ndarray | None, np.ndarray]:
    """RANSAC homography ``b ~ H a`` for (N, 2) point sets; returns (H or None, inlier mask (N,)).

    All minimal 4-point hypotheses are solved at once (one batched SVD), then refined on the inliers.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = len(a)
    if n < 8:
        return None, np.zeros(n, dtype=bool)
    rng = np.random.default_rng(seed)
    pa, ta = _normalise(a)
    pb, tb = _normalise(b)
    idx = np.stack([rng.choice(n, 4, replace=False) for _ in range(iterations)])  # (I, 4)
    sa, sb = pa[idx], pb[idx]  # (I, 4, 3)
    rows = np.zeros((iterations, 8, 9))
    rows[:, 0::2, 0:3] = sa
    rows[:, 0::2, 6:9] = -sb[..., :1] * sa
    rows[:, 1::2, 3:6] = sa
    rows[:, 1::2, 6:9] = -sb[..., 1:2] * sa
    _, _, vt = np.linalg.svd(rows)
    hs = np.linalg.inv(tb) @ vt[:, -1].reshape(-1, 3, 3) @ ta  # (I, 3, 3) in pixels
    p = np.einsum("ijk,nk->inj", hs, np.c_[a, np.ones(n)])  # (I, N, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.linalg.norm(p[..., :2] / p[..., 2:3] - b[None], axis=2)
    counts = (np.nan_to_num(err, nan=np.inf) < threshold_px).sum(axis=1)
    best = hs[int(np.argmax(counts))]
    if abs(best[2, 2]) < 1e-12:
        return None, np.zeros(n, dtype=bool)
    best = best / best[2, 2]
    inl = _transfer_error(best, a, b) < threshold_px
    for _ in range(2):  # refine on the inliers
        if inl.sum() < 4:
            break
        h = _dlt(a[inl], b[inl])
        if h is None:
            break
        best = h
        inl = _transfer_error(best, a, b) < threshold_px
    return best, inl


def motion_stats(pairs: list[PairMatches]) -> MotionStats:
    """Displacement and homography residual on the widest-gap pairs (the most parallax available)."""
    usable = [p for p in pairs if len(p.uv_i) >= 8]
    if not usable:
        return MotionStats(float("nan"), float("nan"), 0)
    widest = max(p.j - p.i for p in usable)
    pick = [p for p in usable if p.j - p.i >= max(1, widest // 2)]
    pick = sorted(pick, key=lambda p: -(p.j - p.i))[:12]
    motions, residuals = [], []
    for p in pick:
        motions.append(float(np.median(np.linalg.norm(p.uv_j - p.uv_i, axis=1))))
        h, _ = fit_homography(p.uv_i, p.uv_j, threshold_px=3.0)
        if h is not None:
            residuals.append(float(np.median(_transfer_error(h, p.uv_i, p.uv_j))))
    # the largest motion over the widest pairs: one still pair must not make a moving shot static
    return MotionStats(max(motions), float(np.median(residuals)) if residuals else float("inf"), len(pick))


def _k(f: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])


def _nearest_rotation(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        r = u @ np.diag([1, 1, -1]) @ vt
    return r


def rotation_from_homography(h: np.ndarray, f: float, cx: float, cy: float) -> tuple[np.ndarray, float]:
    """(R, orthogonality error) with ``H ~ K R K^-1``: R rotates camera i coordinates into camera j."""
    k = _k(f, cx, cy)
    m = np.linalg.inv(k) @ h @ k
    det = np.linalg.det(m)
    if not np.isfinite(det) or abs(det) < 1e-12:
        return np.eye(3), float("inf")
    m = m / np.cbrt(det)
    r = _nearest_rotation(m)
    return r, float(np.linalg.norm(m - r))


def _estimate_focal(hs: list[np.ndarray], width: int, cx: float, cy: float) -> float | None:
    """Focal (px) making every ``K^-1 H K`` closest to a rotation: a 1-D search in log focal."""
    if not hs:
        return None
    # Tiny rotations say nothing about the focal: keep the homographies that move the image.
    fs = np.exp(np.linspace(np.log(0.25 * width), np.log(6.0 * width), 240))

    def cost(f: float) -> float:
        return float(sum(rotation_from_homography(h, f, cx, cy)[1] ** 2 for h in hs))

    costs = np.array([cost(f) for f in fs])
    i = int(np.argmin(costs))
    lo, hi = fs[max(i - 1, 0)], fs[min(i + 1, len(fs) - 1)]
    for _ in range(40):  # golden-section refine
        m1, m2 = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if cost(m1) < cost(m2):
            hi = m2
        else:
            lo = m1
    f = 0.5 * (lo + hi)
    if i in (0, len(fs) - 1):
        return None  # no minimum inside the range: the rotation is too small to tell
    return float(f)


def solve_rotations(n_frames: int, pairs: list[PairMatches], width: int, height: int, *,
                    focal_px: float | None) -> tuple[list[np.ndarray | None], float | None, list[str]]:
    """Per-frame rotation ``R_j`` (camera 0 -> camera j, OpenCV convention) from consecutive homographies.

    Returns (rotations, focal px used or estimated (None when unknown and not measurable), warnings).
    Frames with no homography chain to frame 0 get None (to be interpolated).
    """
    cx, cy = width / 2.0, height / 2.0
    warnings: list[str] = []
    by_pair = {(p.i, p.j): p for p in pairs if len(p.uv_i) >= 8}
    hs: dict[tuple[int, int], np.ndarray] = {}
    for j in range(1, n_frames):
        # The widest matched pair first (frame 0 itself when the matching overlap reaches it): every
        # link in a chain of consecutive homographies adds its error, 0.4-0.6 deg over 8 frames.
        for gap in sorted((j - i for (i, jj) in by_pair if jj == j), reverse=True):
            p = by_pair[(j - gap, j)]
            if len(p.uv_i) < 30 and gap > 2:
                continue
            h, inl = fit_homography(p.uv_i, p.uv_j)
            if h is not None and inl.sum() >= 8:
                hs[(j - gap, j)] = h
                break
    f = focal_px
    if f is None:
        # the widest pairs carry the most rotation, hence the best-conditioned focal
        wide = sorted(by_pair.values(), key=lambda p: -(p.j - p.i))[:8]
        wide_hs = [h for h, inl in (fit_homography(p.uv_i, p.uv_j) for p in wide) if h is not None and inl.sum() >= 8]
        f = _estimate_focal(wide_hs, width, cx, cy)
        if f is None:
            warnings.append("the camera barely rotates: the focal length cannot be measured from the plate")
    f_use = f if f is not None else width * 35.0 / 36.0
    rots: list[np.ndarray | None] = [np.eye(3)] + [None] * (n_frames - 1)
    for j in range(1, n_frames):
        for gap in sorted((j - i for (i, jj) in hs if jj == j), reverse=True):
            if rots[j - gap] is not None:
                r, _ = rotation_from_homography(hs[(j - gap, j)], f_use, cx, cy)
                rots[j] = r @ rots[j - gap]
                break
    return rots, f, warnings
