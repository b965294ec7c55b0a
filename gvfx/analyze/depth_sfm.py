"""Dense metric depth from the camera solve alone (the ``sfm`` depth back-end, no model weights).

The solve's sparse 3D points, seen in a frame, give exact metric depth at a few thousand pixels. This
module densifies them, guided by the plate image so depth does not bleed across object edges:

1. Scene planes (ground first, then walls, table tops, box faces) are fitted once per sequence by
   RANSAC on the world points: being global, they make the result stable in time.
2. Per frame, at a proxy resolution (<= ``proxy_width_px`` wide), the visible points are splatted
   and filtered with an edge-aware recursive filter (Gastal & Oliveira's domain transform) in
   inverse-depth space: a normalised convolution whose weights fall off with distance in pixels and
   in colour. The same filter gives each pixel the local share of points lying on each plane.
3. A pixel takes a plane's exact depth where most nearby points lie on that plane and the plane
   agrees with the filtered depth; elsewhere it keeps the filtered depth. Confidence falls off with
   the local density of support points and their spread; with no support at all (sky) Z is ``inf``.
4. Inverse depth is upsampled to plate resolution bilinearly (exact on planes) except at depth
   edges, where each plate pixel takes the proxy sample closest to it in colour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from gvfx.analyze.depth_backends import ImagesFn, ProgressFn, check_frame_output
from gvfx.camera import Camera
from gvfx.color import preview_srgb
from gvfx.errors import DepthError, ResolutionMismatchError
from gvfx.surface import Plane, fit_ground_plane

if TYPE_CHECKING:
    from gvfx.analyze.solve import Solve

log = logging.getLogger(__name__)

__all__ = ["SfmDepthOptions", "SfmDepthBackend", "ScenePlane", "fit_scene_planes", "visible_points",
           "densify_frame", "edge_aware_filter", "upsample_inverse_depth"]


@dataclass(frozen=True)
class SfmDepthOptions:
    """Tuning of the ``sfm`` back-end; the defaults suit 1-5 k sparse points per frame."""

    proxy_width_px: int = 480          # densify at this width at most, then upsample
    sigma_spatial_px: float = 30.0     # reach of the fill, proxy pixels
    sigma_range: float = 0.25          # colour difference (sRGB-encoded, summed over R,G,B) that halts it
    iterations: int = 3                # domain-transform passes
    max_planes: int = 8
    plane_min_points: int = 30         # also at least 2% of the points
    plane_threshold_rel: float = 0.01  # plane inlier distance, relative to the point's camera distance
    plane_support: float = 0.6         # share of nearby points on a plane needed to use it
    plane_agree_rel: float = 0.06      # plane depth vs filtered depth, relative
    confidence_radius_px: float = 6.0  # proxy px: confidence ~ 1 - exp(-points within this radius)
    spread_rel: float = 0.04           # relative inverse-depth spread of nearby points that halves confidence
    unknown_points: float = 0.05       # fewer expected points than this nearby: no depth (sky)
    edge_rel: float = 0.03             # relative inverse-depth jump marking a depth edge for upsampling
    min_points: int = 8                # fewer visible points in a frame: the frame gets no depth

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "SfmDepthOptions":
        from gvfx.analyze.depth_backends import options_from

        return options_from(cls, options, "sfm")


@dataclass(frozen=True)
class ScenePlane:
    """A plane fitted to the sparse points, with which points (indices into ``solve.points``) lie on it."""

    plane: Plane
    inliers: np.ndarray  # (N,) bool over all solve points


# ------------------------------------------------------------------------------------------ planes

def _plane_from(pts: np.ndarray) -> tuple[np.ndarray, float]:
    c = pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts - c, full_matrices=False)
    return vt[-1], float(-vt[-1] @ c)


def fit_scene_planes(points: np.ndarray, centres: np.ndarray, *, max_planes: int = 8, min_points: int = 30,
                     threshold_rel: float = 0.01, seed: int = 0, iterations: int = 300) -> list[ScenePlane]:
    """Planes through the sparse world points (N, 3): the ground first (``fit_ground_plane``), then by
    sequential RANSAC with locally sampled triples, largest first, until no plane has ``min_points``.

    ``centres`` (K, 3) are camera positions: a point's inlier distance is ``threshold_rel`` times its
    distance to the nearest one, since SfM depth error grows with distance.
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    n = len(pts)
    min_points = max(min_points, int(0.02 * n))
    if n < max(min_points, 3):
        return []
    dist = cKDTree(np.asarray(centres, dtype=np.float64).reshape(-1, 3)).query(pts)[0]
    thr = threshold_rel * np.maximum(dist, 1e-3)
    rng = np.random.default_rng(seed)
    planes: list[ScenePlane] = []
    free = np.ones(n, dtype=bool)
    try:
        ground = fit_ground_plane(pts, threshold_m=float(np.median(thr)), seed=seed)
        inl = np.abs(ground.distance(pts)) < thr
        if inl.sum() >= min_points:
            planes.append(ScenePlane(ground, inl))
            free &= ~inl
    except DepthError:
        pass
    tree = cKDTree(pts)
    k_near = min(24, n)
    while len(planes) < max_planes and free.sum() >= min_points:
        idx = np.flatnonzero(free)
        seeds = idx[rng.integers(0, len(idx), iterations)]
        _, nbr = tree.query(pts[seeds], k=k_near)
        pick = nbr[np.arange(iterations)[:, None], rng.integers(1, k_near, (iterations, 2))]
        a, b, c = pts[seeds], pts[pick[:, 0]], pts[pick[:, 1]]
        nrm = np.cross(b - a, c - a)
        ln = np.linalg.norm(nrm, axis=1)
        ok = ln > 1e-12
        if not ok.any():
            break
        nrm, a = nrm[ok] / ln[ok, None], a[ok]
        off = -np.einsum("ij,ij->i", nrm, a)
        fp = pts[idx]
        counts = (np.abs(fp @ nrm.T + off) < thr[idx, None]).sum(axis=0)
        best = int(np.argmax(counts))
        if counts[best] < min_points:
            break
        normal, offset = nrm[best], float(off[best])
        for _ in range(3):
            inl_free = free & (np.abs(pts @ normal + offset) < thr)
            if inl_free.sum() < 3:
                break
            normal, offset = _plane_from(pts[inl_free])
        inl = np.abs(pts @ normal + offset) < thr
        if (inl & free).sum() < min_points:
            break
        planes.append(ScenePlane(Plane(normal, offset, float(inl.mean())), inl))
        free &= ~inl
    log.info("sfm depth: %d plane(s) fitted to %d points (%d on none)", len(planes), n, int(free.sum()))
    return planes


