"""Orienting and scaling a structure-from-motion solve: ground plane, Y up, metres.

COLMAP's world is arbitrary in rotation, position and scale. The ground is fitted to the sparse points
(walls removed first), the world rotated so it is y = 0 with Y up and the first camera looking along -Z,
and the scale taken from a hint (camera height, two pixels a known distance apart) or the documented
default. Cameras here are gvfx camera-to-world matrices in solve units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gvfx.camera import Camera
from gvfx.errors import AnalyzeError

if TYPE_CHECKING:
    from gvfx.analyze.solve import ScalePoints

__all__ = ["fit_sparse_ground", "without_walls", "align_to_ground", "scale_from_points", "camera_depths",
           "local_depth"]


def camera_depths(c2w: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Depth Z (positive in front) of world points in a gvfx camera."""
    w2c = np.linalg.inv(c2w)
    return -(pts @ w2c[:3, :3].T + w2c[:3, 3])[:, 2]


def _wall_mask(pts: np.ndarray, up: np.ndarray, *, max_walls: int = 3, seed: int = 0) -> np.ndarray:
    """(N,) bool, False on dominant near-vertical planes (each holding at least 15% of the points),
    found by seeded RANSAC and removed one after the other."""
    rng = np.random.default_rng(seed)
    keep = np.ones(len(pts), dtype=bool)
    if len(pts) < 30:
        return keep
    lo, hi = np.percentile(pts, [5, 95], axis=0)
    thr = max(0.015 * float(np.linalg.norm(hi - lo)), 1e-9)
    for _ in range(max_walls):
        cand = pts[keep]
        if len(cand) < 30:
            break
        idx = rng.integers(0, len(cand), size=(300, 3))
        a, b, c = cand[idx[:, 0]], cand[idx[:, 1]], cand[idx[:, 2]]
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n, axis=1)
        ok = norm > 1e-12
        n, a = n[ok] / norm[ok, None], a[ok]
        vertical = np.abs(n @ up) < np.sin(np.radians(25.0))
        if not vertical.any():
            break
        n, a = n[vertical], a[vertical]
        counts = (np.abs(cand @ n.T - np.einsum("qk,qk->q", a, n)) < thr).sum(axis=0)
        best = int(np.argmax(counts))
        if counts[best] < 0.15 * len(pts):
            break
        normal, offset = n[best], float(a[best] @ n[best])
        keep &= ~(np.abs(pts @ normal - offset) < thr)
    if keep.sum() < 10:
        keep[:] = True
    return keep


def without_walls(pts: np.ndarray, up: np.ndarray, *, max_walls: int = 3, seed: int = 0) -> np.ndarray:
    """The points minus those on dominant near-vertical planes (walls).

    A textured wall holds most sparse points, and any horizontal slice through it looks like a
    well-supported "floor" to a plane fit; removing the walls first leaves the real ground.
    """
    return pts[_wall_mask(pts, up, max_walls=max_walls, seed=seed)]


