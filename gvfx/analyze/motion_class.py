"""What kind of camera move a plate has, decided from the feature matches themselves, before and
independently of any reconstruction: locked off (nothing moves), nodal (a homography explains every
pair: rotation about the lens, no parallax) or moving (a fundamental matrix is needed: parallax).

Model selection is Torr's GRIC (Geometric Robust Information Criterion; P. H. S. Torr, "An assessment
of information criteria for motion model selection", CVPR 1997), which weighs each model's robust
residuals against its dimension and parameter count:
``GRIC = sum(min(e_i^2 / sigma^2, lambda3 * (r - d))) + lambda1 * d * n + lambda2 * k``
with r = 4 (two image points), lambda1 = ln r, lambda2 = ln(r n), lambda3 = 2; a homography has
d = 2, k = 8; a fundamental matrix d = 3, k = 7. It is measured on the pairs with the widest frame
gaps, where parallax is largest. GRIC alone prefers a homography whenever one plane carries most
matches (a ground and a wall seen from 10 m), so a camera is nodal only when the homography also
explains nearly every match: the 90th percentile of its residuals (the parallax left over) stays under
``PARALLAX_PX`` or three times their median (feature noise alone gives about twice the median) on
all but ``PARALLAX_SHARE`` of the pairs. The matches are judged on their fundamental-matrix inliers
(raw matches carry outliers; COLMAP's inliers of a pair it found planar are the homography's and hide
the parallax). A failed reconstruction never decides the class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from gvfx.analyze.static import LOCKED_OFF_PX, PairMatches, _normalise, _transfer_error, fit_homography

log = logging.getLogger(__name__)

__all__ = ["MotionClass", "classify_motion", "fit_fundamental", "gric", "NOISE_SIGMA_PX", "PARALLAX_PX"]

#: the feature-position noise assumed by GRIC (proxy pixels): SIFT on a 960 px proxy
NOISE_SIGMA_PX = 0.7
#: share of the widest pairs that must prefer the homography to call the camera nodal
NODAL_SHARE = 0.75
#: 90th-percentile homography residual (proxy px) on the widest pairs above which there is parallax
PARALLAX_PX = 2.0
#: share of the widest pairs showing parallax from which the camera is moving, whatever GRIC prefers
PARALLAX_SHARE = 0.2


@dataclass(frozen=True)
class MotionClass:
    """The verdict and the evidence: ``kind`` is ``locked_off``, ``nodal`` or ``moving``."""

    kind: str
    median_motion_px: float      # largest median displacement over the widest pairs (proxy px)
    homography_share: float      # share of the widest pairs where GRIC prefers the homography
    homography_residual_px: float  # median homography residual over those pairs
    parallax_px: float           # median over pairs of the 90th-percentile homography residual
    pairs_used: int
    parallax_share: float = float("nan")  # share of the pairs whose 90th percentile shows parallax

    def describe(self) -> str:
        return (f"{self.kind}: motion {self.median_motion_px:.1f} px, homography preferred on "
                f"{self.homography_share:.0%} of {self.pairs_used} widest pairs, parallax {self.parallax_px:.2f} px "
                f"(on {self.parallax_share:.0%} of the pairs)")


def _sampson(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Sampson distance of ``b^T F a = 0`` for (N, 2) points (pixels^2); ``f`` (3, 3) or (I, 3, 3)."""
    pa = np.c_[a, np.ones(len(a))]
    pb = np.c_[b, np.ones(len(b))]
    fa = np.einsum("...ij,nj->...ni", f, pa)
    ftb = np.einsum("...ji,nj->...ni", f, pb)
    num = np.einsum("ni,...ni->...n", pb, fa) ** 2
    den = fa[..., 0] ** 2 + fa[..., 1] ** 2 + ftb[..., 0] ** 2 + ftb[..., 1] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where(np.isfinite(out), out, np.inf)


