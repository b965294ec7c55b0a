"""Blender's Z-up world to gvfx's Y-up world: points for placement and the scene camera as a ``.chan``.

gvfx world: right-handed, Y up, metres. A Blender point ``(x, y, z)`` becomes ``(x, z, -y)`` times the
scene's unit scale. The camera is written as a Nuke ``.chan`` (``frame tx ty tz rx ry rz vfov``,
degrees, rotation order ZXY i.e. ``R = Ry @ Rx @ Rz``, vertical field of view), which gvfx reads with
``camera: {file: ..., haperture_mm: ...}``. Blender and gvfx cameras both look down their local -Z
with Y up, so only the world changes.

The math below is plain Python (no numpy) so it runs in Blender's interpreter.
"""

from __future__ import annotations

import math
from typing import Sequence

Matrix4 = Sequence[Sequence[float]]


def point_to_gvfx(p: Sequence[float], unit_scale: float = 1.0) -> list[float]:
    """A Blender world point -> gvfx world metres."""
    x, y, z = (float(v) * unit_scale for v in p[:3])
    return [x, z, -y]


def matrix_to_gvfx(m: Matrix4, unit_scale: float = 1.0) -> list[list[float]]:
    """A Blender 4x4 camera-to-world (column vectors, Z-up) -> gvfx's Y-up, metres, rotation orthonormal."""
    rows = [[float(m[r][c]) for c in range(4)] for r in range(4)]
    # drop scale from the 3x3 part (object scale on a camera does not change what it sees)
    cols = []
    for c in range(3):
        v = [rows[r][c] for r in range(3)]
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        cols.append([x / n for x in v])
    r3 = [[cols[c][r] for c in range(3)] for r in range(3)]
    t = [rows[r][3] * unit_scale for r in range(3)]
    # Z_UP_TO_Y_UP: rows (x, y, z) -> (x, z, -y)
    conv = lambda v: [v[0], v[2], -v[1]]  # noqa: E731
    r_g = [r3[0], r3[2], [-x for x in r3[1]]]
    t_g = conv(t)
    return [r_g[0] + [t_g[0]], r_g[1] + [t_g[1]], r_g[2] + [t_g[2]], [0.0, 0.0, 0.0, 1.0]]


def euler_zxy(m: Matrix4) -> tuple[float, float, float]:
    """(rx, ry, rz) degrees with ``R = Ry @ Rx @ Rz`` (Nuke's ZXY order); same as gvfx.camera_io."""
    sx = max(-1.0, min(1.0, -m[1][2]))
    rx = math.asin(sx)
    if abs(math.cos(rx)) > 1e-9:
        ry = math.atan2(m[0][2], m[2][2])
        rz = math.atan2(m[1][0], m[1][1])
    else:
        rz = 0.0
        ry = math.atan2(-m[2][0], m[0][0])
    return math.degrees(rx), math.degrees(ry), math.degrees(rz)


def film_back_mm(sensor_fit: str, sensor_width: float, sensor_height: float, width: int, height: int) -> float:
    """The horizontal film back (mm) Blender uses for this render size and sensor fit."""
    if sensor_fit == "VERTICAL" or (sensor_fit == "AUTO" and height > width):
        return sensor_height * width / height if sensor_fit == "VERTICAL" else sensor_width * width / height
    return sensor_width


def vfov_deg(focal_mm: float, haperture_mm: float, width: int, height: int) -> float:
    """Vertical field of view for a horizontal film back fitted to a width x height image."""
    vap = haperture_mm * height / width
    return math.degrees(2.0 * math.atan(vap / (2.0 * focal_mm)))


def chan_line(frame: int, m_gvfx: Matrix4, vfov: float) -> str:
    rx, ry, rz = euler_zxy(m_gvfx)
    tx, ty, tz = m_gvfx[0][3], m_gvfx[1][3], m_gvfx[2][3]
    return f"{frame} {tx:.9g} {ty:.9g} {tz:.9g} {rx:.9g} {ry:.9g} {rz:.9g} {vfov:.9g}"


def write_scene_camera(scene, path: str, first: int, last: int) -> dict:
    """Write the scene camera over ``first..last`` to ``path`` (.chan); return the job's ``camera`` mapping.

    Evaluates every frame with ``scene.frame_set`` (parents, constraints and drivers included) and
    restores the current frame.
    """
    cam = scene.camera
    if cam is None or cam.type != "CAMERA":
        raise ValueError("the scene has no camera: set Scene > Camera, or choose Camera: None/File")
    r = scene.render
    width = int(r.resolution_x * r.resolution_percentage / 100)
    height = int(r.resolution_y * r.resolution_percentage / 100)
    unit = scene.unit_settings.scale_length or 1.0
    data = cam.data
    hap = film_back_mm(data.sensor_fit, data.sensor_width, data.sensor_height, width, height)
    current = scene.frame_current
    lines = []
    try:
        for f in range(first, last + 1):
            scene.frame_set(f)
            m = matrix_to_gvfx(cam.matrix_world, unit)
            lines.append(chan_line(f, m, vfov_deg(cam.data.lens, hap, width, height)))
    finally:
        scene.frame_set(current)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return {"file": path, "haperture_mm": round(hap, 6)}