def _refine_plane(pts: np.ndarray, normal: np.ndarray, offset: float, thr: float, up: np.ndarray
                  ) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares refit on the inliers (3 rounds); returns (normal along ``up``, offset, inliers)."""
    sel = np.abs(pts @ normal + offset) < thr
    for _ in range(3):
        if sel.sum() < 3:
            break
        cen = pts[sel].mean(axis=0)
        _, _, vt = np.linalg.svd(pts[sel] - cen, full_matrices=False)
        normal = vt[-1] * (1.0 if vt[-1] @ up >= 0 else -1.0)
        offset = float(-normal @ cen)
        sel = np.abs(pts @ normal + offset) < thr
    return normal, offset, sel


def _area_factor(q: np.ndarray) -> float:
    """1 for inliers spread in both in-plane directions, falling for a strip (a slice through a wall)."""
    if len(q) < 10:
        return 0.0
    ev = np.linalg.eigvalsh(np.cov((q - q.mean(axis=0)).T))
    flat = np.sqrt(max(ev[1], 0) / max(ev[2], 1e-18))
    return min(1.0, flat / 0.25)


def fit_sparse_ground(pts: np.ndarray, up: np.ndarray, below: np.ndarray, *, max_tilt_deg: float = 30.0,
                      iterations: int = 2000, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """The ground in a sparse SfM cloud: (unit normal along ``up``, offset, inlier ratio).

    1. Dominant walls are found and removed (:func:`without_walls`): a slice through a textured wall
       otherwise looks like a well-supported floor.
    2. Seeded RANSAC over planes within ``max_tilt_deg`` of ``up`` passing below the point ``below``
       (the first camera). The 40 best-supported hypotheses are each refined by least squares and
       scored again: a hypothesis from three noisy points rarely lies on the ground exactly, and its
       refit gathers the ground's full support. The score is the support times an *area* factor (the
       inliers must spread in both plane directions, so a row of wall points or a box edge does not
       count). Scoring raw hypotheses instead (as before) let a plane tilted 5-6 degrees through
       ground and box points beat the ground itself: the first camera's height, hence the default
       scale, came out 25% off.

    Unlike ``gvfx.surface.fit_ground_plane`` (built for dense depth), it does not prefer the lowest
    plane: SfM outliers below the ground make spurious low planes.
    """
    from gvfx.surface import fit_ground_plane, plane_hypotheses

    up = np.asarray(up, dtype=np.float64)
    pts = without_walls(pts, up, seed=seed)
    lo, hi = np.percentile(pts, [5, 95], axis=0)
    thr = max(0.006 * float(np.linalg.norm(hi - lo)), 1e-9)
    rng = np.random.default_rng(seed)
    n, a = plane_hypotheses(pts, up, iterations, rng)
    d = -np.einsum("ij,ij->i", n, a)
    ok = (n @ up >= np.cos(np.radians(max_tilt_deg))) & (n @ below + d > 0)
    if not ok.any():
        plane = fit_ground_plane(pts, up, max_tilt_deg=max_tilt_deg, seed=seed)
        return plane.normal, plane.offset, plane.inlier_ratio
    n, d = n[ok], d[ok]
    counts = (np.abs(pts @ n.T + d) < thr).sum(axis=0)
    best: tuple[float, np.ndarray, float] | None = None
    for i in np.argsort(-counts, kind="stable")[:40]:
        normal, offset, sel = _refine_plane(pts, n[i], float(d[i]), thr, up)
        if normal @ up < np.cos(np.radians(max_tilt_deg)) or normal @ below + offset <= 0:
            continue
        score = float(sel.sum()) * _area_factor(pts[sel])
        if best is None or score > best[0]:
            best = (score, normal, offset)
    if best is None:
        i = int(np.argmax(counts))
        best = (0.0, n[i], float(d[i]))
    _, normal, offset = best
    return normal, offset, float(np.mean(np.abs(pts @ normal + offset) < thr))


def align_to_ground(c2w: np.ndarray, pts: np.ndarray, warnings: list[str]) -> tuple[np.ndarray, np.ndarray, float]:
    """Rotation (3x3, rows = new X, Y, Z), ground foot point of the first camera and its height (solve units).

    The ground is the plane most perpendicular to the cameras' average up vector with the widest
    support (:func:`fit_sparse_ground`); new -Z is the first camera's view direction along the ground.
    """
    up_hint = c2w[:, :3, 1].mean(axis=0)
    up_hint /= max(np.linalg.norm(up_hint), 1e-12)
    if len(pts) >= 30:
        n, d, ratio = fit_sparse_ground(pts, up_hint, c2w[0, :3, 3])
        if ratio < 0.1:
            warnings.append(f"the ground plane fits only {ratio:.0%} of the sparse points: "
                            "check the solved world's orientation")
    else:
        warnings.append("too few sparse points for a ground plane: the world is levelled from the "
                        "cameras' average up vector")
        n = up_hint
        d = -float(np.percentile(pts @ n, 5)) if len(pts) else -float(n @ c2w[0, :3, 3]) + 1.0
    c0 = c2w[0, :3, 3]
    h0 = float(n @ c0 + d)
    if h0 < 0:
        warnings.append("the first camera is below the fitted ground plane: the plane was flipped")
        n, d, h0 = -n, -d, -h0
    fwd = -c2w[0, :3, 2]
    fh = fwd - (fwd @ n) * n
    if np.linalg.norm(fh) < 1e-6:  # looking straight down: use the camera's up as "forward"
        fh = c2w[0, :3, 1] - (c2w[0, :3, 1] @ n) * n
    z_axis = -fh / np.linalg.norm(fh)
    x_axis = np.cross(n, z_axis)
    rot = np.stack([x_axis, n, z_axis])
    return rot, c0 - h0 * n, h0


def local_depth(c2w: np.ndarray, camera: Camera, uv: np.ndarray, obs_uv: np.ndarray, obs_pts: np.ndarray,
                 k: int = 6) -> float:
    """Depth at plate pixel ``uv`` from the nearest observed sparse points (median of ``k``)."""
    if len(obs_uv) < 3:
        return float("nan")
    dist = np.linalg.norm(obs_uv - uv, axis=1)
    near = np.argsort(dist)[:k]
    if dist[near[0]] > 0.1 * camera.width:
        return float("nan")
    return float(np.median(camera_depths(c2w, obs_pts[near])))


def scale_from_points(hint: "ScalePoints", frames: list[int], c2w: np.ndarray, camera: Camera,
                       pts: np.ndarray, observations: dict[int, tuple[np.ndarray, np.ndarray]]) -> float:
    """Solve units per metre from two pixels with a known distance, via the sparse points' local depth."""
    if hint.frame not in observations or hint.frame not in frames:
        raise AnalyzeError(f"scale points: frame {hint.frame} is not a registered frame of the solve",
                           frame=hint.frame, hint="give the two pixels on a registered frame (see report.json)")
    ids, uv = observations[hint.frame]
    m = c2w[frames.index(hint.frame)]
    world = []
    for p in (hint.uv1, hint.uv2):
        z = local_depth(m, camera, np.asarray(p, dtype=np.float64), uv, pts[ids])
        if not np.isfinite(z) or z <= 0:
            raise AnalyzeError(f"scale points: no sparse points near pixel {p}", frame=hint.frame,
                               hint="pick pixels on textured surfaces, or give --camera-height")
        pc = camera.unproject(np.asarray([p], dtype=np.float64), np.asarray([z]))
        world.append(pc[0] @ m[:3, :3].T + m[:3, 3])
    d = float(np.linalg.norm(world[0] - world[1]))
    if d <= 1e-9:
        raise AnalyzeError("scale points: the two pixels are the same point", frame=hint.frame,
                           hint="give two distinct pixels")
    return hint.distance_m / d
