"""Plates gvfx was not tuned on: a ray-cast scene unlike the demo's (textured ground, a far wall, three
boxes 4–12 m away) seen by cameras with known moves, with exact depth. The truth is analytic (ray/plane
and ray/box intersections here), independent of gvfx's own renderer and solver."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gvfx.camera import Camera, CameraTrack, look_at

FIRST = 1001


@dataclass(frozen=True)
class Box:
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    seed: int


#: ground y=0, a wall z=-13 (facing +Z), three boxes at 4-12 m from the camera line at z=+2
BOXES = (Box((-2.6, 0.0, -2.5), (-1.4, 1.2, -1.5), 3),
         Box((0.2, 0.0, -6.2), (1.8, 2.0, -4.6), 5),
         Box((-0.8, 0.0, -10.5), (1.2, 3.0, -9.0), 9))
WALL_Z = -13.0


def _hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    h = (ix.astype(np.int64) * 374761393 + iy.astype(np.int64) * 668265263 + seed * 1442695041) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float64) / 65535.0


def _noise(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = u - iu, v - iv
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    a, b = _hash(iu, iv, seed), _hash(iu + 1, iv, seed)
    c, d = _hash(iu, iv + 1, seed), _hash(iu + 1, iv + 1, seed)
    return (a * (1 - fu) + b * fu) * (1 - fv) + (c * (1 - fu) + d * fu) * fv


def texture(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Multi-scale value noise in surface metres: detail from 2 m down to 2 cm, so SIFT finds corners
    at every distance."""
    out = np.zeros_like(u)
    amp, freq, total = 1.0, 1.0, 0.0
    for k in range(7):
        out += amp * _noise(u * freq, v * freq, seed + 17 * k)
        total += amp
        amp *= 0.8
        freq *= 2.1
    return np.clip((out / total - 0.5) * 3.0 + 0.5, 0.0, 1.0)


