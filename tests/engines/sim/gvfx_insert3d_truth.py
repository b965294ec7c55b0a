"""Ground truth for the 3D insert tests: a textured analytic can (a cylinder standing on y = 0), ray cast
exactly from known cameras — the reference photograph and the plate's orbiting, craning camera.

The can's front (+Z, azimuth 0) faces the plate camera at the first frame. Its side is blue, with a
red front label (|azimuth| < LABEL_DEG, between LABEL_LO and LABEL_HI of its height); the lid is grey.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.engines.base import PlateContext
from gvfx.surface import Plane, raycast_depth

HEIGHT_M, RADIUS_M = 0.30, 0.06
LABEL_DEG, LABEL_LO, LABEL_HI = 50.0, 0.2, 0.8
BLUE, RED, GREY = np.array([30, 60, 200]), np.array([200, 30, 30]), np.array([150, 150, 150])
UP = np.array([0.0, 1.0, 0.0])


@dataclass
class Hit:
    """Per pixel: mask (H, W) bool, t (H, W) ray distance (camera-space Z), point (H, W, 3) world,
    normal (H, W, 3) world, label (H, W) bool (front label), lid (H, W) bool."""

    mask: np.ndarray
    z: np.ndarray
    point: np.ndarray
    normal: np.ndarray
    label: np.ndarray
    lid: np.ndarray


def raycast_can(camera: Camera, cam_to_world: np.ndarray, centre=(0.0, 0.0, 0.0), sub: int = 1) -> Hit:
    """Exact ray cast of the can at ``centre`` (its base centre) through every pixel centre."""
    rays = camera.ray_directions().reshape(-1, 3)  # z = -1: a point at depth Z is ray * Z
    d = rays @ cam_to_world[:3, :3].T
    o = cam_to_world[:3, 3] - np.asarray(centre)
    n = len(d)
    best = np.full(n, np.inf)
    normal = np.zeros((n, 3))
    lid = np.zeros(n, bool)
    # side: (ox + t dx)^2 + (oz + t dz)^2 = r^2
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = 2 * (o[0] * d[:, 0] + o[2] * d[:, 2])
    c = o[0] ** 2 + o[2] ** 2 - RADIUS_M ** 2
    disc = b * b - 4 * a * c
    ok = (disc >= 0) & (a > 1e-12)
    t_side = np.where(ok, (-b - np.sqrt(np.where(ok, disc, 0))) / (2 * np.where(ok, a, 1)), np.inf)
    y = o[1] + t_side * d[:, 1]
    side = ok & (t_side > 0) & (y >= 0) & (y <= HEIGHT_M)
    best[side] = t_side[side]
    p_side = o + t_side[:, None] * d
    normal[side] = p_side[side] * np.array([1.0, 0.0, 1.0]) / RADIUS_M
    # lid: y = HEIGHT_M
    with np.errstate(divide="ignore", invalid="ignore"):
        t_lid = (HEIGHT_M - o[1]) / d[:, 1]
    p_lid = o + t_lid[:, None] * d
    on_lid = (t_lid > 0) & (p_lid[:, 0] ** 2 + p_lid[:, 2] ** 2 <= RADIUS_M ** 2) & (t_lid < best)
    best[on_lid] = t_lid[on_lid]
    normal[on_lid] = UP
    lid[on_lid] = True
    mask = np.isfinite(best)
    p = o + np.where(mask, best, 0)[:, None] * d
    az = np.degrees(np.arctan2(p[:, 0], p[:, 2]))
    label = mask & ~lid & (np.abs(az) < LABEL_DEG) & (p[:, 1] > LABEL_LO * HEIGHT_M) & (p[:, 1] < LABEL_HI * HEIGHT_M)
    hw = (camera.height, camera.width)
    return Hit(mask.reshape(hw), np.where(mask, best, np.inf).reshape(hw),
               (p + np.asarray(centre)).reshape(*hw, 3), normal.reshape(*hw, 3), label.reshape(hw), lid.reshape(hw))


def reference_png(path, width: int = 160, height: int = 300) -> str:
    """The can photographed from the front at its mid-height (a long lens), as an RGBA PNG with a
    2x2-supersampled alpha, flat colours and a mild left-to-right light falloff baked in."""
    dist = 4.0
    cam = Camera(36.0 * (0.85 * height) * dist / HEIGHT_M / width, 36.0, 2 * width, 2 * height)
    m = look_at(np.array([0.0, HEIGHT_M / 2, dist]), np.array([0.0, HEIGHT_M / 2, 0.0]))
    hit = raycast_can(cam, m)
    col = np.where(hit.label[..., None], RED, BLUE).astype(np.float64)
    col = np.where(hit.lid[..., None], GREY, col)
    shade = 0.85 + 0.15 * np.clip(hit.normal @ np.array([-0.6, 0.0, 0.8]), 0, 1)
    rgba = np.zeros((2 * height, 2 * width, 4))
    rgba[..., :3] = col * shade[..., None]
    rgba[..., 3] = 255.0 * hit.mask
    # 2x2 box down-sample; colour averaged over covered samples only (straight alpha in the PNG)
    cov = rgba[..., 3].reshape(height, 2, width, 2).mean(axis=(1, 3))
    csum = (rgba[..., :3] * hit.mask[..., None]).reshape(height, 2, width, 2, 3).sum(axis=(1, 3))
    cnt = hit.mask.reshape(height, 2, width, 2).sum(axis=(1, 3))
    rgb = np.where(cnt[..., None] > 0, csum / np.maximum(cnt, 1)[..., None], 0)
    out = np.concatenate([rgb, cov[..., None]], -1).round().clip(0, 255).astype(np.uint8)
    Image.fromarray(out, "RGBA").save(path)
    return str(path)


def orbit_track(frames: list[int], width: int = 480, height: int = 270, dist: float = 1.6,
                orbit_deg: float = 70.0, crane=(5.0, 50.0)) -> CameraTrack:
    """A camera orbiting ``orbit_deg`` about the can and craning from ``crane[0]`` to ``crane[1]``
    degrees of elevation, always looking at the can's middle."""
    cam = Camera(35.0, 36.0, width, height)
    mats = []
    for i, _ in enumerate(frames):
        s = i / max(len(frames) - 1, 1)
        az, el = np.radians(orbit_deg * s), np.radians(crane[0] + (crane[1] - crane[0]) * s)
        target = np.array([0.0, HEIGHT_M / 2, 0.0])
        eye = target + dist * np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
        mats.append(look_at(eye, target))
    return CameraTrack(cam, list(frames), np.stack(mats))


