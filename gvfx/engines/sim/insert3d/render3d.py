"""One frame of a 3D proxy through the plate camera: premultiplied RGBA, Z, N (world normals),
P (world position), motion (px/frame, U right, V up, from the object's and the camera's real motion)
and the cast ``shadow`` on the plate's surface.

Motion blur and anti-aliasing share one set of samples: ``max(len(times), aa_samples)`` rasterisations,
each at a shutter time and a sub-pixel offset, averaged (coverage is alpha). Z is the nearest over the
samples; N, P and motion are coverage-weighted averages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gvfx.camera import CameraTrack
from gvfx.engines.sim.insert3d.proxy import Proxy, dot, normalised, rotate
from gvfx.engines.sim.insert3d.raster import rasterize
from gvfx.engines.sim.insert3d.shade import Lighting, lambert, shadow_map, surface_shadow

__all__ = ["Pose", "Frame3D", "render_proxy"]

#: sub-pixel offsets (rotated grid, then more) for the samples, in pixels
_JITTER = np.array([[0.125, -0.375], [-0.375, -0.125], [0.375, 0.125], [-0.125, 0.375],
                    [0.0, 0.0], [0.25, 0.25], [-0.25, 0.25], [0.25, -0.25], [-0.25, -0.25]])


@dataclass(frozen=True)
class Pose:
    """Object-to-world: ``world = R @ local + t`` (R (3, 3) rotation, t (3,) metres)."""

    R: np.ndarray
    t: np.ndarray

    def apply(self, pts: np.ndarray) -> np.ndarray:
        return rotate(pts, self.R) + self.t


@dataclass
class Frame3D:
    """The layers of one rendered frame, (H, W[, C]) float32 (see the module doc)."""

    rgba: np.ndarray
    z: np.ndarray
    normal: np.ndarray
    position: np.ndarray
    motion: np.ndarray
    shadow: np.ndarray
    contact: np.ndarray


def _interp(corner: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """(K, C) barycentric interpolation of per-corner values (K, 3, C)."""
    return np.einsum("kic,ki->kc", corner, bary)


def _bilinear(tex: np.ndarray, uv: np.ndarray) -> np.ndarray:
    h, w = tex.shape[:2]
    x = np.clip(uv[:, 0] * w - 0.5, 0, w - 1)
    y = np.clip(uv[:, 1] * h - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(np.intp), np.floor(y).astype(np.intp)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    tx, ty = (x - x0)[:, None], (y - y0)[:, None]
    return (tex[y0, x0] * (1 - tx) * (1 - ty) + tex[y0, x1] * tx * (1 - ty)
            + tex[y1, x0] * (1 - tx) * ty + tex[y1, x1] * tx * ty)


def render_proxy(proxy: Proxy, pose_at: Callable[[float], Pose], track: CameraTrack, frame: int,
                 times: np.ndarray, width: int, height: int, lighting: Lighting, *,
                 plate_z: np.ndarray | None = None, aa_samples: int = 4, contact_radius: float = 0.15) -> Frame3D:
    """Render ``proxy`` posed by ``pose_at(t)`` through ``track`` at ``frame`` (module doc)."""
    n_px = width * height
    n_samples = max(len(times), int(aa_samples), 1)
    rgb = np.zeros((n_px, 3))
    cov = np.zeros(n_px)
    nacc = np.zeros((n_px, 3))
    pacc = np.zeros((n_px, 3))
    macc = np.zeros((n_px, 2))
    zmin = np.full(n_px, np.inf)
    pose_f = pose_at(float(frame))
    verts_f = pose_f.apply(proxy.verts)
    sm = _object_shadow_map(proxy, pose_f.R, lighting.light_dir).moved(pose_f.t)
    last = track.frames[-1]
    step = 1.0 if frame < last else -1.0
    for k in range(n_samples):
        t = float(times[k % len(times)])
        pose = pose_at(t)
        vw = pose.apply(proxy.verts)
        cam = track.camera_at(t)
        xy, zc = cam.project(_to_camera(track, vw, t))
        jit = _JITTER[k % len(_JITTER)] if n_samples > 1 else np.zeros(2)
        fr = rasterize(xy - jit, zc, proxy.faces, width, height, cull_back=proxy.closed)
        if fr.pix.size == 0:
            continue
        f3 = proxy.faces[fr.face]
        b = fr.bary
        uv = _interp(proxy.face_uv[fr.face], b)
        albedo = _bilinear(proxy.texture, uv)
        nw = normalised(rotate(_interp(proxy.normals[f3], b), pose.R))
        pw = _interp(vw[f3], b)
        vis = 1.0 - sm.lookup(pw + nw * (2 * sm.cell))
        col = lambert(albedo, nw, lighting, vis)
        # forward motion: the same object point one frame later, through the camera one frame later
        local = _interp(proxy.verts[f3], b)
        p_next = pose_at(t + step).apply(local)
        uv1, _ = track.camera_at(t + step).project(_to_camera(track, p_next, t + step))
        uv0, _ = cam.project(_to_camera(track, pw, t))
        mv = (uv1 - uv0) * step
        rgb[fr.pix] += col
        cov[fr.pix] += 1.0
        nacc[fr.pix] += nw
        pacc[fr.pix] += pw
        macc[fr.pix] += mv * np.array([1.0, -1.0])
        zmin[fr.pix] = np.minimum(zmin[fr.pix], fr.z)
    hit = cov > 0
    alpha = cov / n_samples
    rgba = np.zeros((n_px, 4), np.float32)
    rgba[:, :3] = rgb / n_samples
    rgba[:, 3] = alpha
    normal = np.zeros((n_px, 3), np.float32)
    normal[hit] = normalised(nacc[hit])
    position = np.zeros((n_px, 3), np.float32)
    position[hit] = pacc[hit] / cov[hit, None]
    motion = np.zeros((n_px, 2), np.float32)
    motion[hit] = macc[hit] / cov[hit, None]
    hw = (height, width)
    shadow, contact = np.zeros(hw, np.float32), np.zeros(hw, np.float32)
    if plate_z is not None:
        shadow, contact = _plate_shadow(sm, verts_f, track, frame, plate_z, contact_radius * proxy.height_m)
    return Frame3D(rgba.reshape(*hw, 4), zmin.astype(np.float32).reshape(hw), normal.reshape(*hw, 3),
                   position.reshape(*hw, 3), motion.reshape(*hw, 2), shadow, contact)


_SHADOW_MAPS: dict[tuple, object] = {}


def _object_shadow_map(proxy: Proxy, rot: np.ndarray, light: np.ndarray):
    """The shadow map of the rotated (not yet translated) proxy, memoised: a resting or sliding
    object keeps its orientation, so every frame shares one map."""
    key = (id(proxy), rot.tobytes(), np.asarray(light, np.float64).tobytes())
    if key not in _SHADOW_MAPS:
        if len(_SHADOW_MAPS) > 16:
            _SHADOW_MAPS.clear()
        _SHADOW_MAPS[key] = shadow_map(rotate(proxy.verts, rot), proxy.faces, light)
    return _SHADOW_MAPS[key]


def _to_camera(track: CameraTrack, pts: np.ndarray, t: float) -> np.ndarray:
    m = track.world_to_camera(t)
    return rotate(pts, m[:3, :3]) + m[:3, 3]


def _plate_shadow(sm, verts_w: np.ndarray, track: CameraTrack, frame: int, plate_z: np.ndarray,
                  reach_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) cast shadow and contact occlusion of the proxy on the plate's depth surface at ``frame``."""
    h, w = plate_z.shape
    cast, contact = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    cam = track.camera_at(frame)
    y0, y1, x0, x1 = _shadow_window(sm, verts_w, track, frame, w, h, reach_m)
    sub = plate_z[y0:y1, x0:x1]
    ys, xs = np.nonzero(np.isfinite(sub) & (sub > 0))
    ys, xs = ys + y0, xs + x0
    if ys.size == 0:
        return cast, contact
    uv = np.stack([xs + 0.5, ys + 0.5], -1).astype(np.float64)
    m = track.transform(frame)
    pts = rotate(cam.unproject(uv, plate_z[ys, xs].astype(np.float64)), m[:3, :3]) + m[:3, 3]
    # only the surface inside the shadow map's footprint, or near the mesh, can be darkened
    s = sm.top.shape[0]
    a = (dot(pts, sm.e1) - sm.origin[0]) / sm.cell
    b = (dot(pts, sm.e2) - sm.origin[1]) / sm.cell
    lo, hi = verts_w.min(axis=0) - reach_m, verts_w.max(axis=0) + reach_m
    near = ((a >= -1) & (a <= s) & (b >= -1) & (b <= s)) | ((pts >= lo) & (pts <= hi)).all(axis=1)
    if near.any():
        c, o = surface_shadow(sm, pts[near], verts_w, reach_m=reach_m)
        cast[ys[near], xs[near]] = c
        contact[ys[near], xs[near]] = o
    return cast, contact


