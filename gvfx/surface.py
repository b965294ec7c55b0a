"""The scene's surface reconstructed from plate depth: a ground plane, and a per-frame depth surface
that simulated particles and rigid inserts collide against.

Conventions are those of ``gvfx.camera``: world Y-up metres, camera looks down -Z, depth Z positive
metres along the axis, pixel centres at ``i + 0.5``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from gvfx.camera import Camera
from gvfx.errors import DepthError, PlacementError

log = logging.getLogger(__name__)

__all__ = ["Plane", "fit_ground_plane", "unproject_depth", "camera_normals", "DepthSurface", "SurfaceQuery",
           "surface_at_pixel"]


@dataclass(frozen=True)
class Plane:
    """A plane ``normal . x + offset = 0`` (unit normal) with the fraction of points that supported it."""

    normal: np.ndarray  # (3,)
    offset: float
    inlier_ratio: float = 1.0

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) signed distances of (N, 3) points, positive on the normal's side."""
        return np.asarray(points, dtype=np.float64) @ self.normal + self.offset

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) closest points on the plane."""
        p = np.asarray(points, dtype=np.float64)
        return p - self.distance(p)[..., None] * self.normal


def _plane_lstsq(points: np.ndarray) -> tuple[np.ndarray, float]:
    c = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - c, full_matrices=False)
    n = vt[-1]
    return n, float(-n @ c)


def plane_hypotheses(pts: np.ndarray, up: np.ndarray, iterations: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC candidates: unit normals (M, 3) of planes through random point triples, oriented along
    ``up``, and one point (M, 3) on each (degenerate triples dropped)."""
    idx = rng.integers(0, len(pts), size=(iterations, 3))
    a, b, c = pts[idx[:, 0]], pts[idx[:, 1]], pts[idx[:, 2]]
    n = np.cross(b - a, c - a)
    norm = np.linalg.norm(n, axis=1)
    ok = norm > 1e-12
    n, a = n[ok] / norm[ok, None], a[ok]
    n *= np.where(n @ up < 0, -1.0, 1.0)[:, None]
    return n, a