def render_frame(cam: Camera, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) float32 scene-linear rgb and (H, W) float32 camera Z (inf for sky).

    The nearest hit per pixel is found first (ray/plane, ray/box slabs), then each surface's texture
    is evaluated only where that surface is seen."""
    w, h = cam.width, cam.height
    f_px = cam.focal_mm / cam.haperture_mm * w
    xs = (np.arange(w) + 0.5 - w / 2) / f_px
    ys = -(np.arange(h) + 0.5 - h / 2) / f_px
    dx, dy = np.meshgrid(xs, ys)
    d_cam = np.stack([dx, dy, -np.ones_like(dx)], axis=-1)  # gvfx camera: looks down -Z, Y up
    d = (d_cam @ c2w[:3, :3].T).reshape(-1, 3)
    d = np.where(np.abs(d) < 1e-12, 1e-12, d)
    o = c2w[:3, 3]
    n = len(d)
    t = np.full(n, np.inf)
    hit = np.full(n, -1)  # 0 ground, 1 wall, 2+k box k
    tg = np.where(d[:, 1] < -1e-9, -o[1] / d[:, 1], np.inf)
    better = tg < t
    t, hit = np.where(better, tg, t), np.where(better, 0, hit)
    tw = np.where(d[:, 2] < -1e-9, (WALL_Z - o[2]) / d[:, 2], np.inf)
    yw = o[1] + d[:, 1] * tw
    tw = np.where((yw >= 0) & (yw <= 8.0), tw, np.inf)
    better = tw < t
    t, hit = np.where(better, tw, t), np.where(better, 1, hit)
    for k, box in enumerate(BOXES):
        lo, hi = np.asarray(box.lo), np.asarray(box.hi)
        t1, t2 = (lo - o) / d, (hi - o) / d
        tmin = np.max(np.minimum(t1, t2), axis=-1)
        tmax = np.min(np.maximum(t1, t2), axis=-1)
        better = (tmax >= tmin) & (tmin > 1e-6) & (tmin < t)
        t, hit = np.where(better, tmin, t), np.where(better, 2 + k, hit)
    rgb = np.tile(np.array([0.5, 0.6, 0.8]), (n, 1))
    sel = hit == 0
    p = o + d[sel] * t[sel, None]
    g = texture(p[:, 0], p[:, 2], 1)
    rgb[sel] = np.stack([0.25 + 0.35 * g, 0.22 + 0.3 * g, 0.18 + 0.25 * g], -1)
    sel = hit == 1
    p = o + d[sel] * t[sel, None]
    g = texture(p[:, 0], p[:, 1], 2)
    rgb[sel] = np.stack([0.3 + 0.4 * g, 0.3 + 0.35 * g, 0.34 + 0.3 * g], -1)
    for k, box in enumerate(BOXES):
        sel = hit == 2 + k
        lo, hi = np.asarray(box.lo), np.asarray(box.hi)
        pb = o + d[sel] * t[sel, None]
        # texture coordinates on whichever face was hit
        on_x = np.isclose(pb[:, 0], lo[0], atol=1e-6) | np.isclose(pb[:, 0], hi[0], atol=1e-6)
        u = np.where(on_x, pb[:, 2], pb[:, 0])
        v = np.where(np.isclose(pb[:, 1], hi[1], atol=1e-6), pb[:, 2], pb[:, 1])
        gb = texture(u * 1.3, v * 1.3, box.seed)
        shade = np.where(on_x, 0.8, 1.0)
        rgb[sel] = np.stack([0.45 + 0.4 * gb, 0.3 + 0.3 * gb, 0.2 + 0.2 * gb], -1) * shade[:, None]
    z = np.where(hit >= 0, t, np.inf)  # distance along the ray of unit camera-z: Z = t (d_cam has z = -1)
    return rgb.reshape(h, w, 3).astype(np.float32), z.reshape(h, w).astype(np.float32)


MOVES = ("sideways", "dolly", "dolly_straight", "orbit", "crane", "handheld", "pan", "locked")


def track(move: str, width: int = 480, height: int = 270, n: int = 24, focal_mm: float = 32.0) -> CameraTrack:
    """A camera move over ``n`` frames, looking into the scene from z ≈ +2 m at 1.5 m height."""
    rng = np.random.default_rng(4)
    mats = []
    target0 = np.array([0.0, 1.0, -7.0])
    for k in range(n):
        s = k / max(n - 1, 1)
        eye, target = np.array([-1.0, 1.5, 2.0]), target0.copy()
        if move == "sideways":
            eye = eye + [2.0 * s, 0, 0]
            # the boxes kept in frame: a pure translation would leave the focal unmeasurable
        elif move == "dolly":
            # forward 2.5 m while panning 12 degrees: a straight dolly alone leaves the focal unmeasurable
            eye = eye + [0.3 * s, 0, -2.5 * s]
            target = target + [-1.6 * s, 0, 0]
        elif move == "dolly_straight":  # straight in, no pan: COLMAP alone fails here too
            eye = eye + [0.2 * s, 0, -2.5 * s]
        elif move == "orbit":
            a = np.radians(-15 + 30 * s)
            r = 9.0
            eye = target0 + [r * np.sin(a), 0.5, r * np.cos(a)]
        elif move == "crane":
            eye = eye + [1.0 * s, 2.0 * s, 0]
        elif move == "handheld":
            eye = eye + [0.8 * s, 0, -0.5 * s] + rng.normal(0, 0.02, 3)
            target = target + rng.normal(0, 0.05, 3)
        elif move == "pan":
            a = np.radians(-12 + 24 * s)
            target = eye + 9.0 * np.array([np.sin(a), -0.05, -np.cos(a)])
        elif move != "locked":
            raise ValueError(move)
        mats.append(look_at(eye, target))
    return CameraTrack(Camera(focal_mm, 36.0, width, height), tuple(range(FIRST, FIRST + n)), np.stack(mats))


def render(tr: CameraTrack) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """{frame: rgb}, {frame: Z} of the scene seen by ``tr``."""
    imgs, zs = {}, {}
    for f in tr.frames:
        imgs[f], zs[f] = render_frame(tr.camera, tr.transform(f))
    return imgs, zs