def _eight_point(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Rank-2 F from normalised homogeneous points (..., N, 3), batched over leading axes."""
    rows = np.einsum("...ni,...nj->...nij", pb, pa).reshape(*pa.shape[:-1], 9)
    _, _, vt = np.linalg.svd(rows)
    f = vt[..., -1, :].reshape(*pa.shape[:-2], 3, 3)
    u, s, vt2 = np.linalg.svd(f)
    s[..., 2] = 0.0
    return u @ (s[..., :, None] * vt2)


def fit_fundamental(a: np.ndarray, b: np.ndarray, *, threshold_px: float = 1.5, iterations: int = 300,
                    seed: int = 0) -> tuple[np.ndarray | None, np.ndarray]:
    """RANSAC fundamental matrix with ``b^T F a = 0`` (normalised 8-point, batched), refined on inliers."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    n = len(a)
    if n < 16:
        return None, np.zeros(n, bool)
    rng = np.random.default_rng(seed)
    pa, ta = _normalise(a)
    pb, tb = _normalise(b)
    idx = np.stack([rng.choice(n, 8, replace=False) for _ in range(iterations)])
    fs = tb.T @ _eight_point(pa[idx], pb[idx]) @ ta  # (I, 3, 3) in pixels
    err = _sampson(fs, a, b)
    counts = (err < threshold_px ** 2).sum(axis=1)
    best = fs[int(np.argmax(counts))]
    inl = _sampson(best, a, b) < threshold_px ** 2
    for _ in range(2):
        if inl.sum() < 8:
            break
        best = tb.T @ _eight_point(pa[inl], pb[inl]) @ ta
        inl = _sampson(best, a, b) < threshold_px ** 2
    return best, inl


def gric(sq_residuals: np.ndarray, *, d: int, k: int, sigma: float = NOISE_SIGMA_PX) -> float:
    """Torr's GRIC of a two-view model from squared residuals (pixels^2); lower is better."""
    n = len(sq_residuals)
    r = 4.0
    rho = np.minimum(np.asarray(sq_residuals) / sigma ** 2, 2.0 * (r - d))
    return float(rho.sum() + np.log(r) * d * n + np.log(r * n) * k)


def _widest_pairs(pairs: list[PairMatches], max_pairs: int) -> list[PairMatches]:
    """Up to ``max_pairs`` pairs, widest frame gaps first, at most a third of them from any one gap and
    spread over the shot, so a gap only the far wall survives does not make up the whole sample."""
    by_gap: dict[int, list[PairMatches]] = {}
    for p in pairs:
        by_gap.setdefault(p.j - p.i, []).append(p)
    per_gap = max(1, max_pairs // 3)
    pick: list[PairMatches] = []
    for gap in sorted(by_gap, reverse=True):
        group = sorted(by_gap[gap], key=lambda p: p.i)
        idx = np.unique(np.linspace(0, len(group) - 1, min(per_gap, len(group))).round().astype(int))
        pick.extend(group[k] for k in idx)
        if len(pick) >= max_pairs:
            break
    return pick[:max_pairs]


def classify_motion(pairs: list[PairMatches], *, max_pairs: int = 15, seed: int = 0) -> MotionClass:
    """Locked off, nodal or moving, from the widest-gap matched pairs (see the module doc)."""
    usable = [p for p in pairs if len(p.uv_i) >= 30]
    # the widest pairs that still hold a real match set (raw matches of unrelated frames are noise)
    if not usable:
        return MotionClass("unknown", float("nan"), float("nan"), float("nan"), float("nan"), 0)
    pick = _widest_pairs(usable, max_pairs)
    motions, h_wins, h_res, parallax = [], [], [], []
    for p in pick:
        # the matches may be raw (outliers included): judge the models on the epipolar-consistent ones
        f, f_inl = fit_fundamental(p.uv_i, p.uv_j, seed=seed, iterations=1000)
        a, b = (p.uv_i[f_inl], p.uv_j[f_inl]) if f is not None and f_inl.sum() >= 30 else (p.uv_i, p.uv_j)
        motions.append(float(np.median(np.linalg.norm(b - a, axis=1))))
        h, _ = fit_homography(a, b, threshold_px=3.0, seed=seed)
        if h is None:
            h_wins.append(False)
            continue
        e_h = _transfer_error(h, a, b)
        h_res.append(float(np.median(e_h)))
        parallax.append(float(np.percentile(np.minimum(e_h, 1e3), 90)))
        if f is None:
            h_wins.append(True)
            continue
        # symmetric comparison: the homography's one-way transfer error counts for both images
        g_h = gric(np.minimum(e_h, 1e3) ** 2 / 2.0, d=2, k=8)
        g_f = gric(_sampson(f, a, b), d=3, k=7)
        h_wins.append(g_h <= g_f)
    motion = max(motions)
    share = float(np.mean(h_wins)) if h_wins else float("nan")
    par = float(np.median(parallax)) if parallax else float("inf")
    limit = max(PARALLAX_PX, 3.0 * (float(np.median(h_res)) if h_res else 0.0))
    # the widest pairs may all see one plane (a wall, after the near things left the frame): parallax
    # on a fair share of the pairs is enough
    with_parallax = float(np.mean([x >= limit for x in parallax])) if parallax else 1.0
    if motion < LOCKED_OFF_PX:
        kind = "locked_off"
    elif share >= NODAL_SHARE and with_parallax < PARALLAX_SHARE:
        kind = "nodal"
    else:
        kind = "moving"
    out = MotionClass(kind, motion, share, float(np.median(h_res)) if h_res else float("inf"), par, len(pick),
                      with_parallax)
    log.info("motion class %s", out.describe())
    return out