# ------------------------------------------------------------------------------------------ points

def visible_points(solve: "Solve", frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids (M,), uv (M, 2) plate px, Z (M,) metres) of the solve's points seen in ``frame``.

    Uses the solve's observations when the frame has them; otherwise (interpolated frames) projects
    every point and keeps the nearest ones per 8x8-pixel cell, so points hidden behind surfaces drop out.
    """
    cam = solve.track.camera_at(frame)
    pts = np.asarray(solve.points, dtype=np.float64).reshape(-1, 3)
    obs = solve.observations.get(frame) if solve.observations else None
    if obs is not None and len(obs[0]):
        ids = np.asarray(obs[0], dtype=np.int64)
        uv = np.asarray(obs[1], dtype=np.float64).reshape(-1, 2)
        z = -solve.track.to_camera_space(pts[ids], frame)[:, 2]
    else:
        ids = np.arange(len(pts))
        uv, z = solve.track.project_world(pts, frame)
        inside = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)
        ids, uv, z = ids[inside], uv[inside], z[inside]
        if len(ids):
            cell = (uv[:, 1] // 8).astype(np.int64) * (cam.width // 8 + 1) + (uv[:, 0] // 8).astype(np.int64)
            nearest = np.full(cell.max() + 1, np.inf)
            np.minimum.at(nearest, cell, z)
            keep = z <= nearest[cell] * 1.03
            ids, uv, z = ids[keep], uv[keep], z[keep]
    ok = (z > 0) & np.isfinite(z) & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) \
        & (uv[:, 1] < cam.height)
    return ids[ok], uv[ok], z[ok]


# ------------------------------------------------------------------------------------------ filtering

def _recursive_pass(data: np.ndarray, w: np.ndarray) -> None:
    """In place, along axis 0 of ``data`` (L, M, C): causal then anti-causal first-order recursion with
    per-step feedback ``w`` (L-1, M)."""
    for i in range(1, data.shape[0]):
        data[i] += w[i - 1, :, None] * (data[i - 1] - data[i])
    for i in range(data.shape[0] - 2, -1, -1):
        data[i] += w[i, :, None] * (data[i + 1] - data[i])


def edge_aware_filter(data: np.ndarray, guide: np.ndarray, *, sigma_spatial_px: float, sigma_range: float,
                      iterations: int = 3) -> np.ndarray:
    """Domain-transform recursive filter (Gastal & Oliveira 2011) of ``data`` (H, W, C) guided by
    ``guide`` (H, W, 3): an exponential kernel over geodesic distance, where crossing a colour step of
    ``sigma_range`` costs as much as ``sigma_spatial_px`` pixels. Returns (H, W, C) float32."""
    g = np.asarray(guide, dtype=np.float32)
    ratio = np.float32(sigma_spatial_px / sigma_range)
    dx = 1.0 + ratio * np.abs(np.diff(g, axis=1)).sum(axis=2)  # (H, W-1)
    dy = 1.0 + ratio * np.abs(np.diff(g, axis=0)).sum(axis=2)  # (H-1, W)
    out_x = np.ascontiguousarray(np.asarray(data, dtype=np.float32).transpose(1, 0, 2))  # (W, H, C)
    dx_t, dy_t = np.ascontiguousarray(dx.T), dy
    for i in range(iterations):
        sigma_i = sigma_spatial_px * np.sqrt(3.0) * 2.0 ** (iterations - i - 1) / np.sqrt(4.0 ** iterations - 1)
        a = np.float32(np.exp(-np.sqrt(2.0) / sigma_i))
        _recursive_pass(out_x, a ** dx_t)
        out_y = np.ascontiguousarray(out_x.transpose(1, 0, 2))  # (H, W, C)
        _recursive_pass(out_y, a ** dy_t)
        out_x = np.ascontiguousarray(out_y.transpose(1, 0, 2))
    return np.ascontiguousarray(out_x.transpose(1, 0, 2))


def _resize_area(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Area-average resize of (H, W, C) to (h, w, C), pixel edges aligned (so ``Camera.scaled`` matches)."""
    H, W = img.shape[:2]
    if (H, W) == (h, w):
        return np.asarray(img, dtype=np.float32)
    if H % h == 0 and W % w == 0:
        return img.reshape(h, H // h, w, W // w, -1).mean(axis=(1, 3), dtype=np.float32)
    fy, fx = H / h, W / w
    smooth = ndimage.uniform_filter(np.asarray(img, dtype=np.float32), size=(max(1, round(fy)), max(1, round(fx)), 1),
                                    mode="nearest")
    return ndimage.zoom(smooth, (h / H, w / W, 1), order=1, mode="nearest", grid_mode=True).astype(np.float32)


def _guide(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) scene-linear -> sRGB-encoded float32 0..1: colour differences as the eye sees them."""
    return preview_srgb(np.asarray(rgb, dtype=np.float32)).astype(np.float32) * np.float32(1 / 255)


# ------------------------------------------------------------------------------------------ one frame

@dataclass(frozen=True)
class _Proxy:
    inv_z: np.ndarray       # (h, w) float32, 0 = unknown
    confidence: np.ndarray  # (h, w) float32
    guide: np.ndarray       # (h, w, 3)


def densify_frame(rgb_proxy: np.ndarray, camera: Camera, cam_to_world: np.ndarray, uv: np.ndarray,
                  z: np.ndarray, weights: np.ndarray, on_plane: np.ndarray, planes: list[ScenePlane],
                  opts: SfmDepthOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense inverse depth (h, w) (0 = unknown), confidence (h, w) and guide (h, w, 3) at proxy size.

    ``camera`` is the proxy camera; ``uv`` (M, 2) proxy pixels, ``z`` (M,) metres, ``weights`` (M,),
    ``on_plane`` (M, P) bool: which plane each point lies on.
    """
    h, w = camera.height, camera.width
    guide = _guide(rgb_proxy)
    guide = ndimage.gaussian_filter(guide, sigma=(0.7, 0.7, 0), mode="nearest")
    px = np.clip(uv[:, 0].astype(np.int64), 0, w - 1)
    py = np.clip(uv[:, 1].astype(np.int64), 0, h - 1)
    flat = py * w + px
    q = 1.0 / z
    cols = [weights, weights * q, weights * q * q] + [weights * on_plane[:, k] for k in range(len(planes))]
    splat = np.stack([np.bincount(flat, c, minlength=h * w) for c in cols], axis=-1).reshape(h, w, -1)
    f = edge_aware_filter(splat, guide, sigma_spatial_px=opts.sigma_spatial_px, sigma_range=opts.sigma_range,
                          iterations=opts.iterations).astype(np.float64)
    dens = np.maximum(f[..., 0], 1e-30)
    q_fill = f[..., 1] / dens
    spread = np.sqrt(np.maximum(f[..., 2] / dens - q_fill ** 2, 0.0)) / np.maximum(q_fill, 1e-12)
    n_near = f[..., 0] * np.pi * opts.confidence_radius_px ** 2
    conf = (1.0 - np.exp(-n_near)) * np.exp(-np.log(2.0) * (spread / opts.spread_rel) ** 2)
    inv = q_fill
    if planes:
        rays = camera.ray_directions() @ cam_to_world[:3, :3].T  # world, camera-Z component -1
        centre = cam_to_world[:3, 3]
        best_score = np.zeros((h, w))
        best_q = np.zeros((h, w))
        for k, sp in enumerate(planes):
            denom = sp.plane.normal @ centre + sp.plane.offset
            q_k = -(rays @ sp.plane.normal) / denom  # 1 / Z on the plane, <= 0 when behind
            support = f[..., 3 + k] / dens
            agree = np.abs(q_k - q_fill) < opts.plane_agree_rel * q_fill
            score = np.where((q_k > 0) & agree, support, 0.0)
            better = score > best_score
            best_score = np.where(better, score, best_score)
            best_q = np.where(better, q_k, best_q)
        use = best_score >= opts.plane_support
        inv = np.where(use, best_q, q_fill)
        plane_conf = np.clip((best_score - 0.5) / 0.4, 0.0, 1.0) * (1.0 - np.exp(-4.0 * n_near))
        conf = np.where(use, np.maximum(conf, plane_conf), conf)
    unknown = (n_near < opts.unknown_points) | ~(inv > 0)
    inv = np.where(unknown, 0.0, inv)
    conf = np.where(unknown, 0.0, conf)
    return inv.astype(np.float32), conf.astype(np.float32), guide


def upsample_inverse_depth(inv: np.ndarray, conf: np.ndarray, guide_proxy: np.ndarray, rgb_full: np.ndarray,
                           edge_rel: float) -> tuple[np.ndarray, np.ndarray]:
    """Proxy inverse depth and confidence -> plate size. Bilinear (exact for planes) away from depth
    edges; at edges each plate pixel takes whichever of its 4 proxy neighbours is closest in colour."""
    h, w = inv.shape
    H, W = rgb_full.shape[:2]
    xs = (np.arange(W) + 0.5) * (w / W) - 0.5
    ys = (np.arange(H) + 0.5) * (h / H) - 0.5
    x0 = np.clip(np.floor(xs).astype(np.int64), 0, w - 1)
    y0 = np.clip(np.floor(ys).astype(np.int64), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx = np.clip(xs - x0, 0.0, 1.0).astype(np.float32)[None, :]
    fy = np.clip(ys - y0, 0.0, 1.0).astype(np.float32)[:, None]

    def bilinear(a: np.ndarray) -> np.ndarray:
        top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
        bot = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
        return top * (1 - fy) + bot * fy

    inv_up = bilinear(inv)
    conf_up = bilinear(conf)
    # depth edges: the 2x2 proxy neighbourhood spans a relative jump, or touches unknown
    hi = ndimage.maximum_filter(inv, size=2, origin=-1, mode="nearest")
    lo = ndimage.minimum_filter(inv, size=2, origin=-1, mode="nearest")
    edge_p = (lo <= 0) & (hi > 0) | (hi > lo * (1 + edge_rel))
    edge = edge_p[y0][:, x0]
    if edge.any():
        ey, ex = np.nonzero(edge)
        g_full = _guide(rgb_full[ey, ex][None])[0]  # (E, 3)
        cy = np.stack([y0[ey], y0[ey], y1[ey], y1[ey]], axis=1)
        cx = np.stack([x0[ex], x1[ex], x0[ex], x1[ex]], axis=1)
        gd = np.abs(guide_proxy[cy, cx] - g_full[:, None, :]).sum(axis=2)  # (E, 4)
        wx, wy = fx[0, ex], fy[ey, 0]
        spatial = np.stack([(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy], axis=1)
        pick = np.argmin(gd - 0.05 * spatial, axis=1)
        sel = np.arange(len(ey))
        inv_up[ey, ex] = inv[cy[sel, pick], cx[sel, pick]]
        conf_up[ey, ex] = conf[cy[sel, pick], cx[sel, pick]] * 0.75
    with np.errstate(divide="ignore"):
        z = np.where(inv_up > 0, 1.0 / inv_up, np.inf).astype(np.float32)
    return z, np.where(np.isfinite(z), conf_up, 0.0).astype(np.float32)


# ------------------------------------------------------------------------------------------ back-end

class SfmDepthBackend:
    """``sfm``: depth from the solve's points, densified guided by the plate (no model weights)."""

    name = "sfm"

    def estimate_sequence(self, frames: list[int], images: ImagesFn, solve: "Solve", *,
                          progress: ProgressFn | None = None, **options: Any
                          ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        opts = SfmDepthOptions.from_options(options)
        pts = np.asarray(solve.points, dtype=np.float64).reshape(-1, 3)
        if len(pts) < opts.min_points:
            raise DepthError(f"the camera solve has {len(pts)} 3D points ({solve.static} camera): too few to "
                             "build depth from", hint="use the 'estimator' depth back-end or give a depth pass "
                             "('user')")
        errors = np.asarray(solve.point_errors, dtype=np.float64).reshape(-1)
        weights_all = 1.0 / (1.0 + (errors / 1.0) ** 2) if len(errors) == len(pts) else np.ones(len(pts))
        centres = solve.track.cam_to_world[:, :3, 3]
        planes = fit_scene_planes(pts, centres, max_planes=opts.max_planes, min_points=opts.plane_min_points,
                                  threshold_rel=opts.plane_threshold_rel)
        on_plane_all = (np.stack([p.inliers for p in planes], axis=1) if planes
                        else np.zeros((len(pts), 0), dtype=bool))
        for n, frame in enumerate(frames):
            t0 = time.perf_counter()
            rgb = np.asarray(images(frame), dtype=np.float32)[..., :3]
            cam = solve.track.camera_at(frame)
            if rgb.shape[:2] != (cam.height, cam.width):
                raise ResolutionMismatchError(f"plate is {rgb.shape[1]}x{rgb.shape[0]} but the solve is "
                                              f"{cam.width}x{cam.height}", frame=frame,
                                              hint="solve and estimate depth on the same plate")
            ids, uv, z = visible_points(solve, frame)
            if len(ids) < opts.min_points:
                log.warning("frame %d: only %d solve points visible, no depth from sfm", frame, len(ids))
                zf = np.full(rgb.shape[:2], np.inf, np.float32)
                yield (frame, zf, np.zeros_like(zf))
                continue
            pw = min(cam.width, opts.proxy_width_px)
            ph = max(1, round(cam.height * pw / cam.width))
            pcam = cam.scaled(pw, ph)
            rgb_p = _resize_area(rgb, ph, pw)
            uv_p = uv * np.array([pw / cam.width, ph / cam.height])
            inv_p, conf_p, guide_p = densify_frame(rgb_p, pcam, solve.track.transform(frame), uv_p, z,
                                                   weights_all[ids], on_plane_all[ids], planes, opts)
            zf, cf = upsample_inverse_depth(inv_p, conf_p, guide_p, rgb, opts.edge_rel)
            zf, cf = check_frame_output(frame, zf, cf, rgb.shape[:2], self.name)
            log.debug("frame %d: sfm depth from %d points in %.3f s", frame, len(ids), time.perf_counter() - t0)
            if progress is not None:
                progress(n + 1, len(frames), f"depth (sfm) frame {frame}")
            yield (frame, zf, cf)
