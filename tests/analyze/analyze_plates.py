"""Synthetic plates for the analyze tests: the demo scene seen by a camera with a known move, and
pose comparison up to a similarity."""

from __future__ import annotations

import numpy as np

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.demo.scene import default_scene, render_plate_frame

FIRST = 1001


def wide_track(width: int, height: int, n: int, *, focal_mm: float = 35.0) -> CameraTrack:
    """An orbit of 36 degrees with a dolly-in and a rise, at constant speed: enough baseline to
    measure the focal length (an orbit alone confuses focal and distance)."""
    scene = default_scene()
    target = np.asarray(scene.camera_target, dtype=np.float64)
    mats = []
    for k in range(n):
        s = k / max(n - 1, 1)
        az = np.radians(-18.0 + 36.0 * s)
        r = 4.6 - 1.0 * s
        eye = np.array([target[0] + r * np.sin(az), 1.45 + 0.35 * s, target[2] + r * np.cos(az)])
        mats.append(look_at(eye, target + np.array([0.0, 0.0, 0.0])))
    return CameraTrack(Camera(focal_mm, 36.0, width, height), tuple(range(FIRST, FIRST + n)), np.stack(mats))


def render(track: CameraTrack, *, grain: bool = True) -> dict[int, np.ndarray]:
    """{frame: (H, W, 3) float32 ACEScg} of the demo scene seen by ``track``."""
    scene = default_scene()
    return {f: render_plate_frame(scene, track, f, grain=grain)[0] for f in track.frames}


def pose_similarity_errors(solved: CameraTrack, true: CameraTrack) -> dict[str, float]:
    """Compare a solved track to the truth up to a similarity.

    Centres: Umeyama fit of the solved camera centres to the true ones; the worst centre error over
    the true path length. Rotations: the solved orientations rotated by the one world rotation that
    best aligns them to the true ones (the centres of a near-planar arc pin that rotation down poorly:
    a tilt about the chord costs the centres nothing); the worst angle in degrees. Also the scale.
    """
    ct = true.cam_to_world[:, :3, 3]
    cs = solved.cam_to_world[:, :3, 3]
    path = float(np.sum(np.linalg.norm(np.diff(ct, axis=0), axis=1)))
    s, r, t = umeyama(cs, ct)
    centre = float(np.max(np.linalg.norm((s * (r @ cs.T)).T + t - ct, axis=1)) / path)
    u, _, vt = np.linalg.svd(sum(b[:3, :3] @ a[:3, :3].T for a, b in zip(solved.cam_to_world, true.cam_to_world)))
    r_rot = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    angles = []
    for a, b in zip(solved.cam_to_world, true.cam_to_world):
        d = (r_rot @ a[:3, :3]).T @ b[:3, :3]
        angles.append(np.degrees(np.arccos(np.clip((np.trace(d) - 1) / 2, -1, 1))))
    return {"centre_rel": centre, "rotation_deg": float(max(angles)), "scale": float(s), "path_m": path}


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising |s R src + t - dst|^2 over (N, 3) point pairs."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    u, dvals, vt = np.linalg.svd(xd.T @ xs / len(src))
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    r = u @ sign @ vt
    s = float(np.trace(np.diag(dvals) @ sign) / ((xs ** 2).sum() / len(src)))
    return s, r, mu_d - s * r @ mu_s