def plate_context(track: CameraTrack, grey: float = 0.18) -> PlateContext:
    """The plate: a ground plane (y = 0) ray cast through ``track``, a flat grey image."""
    cam = track.camera
    depths = {f: raycast_depth(cam, track.transform(f), planes=(Plane(UP, 0.0),)) for f in track.frames}
    img = np.full((cam.height, cam.width, 4), grey, np.float32)
    img[..., 3] = 1.0
    return PlateContext(list(track.frames), track, depth=lambda f: depths[int(f)], width=cam.width,
                        height=cam.height, image=lambda f: img)


def base_point(mask: np.ndarray) -> np.ndarray:
    """(u, v) of the silhouette's base: the lowest covered row, the mean column of the lowest 3 rows."""
    rows = np.flatnonzero(mask.any(axis=1))
    low = rows[-1]
    ys, xs = np.nonzero(mask[low - 2:low + 1])
    return np.array([xs.mean() + 0.5, low + 1.0])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def label_share(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Share of a rendered silhouette showing the (red) label: red clearly above green and blue."""
    red = (rgb[..., 0] > 1.5 * rgb[..., 2]) & (rgb[..., 0] > 1.5 * rgb[..., 1])
    return float((red & mask).sum() / max(mask.sum(), 1))


#: a non-symmetric object for ``inflate``: an ellipsoid (semi-axes along its own x, y, z) tilted in the
#: reference's image plane, its lowest point on the ground at the origin
ELLIPSOID_AXES = np.array([0.06, 0.15, 0.05])
ELLIPSOID_TILT_DEG = 25.0


def _ellipsoid_frame() -> tuple[np.ndarray, np.ndarray]:
    """(R, centre): local-to-world rotation (tilt about +Z) and the centre that puts its lowest point at 0."""
    a = np.radians(ELLIPSOID_TILT_DEG)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    m = rot @ np.diag(ELLIPSOID_AXES)
    low = np.linalg.norm(m[1])  # support height along y of the ellipsoid x = M u, |u| = 1
    return rot, np.array([0.0, low, 0.0])


def raycast_ellipsoid(camera: Camera, cam_to_world: np.ndarray) -> np.ndarray:
    """(H, W) bool exact silhouette of the tilted ellipsoid."""
    rot, c = _ellipsoid_frame()
    inv = np.diag(1 / ELLIPSOID_AXES) @ rot.T
    d = camera.ray_directions().reshape(-1, 3) @ cam_to_world[:3, :3].T @ inv.T
    o = inv @ (cam_to_world[:3, 3] - c)
    a, b, cc = np.einsum("ij,ij->i", d, d), 2 * d @ o, o @ o - 1
    return ((b * b - 4 * a * cc) >= 0).reshape(camera.height, camera.width)


def ellipsoid_png(path, width: int = 200, height: int = 300) -> str:
    """The ellipsoid photographed from the front (+Z) at its centre height, long lens, orange, RGBA."""
    rot, c = _ellipsoid_frame()
    dist = 4.0
    hh = 2 * float(c[1])
    cam = Camera(36.0 * (0.85 * height) * dist / hh / width, 36.0, width, height)
    m = look_at(np.array([0.0, c[1], dist]), c)
    mask = raycast_ellipsoid(cam, m)
    out = np.zeros((height, width, 4), np.uint8)
    out[mask] = (220, 120, 40, 255)
    Image.fromarray(out, "RGBA").save(path)
    return str(path)