def fit_ground_plane(points: np.ndarray, up_hint: tuple[float, float, float] | np.ndarray = (0.0, 1.0, 0.0), *,
                     threshold_m: float | None = None, seed: int = 0, max_tilt_deg: float = 30.0,
                     iterations: int = 400) -> Plane:
    """The ground: RANSAC over near-horizontal planes (normal within ``max_tilt_deg`` of ``up_hint``),
    picking the lowest plane with a large share of support, then a least-squares refine in a band around
    it that narrows to the residuals' spread (see ``_refine_plane``).

    ``threshold_m`` defaults to 1% of the points' robust extent. The normal is oriented along ``up_hint``.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < 3:
        raise DepthError(f"cannot fit a ground plane to {len(pts)} points", hint="the depth has no finite values")
    up = np.asarray(up_hint, dtype=np.float64)
    up = up / np.linalg.norm(up)
    rng = np.random.default_rng(seed)
    if threshold_m is None:
        lo, hi = np.percentile(pts, [5, 95], axis=0)
        threshold_m = max(0.01 * float(np.linalg.norm(hi - lo)), 1e-4)
    score_pts = pts[rng.choice(len(pts), min(len(pts), 4000), replace=False)]
    n, a = plane_hypotheses(pts, up, iterations, rng)
    ok = n @ up >= np.cos(np.radians(max_tilt_deg))
    if not ok.any():
        raise DepthError("no near-horizontal plane found in the depth", hint="check the up axis / depth")
    n, a = n[ok], a[ok]
    d = -np.einsum("ij,ij->i", n, a)
    counts = (np.abs(score_pts @ n.T + d) < threshold_m).sum(axis=0)
    best = counts.max()
    big = counts >= max(0.35 * best, 3)
    heights = -d  # height of each plane along its (up-oriented) normal
    cand = np.flatnonzero(big)
    i = cand[np.argmin(heights[cand] - 1e-9 * counts[cand])]
    normal, offset = _refine_plane(pts, n[i], float(d[i]), up, threshold_m)
    ratio = float(np.mean(np.abs(pts @ normal + offset) < threshold_m))
    return Plane(normal, offset, ratio)


def _refine_plane(pts: np.ndarray, normal: np.ndarray, offset: float, up: np.ndarray, threshold_m: float,
                  iterations: int = 6) -> tuple[np.ndarray, float]:
    """Least squares on the points in a band around the plane, the band narrowing to three robust
    sigmas of the residuals: the feet of walls and boxes within ``threshold_m`` of the ground do not
    tilt it."""
    band = threshold_m
    for _ in range(iterations):
        res = pts @ normal + offset
        inl = np.abs(res) < band
        if inl.sum() < 3:
            break
        normal, offset = _plane_lstsq(pts[inl])
        if normal @ up < 0:
            normal, offset = -normal, -offset
        res = pts[inl] @ normal + offset
        sigma = 1.4826 * float(np.median(np.abs(res - np.median(res))))
        band = float(np.clip(3.0 * sigma, max(0.02 * threshold_m, 1e-4), threshold_m))
    return normal, offset


def unproject_depth(z: np.ndarray, camera: Camera, cam_to_world: np.ndarray | None = None, *,
                    stride: int = 1) -> np.ndarray:
    """(N, 3) points of every ``stride``-th pixel with finite positive depth, in camera space or, given
    a camera-to-world matrix, in world space."""
    zz = np.asarray(z, dtype=np.float64)[::stride, ::stride]
    v, u = np.mgrid[0:zz.shape[0], 0:zz.shape[1]].astype(np.float64)
    uv = np.stack([u * stride + 0.5, v * stride + 0.5], axis=-1)
    ok = np.isfinite(zz) & (zz > 0)
    p = camera.unproject(uv[ok], zz[ok])
    if cam_to_world is not None:
        m = np.asarray(cam_to_world, dtype=np.float64)
        p = p @ m[:3, :3].T + m[:3, 3]
    return p


def camera_normals(p: np.ndarray) -> np.ndarray:
    """(H, W, 3) camera-space normals from the point map, one-sided differences chosen on the side
    with the smaller depth jump so silhouettes do not bend normals; oriented towards the camera."""
    def pick(fwd: np.ndarray, bwd: np.ndarray) -> np.ndarray:
        jf = np.where(np.isfinite(fwd[..., 2]), np.abs(fwd[..., 2]), np.inf)
        jb = np.where(np.isfinite(bwd[..., 2]), np.abs(bwd[..., 2]), np.inf)
        return np.where((jf <= jb)[..., None], fwd, bwd)

    nan = np.full_like(p[:, :1], np.nan)
    du_f = np.concatenate([p[:, 1:] - p[:, :-1], nan], axis=1)
    du_b = np.concatenate([nan, p[:, 1:] - p[:, :-1]], axis=1)
    nan = np.full_like(p[:1], np.nan)
    dv_f = np.concatenate([p[1:] - p[:-1], nan], axis=0)
    dv_b = np.concatenate([nan, p[1:] - p[:-1]], axis=0)
    a, b = pick(du_f, du_b), pick(dv_f, dv_b)
    n = np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                  a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = n / length
        view = -p / np.linalg.norm(p, axis=-1, keepdims=True)
    n = np.where(np.isfinite(n).all(axis=-1, keepdims=True), n, view)
    n *= np.where(np.einsum("...i,...i->...", n, view) < 0, -1.0, 1.0)[..., None]
    return n


@dataclass(frozen=True)
class SurfaceQuery:
    """What the surface says about N world points (all (N,) or (N, 3), world space).

    signed_distance: along the view ray, + in front of the visible surface, - behind, nan off-image/sky.
    plane_distance: perpendicular distance to the local tangent plane at the point's pixel (same sign).
    normal: unit surface normal (towards the camera); surface_point: the tangent-plane point on the ray.
    depth_z: the point's own camera depth Z.
    """

    signed_distance: np.ndarray
    plane_distance: np.ndarray
    normal: np.ndarray
    surface_point: np.ndarray
    depth_z: np.ndarray


class DepthSurface:
    """The scene surface seen from one frame's camera, from metric depth ``z`` (H, W) (inf = sky).

    A point behind the surface by more than ``thickness(Z) = max(thickness_m, thickness_rel * Z)`` has
    passed *behind* an object rather than into it; colliders should ignore it. ``ground`` (optional) is
    a world plane answering for points that fall outside the image, on sky, or hidden behind a nearer
    surface (further than the thickness behind it), where the plate's depth cannot say.
    """

    def __init__(self, z: np.ndarray, camera: Camera, cam_to_world: np.ndarray | None = None, *,
                 thickness_m: float = 0.05, thickness_rel: float = 0.03, ground: Plane | None = None) -> None:
        zz = np.asarray(z, dtype=np.float64)
        if zz.shape != (camera.height, camera.width):
            raise DepthError(f"depth is {zz.shape[1]}x{zz.shape[0]} but the camera is "
                             f"{camera.width}x{camera.height}", hint="give depth at plate resolution")
        self.camera = camera
        self.cam_to_world = np.eye(4) if cam_to_world is None else np.asarray(cam_to_world, dtype=np.float64)
        self.world_to_cam = np.linalg.inv(self.cam_to_world)
        self.thickness_m = float(thickness_m)
        self.thickness_rel = float(thickness_rel)
        self.ground = ground
        self.valid = np.isfinite(zz) & (zz > 0)
        self.z = np.where(self.valid, zz, np.inf)
        rays = camera.ray_directions()
        self.points_cam = rays * np.where(self.valid, zz, np.nan)[..., None]  # (H, W, 3), nan on sky
        self.normals_cam = self._normals(self.points_cam.astype(np.float32)).astype(np.float64)

    @staticmethod
    def _normals(p: np.ndarray) -> np.ndarray:
        return camera_normals(p)

    def thickness(self, depth_z: np.ndarray) -> np.ndarray:
        """(N,) metres behind the surface beyond which a point counts as behind an object."""
        return np.maximum(self.thickness_m, self.thickness_rel * np.asarray(depth_z, dtype=np.float64))

    def _pixels(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        p = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
        pc = p @ self.world_to_cam[:3, :3].T + self.world_to_cam[:3, 3]
        uv, zp = self.camera.project(pc)
        with np.errstate(invalid="ignore"):
            iu = np.floor(uv[:, 0])
            iv = np.floor(uv[:, 1])
            inside = (zp > 1e-6) & (iu >= 0) & (iu < self.camera.width) & (iv >= 0) & (iv < self.camera.height)
        iu = np.where(inside, iu, 0).astype(np.intp)
        iv = np.where(inside, iv, 0).astype(np.intp)
        inside &= self.valid[iv, iu]
        return pc, zp, iv * self.camera.width + iu, inside

    def query(self, points_world: np.ndarray) -> SurfaceQuery:
        """Everything about (N, 3) world points in one projection (see ``SurfaceQuery``)."""
        pc, zp, flat, ok = self._pixels(points_world)
        n_c = self.normals_cam.reshape(-1, 3)[flat]
        s_c = self.points_cam.reshape(-1, 3)[flat]
        z_pix = self.z.reshape(-1)[flat]
        with np.errstate(invalid="ignore", divide="ignore"):
            ray = pc / zp[:, None]  # z component -1: a point at depth Z is ray * Z
            denom = np.einsum("ij,ij->i", n_c, ray)
            z_plane = np.einsum("ij,ij->i", n_c, s_c) / denom
            # Sub-pixel depth from the tangent plane, unless grazing or far from the pixel's depth.
            use_plane = np.isfinite(z_plane) & (np.abs(denom) > 0.05) & (np.abs(z_plane - z_pix) < 0.1 * z_pix)
            z_surf = np.where(use_plane, z_plane, z_pix)
            sd = (z_surf - zp) * np.linalg.norm(ray, axis=1)
            pd = np.einsum("ij,ij->i", n_c, pc - s_c)
            sp_c = ray * z_surf[:, None]
        r = self.cam_to_world[:3, :3]
        with np.errstate(invalid="ignore"):
            normal = n_c @ r.T
            spoint = sp_c @ r.T + self.cam_to_world[:3, 3]
        nan = np.nan
        sd = np.where(ok, sd, nan)
        pd = np.where(ok, pd, nan)
        normal = np.where(ok[:, None], normal, nan)
        spoint = np.where(ok[:, None], spoint, nan)
        if self.ground is not None:
            with np.errstate(invalid="ignore"):
                hidden = ok & (sd < -self.thickness(zp))  # behind a nearer object: the plate cannot say
            g = ~ok | hidden
        if self.ground is not None and g.any():
            pw = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
            dist = self.ground.distance(pw[g])
            sd[g], pd[g] = dist, dist
            normal[g] = self.ground.normal
            spoint[g] = self.ground.project(pw[g])
        return SurfaceQuery(sd, pd, normal, spoint, zp)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance along the view ray: + in front of the visible surface, - behind, nan off-image/sky."""
        return self.query(points).signed_distance

    def normal(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world normal at each point's pixel, oriented towards the camera (nan off-image/sky)."""
        return self.query(points).normal

    def surface_point(self, uv: np.ndarray) -> np.ndarray:
        """(N, 3) world surface points at pixel positions (N, 2) (nearest pixel's depth; nan on sky)."""
        uv = np.atleast_2d(np.asarray(uv, dtype=np.float64))
        iu = np.clip(np.floor(uv[:, 0]).astype(np.intp), 0, self.camera.width - 1)
        iv = np.clip(np.floor(uv[:, 1]).astype(np.intp), 0, self.camera.height - 1)
        z = np.where(self.valid[iv, iu], self.z[iv, iu], np.nan)
        pc = self.camera.unproject(uv, z)
        return pc @ self.cam_to_world[:3, :3].T + self.cam_to_world[:3, 3]

    def normal_at_pixel(self, uv: np.ndarray) -> np.ndarray:
        """(N, 3) world normals at pixel positions (N, 2)."""
        uv = np.atleast_2d(np.asarray(uv, dtype=np.float64))
        iu = np.clip(np.floor(uv[:, 0]).astype(np.intp), 0, self.camera.width - 1)
        iv = np.clip(np.floor(uv[:, 1]).astype(np.intp), 0, self.camera.height - 1)
        return self.normals_cam[iv, iu] @ self.cam_to_world[:3, :3].T


def surface_at_pixel(z: np.ndarray, camera: Camera, cam_to_world: np.ndarray | None,
                     uv: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """World point (3,) and normal (3,) of the plate surface at pixel ``uv``; ``PlacementError`` when the
    pixel is outside the frame or on sky (no depth)."""
    u, v = float(uv[0]), float(uv[1])
    if not (0 <= u < camera.width and 0 <= v < camera.height):
        raise PlacementError(f"screen position ({u:.1f}, {v:.1f}) is outside the {camera.width}x{camera.height} frame",
                             hint="give a position inside the image")
    zz = np.asarray(z, dtype=np.float64)
    iu, iv = int(u), int(v)
    if not (np.isfinite(zz[iv, iu]) and zz[iv, iu] > 0):
        raise PlacementError(f"screen position ({u:.1f}, {v:.1f}) is on sky (no depth)",
                             hint="place the element on a surface or give a world point")
    # A small window is enough for the point and its normal.
    r = 3
    v0, v1, u0, u1 = max(iv - r, 0), min(iv + r + 1, camera.height), max(iu - r, 0), min(iu + r + 1, camera.width)
    cw, ch = u1 - u0, v1 - v0
    crop = Camera(camera.focal_mm, camera.haperture_mm * cw / camera.width, cw, ch,
                  camera.vaperture * ch / camera.height, camera.pixel_aspect, (camera.cx - u0 - cw / 2.0, camera.cy - v0 - ch / 2.0))
    surf = DepthSurface(zz[v0:v1, u0:u1], crop, cam_to_world)
    local = np.array([[u - u0, v - v0]])
    return surf.surface_point(local)[0], surf.normal_at_pixel(local)[0]


def raycast_depth(camera: Camera, cam_to_world: np.ndarray, *, planes: tuple[Plane, ...] = (),
                  boxes: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = ()
                  ) -> np.ndarray:
    """(H, W) float32 metric depth Z of world planes and axis-aligned boxes ``(min_xyz, max_xyz)``,
    ray cast analytically (inf where nothing is hit): synthetic plates for tests and demos."""
    m = np.asarray(cam_to_world, dtype=np.float64)
    rays_c = camera.ray_directions().reshape(-1, 3)  # z = -1: point = ray * Z
    d = rays_c @ m[:3, :3].T
    o = m[:3, 3]
    best = np.full(len(d), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for pl in planes:
            t = -(pl.normal @ o + pl.offset) / (d @ pl.normal)
            best = np.where((t > 1e-6) & (t < best), t, best)
        for lo, hi in boxes:
            t0 = (np.asarray(lo) - o) / d
            t1 = (np.asarray(hi) - o) / d
            tn = np.nanmax(np.minimum(t0, t1), axis=1)
            tf = np.nanmin(np.maximum(t0, t1), axis=1)
            hit = (tn <= tf) & (tn > 1e-6)
            best = np.where(hit & (tn < best), tn, best)
    return best.reshape(camera.height, camera.width).astype(np.float32)