def _shadow_window(sm, verts_w: np.ndarray, track: CameraTrack, frame: int, w: int, h: int,
                   reach_m: float) -> tuple[int, int, int, int]:
    """Screen rows/columns (y0, y1, x0, x1) that can hold the shadow: the mesh and its shadow on the
    plane of its lowest point (along the light), projected, grown by a quarter plus 8 pixels. A grazing
    light (< 3 degrees above that plane) or a footprint behind the camera -> the whole frame."""
    elev = float(sm.light[1])
    if elev < 0.05:
        return 0, h, 0, w
    lo, hi = verts_w.min(axis=0), verts_w.max(axis=0)
    box = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    drop = (box[:, 1] - lo[1]) / elev
    pts = np.concatenate([box, box - drop[:, None] * sm.light])
    pts = np.concatenate([pts + d for d in (np.zeros(3), np.array([reach_m, 0, 0]), np.array([-reach_m, 0, 0]),
                                            np.array([0, 0, reach_m]), np.array([0, 0, -reach_m]))])
    uv, z = track.camera_at(frame).project(_to_camera(track, pts, frame))
    if (z <= 1e-3).any():
        return 0, h, 0, w
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    pad = 0.25 * (hi - lo) + 8
    x0, y0 = (np.floor(lo - pad)).astype(int)
    x1, y1 = (np.ceil(hi + pad)).astype(int)
    return max(y0, 0), min(max(y1, 0), h), max(x0, 0), min(max(x1, 0), w)
