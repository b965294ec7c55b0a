"""A small procedural scene rendered by gvfx itself: the demo plate, with exact camera and depth.

Analytic ray casting in numpy: a paved ground plane (y = 0), a wooden table (top slab + four legs), a
cardboard box nearer the camera on its right, a brick wall behind, and a sky gradient above it. A key
light (``DEFAULT_LIGHT_DIR``) gives Lambert shading and cast shadows of the boxes; a hemispherical
ambient and a cheap contact occlusion make it read as a real scene. Every texture is multi-scale and
deterministic (:mod:`gvfx.demo.textures`), so the plate is also a synthetic test for camera solving.

Conventions are those of :mod:`gvfx.camera` (world Y-up metres, camera looks down -Z, ``Z`` metric
camera-space depth, ``inf`` for sky). Output colours are scene-linear ACEScg.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.demo.textures import _bricks, _cardboard, _paving, _wood
from gvfx.engines.sim.common import DEFAULT_LIGHT_DIR
from gvfx.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["DemoScene", "default_scene", "demo_camera", "render_plate_frame", "write_demo_plate",
           "GRAIN_SIGMA", "DEFAULT_FIRST_FRAME"]

#: Per-channel (R, G, B) standard deviation of the additive gaussian sensor grain, scene-linear ACEScg.
GRAIN_SIGMA = (0.006, 0.005, 0.008)
#: First frame number when ``frames`` is given as a count.
DEFAULT_FIRST_FRAME = 1001

_KEY_RGB = np.array([1.05, 1.0, 0.92], dtype=np.float32)  # key light irradiance (n.L = 1)
_AMBIENT_RGB = np.array([0.22, 0.25, 0.30], dtype=np.float32)  # sky fill, for an upward normal
_SKY_HORIZON = np.array([0.85, 0.92, 1.05], dtype=np.float32)
_SKY_ZENITH = np.array([0.3, 0.45, 1.0], dtype=np.float32)

# Object ids in the hit buffer.
_SKY, _GROUND, _WALL = -1, 0, 1


@dataclass(frozen=True)
class _Box:
    """An oriented box: centre, half extents (local x, y, z) and a yaw about world Y, in metres."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw_deg: float
    material: str

    @property
    def rot(self) -> np.ndarray:
        """3x3 local-to-world rotation (columns are the local axes)."""
        a = np.radians(self.yaw_deg)
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])

    def corners(self) -> np.ndarray:
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
        return (signs * np.asarray(self.half)) @ self.rot.T + np.asarray(self.center)


@dataclass(frozen=True)
class DemoScene:
    """The demo geometry in world metres (Y-up, ground at y = 0), so the demo can place elements.

    The table is centred on ``table_center_xz``; the camera sits on the +Z side looking towards -Z, so
    world +X is the camera's right.
    """

    table_center_xz: tuple[float, float] = (0.0, 0.0)
    table_width_m: float = 1.2  # along X
    table_depth_m: float = 0.7  # along Z
    table_top_height_m: float = 0.85
    table_top_thickness_m: float = 0.05
    table_leg_m: float = 0.07
    box_center_xz: tuple[float, float] = (1.15, 0.8)
    box_size_m: tuple[float, float, float] = (0.5, 0.42, 0.45)  # width, height, depth
    box_yaw_deg: float = 25.0
    wall_z_m: float = -3.4  # the wall is the plane z = wall_z_m, facing +Z
    wall_height_m: float = 1.7  # above the camera, so nothing beyond the wall is ever seen
    camera_height_m: float = 1.6
    camera_radius_m: tuple[float, float] = (4.4, 3.8)  # horizontal distance to the target: start, end
    camera_arc_deg: tuple[float, float] = (-14.0, 10.0)  # azimuth about the target: start, end
    camera_target: tuple[float, float, float] = (0.1, 0.7, -0.25)
    focal_mm: float = 35.0
    haperture_mm: float = 36.0
    texture_seed: int = 7

    @property
    def table_min(self) -> tuple[float, float, float]:
        """Lower corner of the table's bounding box (world metres)."""
        cx, cz = self.table_center_xz
        return (cx - self.table_width_m / 2, 0.0, cz - self.table_depth_m / 2)

    @property
    def table_max(self) -> tuple[float, float, float]:
        """Upper corner of the table's bounding box (world metres); its y is the table-top height."""
        cx, cz = self.table_center_xz
        return (cx + self.table_width_m / 2, self.table_top_height_m, cz + self.table_depth_m / 2)

    @property
    def table_top_center(self) -> tuple[float, float, float]:
        return (self.table_center_xz[0], self.table_top_height_m, self.table_center_xz[1])

    @property
    def table_edge_point(self) -> tuple[float, float, float]:
        """A point on the table top 10 cm in from the edge on the camera's right (+X), mid-depth."""
        return (self.table_max[0] - 0.1, self.table_top_height_m, self.table_center_xz[1])

    @property
    def floor_point(self) -> tuple[float, float, float]:
        """A clear point on the ground left of the table, in view all shot long."""
        cx, cz = self.table_center_xz
        return (cx - 1.15, 0.0, cz + 0.1)

    @property
    def box_top_center(self) -> tuple[float, float, float]:
        return (self.box_center_xz[0], self.box_size_m[1], self.box_center_xz[1])

    def wall_distance_m(self, camera_position: np.ndarray) -> float:
        """Distance along world Z from a camera position to the back wall."""
        return float(camera_position[2] - self.wall_z_m)

    def boxes(self) -> tuple[_Box, ...]:
        """The box primitives: table top, four legs, the cardboard box."""
        cx, cz = self.table_center_xz
        top_t = self.table_top_thickness_m
        hw, hd, leg = self.table_width_m / 2, self.table_depth_m / 2, self.table_leg_m
        top = _Box((cx, self.table_top_height_m - top_t / 2, cz), (hw, top_t / 2, hd), 0.0, "wood")
        leg_h = self.table_top_height_m - top_t
        legs = tuple(_Box((cx + sx * (hw - leg), leg_h / 2, cz + sz * (hd - leg)), (leg / 2, leg_h / 2, leg / 2),
                          0.0, "wood") for sx in (-1, 1) for sz in (-1, 1))
        bw, bh, bd = self.box_size_m
        box = _Box((self.box_center_xz[0], bh / 2, self.box_center_xz[1]), (bw / 2, bh / 2, bd / 2),
                   self.box_yaw_deg, "cardboard")
        return (top, *legs, box)


def default_scene() -> DemoScene:
    """The demo scene used by ``gvfx demo``."""
    return DemoScene()


def _frame_list(frames: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(frames, (int, np.integer)):
        if frames < 1:
            raise InputError(f"the demo needs at least one frame, got {frames}")
        return tuple(range(DEFAULT_FIRST_FRAME, DEFAULT_FIRST_FRAME + int(frames)))
    out = tuple(int(f) for f in frames)
    if not out:
        raise InputError("the demo needs at least one frame")
    return out


def demo_camera(scene: DemoScene, width: int, height: int, frames: int | Sequence[int]) -> CameraTrack:
    """The demo's camera: a slow eased arc and dolly-in around the table, looking at it.

    ``frames`` is a frame count (numbered from ``DEFAULT_FIRST_FRAME``) or the frame numbers; the whole
    move spans the given range.
    """
    fr = _frame_list(frames)
    cam = Camera(scene.focal_mm, scene.haperture_mm, int(width), int(height))
    target = np.asarray(scene.camera_target, dtype=np.float64)
    mats = []
    span = max(fr[-1] - fr[0], 1)
    for f in fr:
        s = 0.5 - 0.5 * np.cos(np.pi * (f - fr[0]) / span)  # ease in/out, 0..1
        az = np.radians(scene.camera_arc_deg[0] + s * (scene.camera_arc_deg[1] - scene.camera_arc_deg[0]))
        r = scene.camera_radius_m[0] + s * (scene.camera_radius_m[1] - scene.camera_radius_m[0])
        eye = np.array([target[0] + r * np.sin(az), scene.camera_height_m + 0.06 * s, target[2] + r * np.cos(az)])
        mats.append(look_at(eye, target))
    return CameraTrack(cam, fr, np.stack(mats), metadata={"source": "gvfx demo scene"})


# ---------------------------------------------------------------- ray casting

def _mat(v: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``v @ m`` for (M, 3) x (3, k) written out elementwise: no BLAS threads spinning on 2 cores."""
    out = np.empty((len(v), m.shape[1]), dtype=np.result_type(v, m))
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    for j in range(m.shape[1]):
        out[:, j] = x * m[0, j] + y * m[1, j] + z * m[2, j]
    return out


def _box_hit(o: np.ndarray, d: np.ndarray, box: _Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slab test of rays ``o + t d`` (o (3,) or (M, 3), d (M, 3)): entry t (inf on a miss), exit t,
    and the local axis of the entry face."""
    rot = box.rot
    lo = _mat(np.atleast_2d(o - np.asarray(box.center)), rot)
    ld = _mat(d, rot)
    h = np.asarray(box.half)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / ld
        t1, t2 = (-h - lo) * inv, (h - lo) * inv
    tn, tf = np.minimum(t1, t2), np.maximum(t1, t2)
    axis = np.argmax(tn, axis=1)
    tnear = np.take_along_axis(tn, axis[:, None], axis=1)[:, 0]
    tfar = tf.min(axis=1)
    hit = (tnear <= tfar) & (tnear > 1e-6)
    return np.where(hit, tnear, np.inf), tfar, axis


def _screen_candidates(box: _Box, cam: Camera, w2c: np.ndarray) -> np.ndarray | None:
    """Flat pixel indices whose rays may hit ``box`` (its projected bounding rectangle); None = all."""
    pc = box.corners() @ w2c[:3, :3].T + w2c[:3, 3]
    uv, z = cam.project(pc)
    if np.any(z <= 1e-3):
        return None
    u0, v0 = np.floor(uv.min(axis=0)).astype(int) - 1
    u1, v1 = np.ceil(uv.max(axis=0)).astype(int) + 1
    u0, u1 = max(u0, 0), min(u1, cam.width)
    v0, v1 = max(v0, 0), min(v1, cam.height)
    if u0 >= u1 or v0 >= v1:
        return np.zeros(0, dtype=np.int64)
    return (np.arange(v0, v1)[:, None] * cam.width + np.arange(u0, u1)[None, :]).ravel()


def _in_shadow(p: np.ndarray, light: np.ndarray, boxes: Sequence[_Box]) -> np.ndarray:
    """(M,) bool: points ``p`` (M, 3) whose ray towards the light hits a box. The light is directional,
    so each box is culled by its footprint projected along the light first."""
    e1 = np.cross(light, [0.0, 0.0, 1.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(light, e1)
    basis = np.stack([e1, e2, light], axis=1)  # (3, 3)
    q = _mat(p, basis)
    out = np.zeros(len(p), dtype=bool)
    foot = [box.corners() @ basis for box in boxes]
    lo = np.min([c.min(axis=0) for c in foot], axis=0)
    hi = np.max([c.max(axis=0) for c in foot], axis=0)
    near = np.flatnonzero((q[:, 0] >= lo[0]) & (q[:, 0] <= hi[0]) & (q[:, 1] >= lo[1]) & (q[:, 1] <= hi[1])
                          & (q[:, 2] < hi[2]))
    qn = q[near]
    for box, c in zip(boxes, foot):
        sel = ((qn[:, 0] >= c[:, 0].min()) & (qn[:, 0] <= c[:, 0].max()) & (qn[:, 1] >= c[:, 1].min())
               & (qn[:, 1] <= c[:, 1].max()) & (qn[:, 2] < c[:, 2].max()))
        cand = near[sel & ~out[near]]
        if cand.size == 0:
            continue
        tnear, _, _ = _box_hit(p[cand], np.broadcast_to(light, (cand.size, 3)), box)
        out[cand] = np.isfinite(tnear)
    return out


def _contact_occlusion(p: np.ndarray, scene: DemoScene) -> np.ndarray:
    """Cheap ambient occlusion for ground points: darker under the table, next to the box and the wall."""
    ao = np.ones(len(p), dtype=np.float32)
    (x0, _, z0), (x1, _, z1) = scene.table_min, scene.table_max
    dx = np.maximum(np.maximum(x0 - p[:, 0], p[:, 0] - x1), 0.0)
    dz = np.maximum(np.maximum(z0 - p[:, 2], p[:, 2] - z1), 0.0)
    ao *= 1 - 0.5 * np.exp(-np.hypot(dx, dz) / 0.35)
    box = scene.boxes()[-1]
    local = _mat(p - np.asarray(box.center, dtype=p.dtype), box.rot.astype(p.dtype))
    bx = np.maximum(np.abs(local[:, 0]) - box.half[0], 0.0)
    bz = np.maximum(np.abs(local[:, 2]) - box.half[2], 0.0)
    ao *= 1 - 0.55 * np.exp(-np.hypot(bx, bz) / 0.12)
    ao *= 1 - 0.35 * np.exp(-np.maximum(p[:, 2] - scene.wall_z_m, 0.0) / 0.3)
    return ao


def render_plate_frame(scene: DemoScene, track: CameraTrack, frame: int, *,
                       grain: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Render one plate frame.

    Returns rgb (H, W, 3) float32 scene-linear ACEScg and z (H, W) float32 metric camera-space depth
    (``inf`` for sky). Grain, when on, is additive gaussian noise with per-channel sigma
    ``GRAIN_SIGMA``, seeded by the frame number (deterministic).
    """
    cam = track.camera_at(frame)
    c2w = track.transform(frame)
    w2c = np.linalg.inv(c2w)
    h_px, w_px = cam.height, cam.width
    o = c2w[:3, 3]
    # world ray per pixel, scaled so that its camera-space Z component is 1: the ray parameter is depth Z
    xs = (np.arange(w_px) + 0.5 - cam.cx) / cam.fx
    ys = -(np.arange(h_px) + 0.5 - cam.cy) / cam.fy
    r = c2w[:3, :3]
    d = (xs[None, :, None] * r[:, 0] + ys[:, None, None] * r[:, 1] - r[:, 2]).reshape(-1, 3)
    n_px = len(d)
    t = np.full(n_px, np.inf)
    obj = np.full(n_px, _SKY, dtype=np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        tg = -o[1] / d[:, 1]
        tw = (scene.wall_z_m - o[2]) / d[:, 2]
    ground = (d[:, 1] < 0) & (tg > 0)
    t[ground], obj[ground] = tg[ground], _GROUND
    wall_y = o[1] + tw * d[:, 1]
    wall = (d[:, 2] < 0) & (tw > 0) & (tw < t) & (wall_y >= 0) & (wall_y <= scene.wall_height_m)
    t[wall], obj[wall] = tw[wall], _WALL
    boxes = scene.boxes()
    face = np.zeros(n_px, dtype=np.int8)
    for k, box in enumerate(boxes):
        idx = _screen_candidates(box, cam, w2c)
        idx = np.arange(n_px) if idx is None else idx
        tb, _, axis = _box_hit(o, d[idx], box)
        closer = tb < t[idx]
        sel = idx[closer]
        t[sel], obj[sel], face[sel] = tb[closer], 2 + k, axis[closer]

    rgb = np.empty((n_px, 3), dtype=np.float32)
    sky = obj == _SKY
    dn = d[sky] / np.linalg.norm(d[sky], axis=1, keepdims=True)
    s = np.clip(dn[:, 1] * 2.5, 0.0, 1.0)[:, None] ** 0.6
    rgb[sky] = _SKY_HORIZON * (1 - s) + _SKY_ZENITH * s

    hit = np.flatnonzero(~sky)
    p = o + t[hit, None] * d[hit]
    normal = np.zeros_like(p)
    albedo = np.zeros((len(hit), 3), dtype=np.float32)
    ao = np.ones(len(hit), dtype=np.float32)
    oh = obj[hit]
    seed = scene.texture_seed
    pf = p.astype(np.float32)  # textures and occlusion do not need float64
    m = oh == _GROUND
    normal[m] = (0.0, 1.0, 0.0)
    albedo[m] = _paving(pf[m, 0], pf[m, 2], seed)
    ao[m] = _contact_occlusion(pf[m], scene)
    m = oh == _WALL
    normal[m] = (0.0, 0.0, 1.0)
    albedo[m] = _bricks(pf[m, 0], pf[m, 1], seed)
    ao[m] = 1 - 0.35 * np.exp(-pf[m, 1] / np.float32(0.3))
    for k, box in enumerate(boxes):
        m = oh == 2 + k
        if not m.any():
            continue
        local = _mat(p[m] - np.asarray(box.center), box.rot)
        ax = face[hit[m]].astype(np.int64)
        nl = np.zeros_like(local)
        nl[np.arange(len(ax)), ax] = np.sign(np.take_along_axis(local, ax[:, None], axis=1)[:, 0])
        normal[m] = _mat(nl, box.rot.T)
        # texture coordinates: the two local axes other than the face axis, the longer one first
        uv_axes = np.array([sorted((i for i in range(3) if i != a), key=lambda i: -box.half[i])
                            for a in range(3)])[ax]
        u = np.take_along_axis(local, uv_axes[:, :1], axis=1)[:, 0]
        v = np.take_along_axis(local, uv_axes[:, 1:], axis=1)[:, 0]
        tex = _wood if box.material == "wood" else _cardboard
        albedo[m] = tex(u + 17.0 * k, v, seed + k)  # each part its own piece of wood

    light = np.asarray(DEFAULT_LIGHT_DIR, dtype=np.float64)
    light /= np.linalg.norm(light)
    ndotl = np.clip(_mat(normal, light[:, None])[:, 0], 0.0, None)
    lit = np.flatnonzero(ndotl > 0)
    shadow = np.zeros(len(hit), dtype=bool)
    shadow[lit] = _in_shadow(p[lit] + 1e-4 * normal[lit], light, boxes)
    key = (ndotl * ~shadow).astype(np.float32)[:, None] * _KEY_RGB
    amb = (ao * (0.6 + 0.4 * normal[:, 1]).astype(np.float32))[:, None] * _AMBIENT_RGB
    rgb[hit] = albedo * (key + amb)

    rgb = rgb.reshape(h_px, w_px, 3)
    if grain:
        rng = np.random.default_rng([0x6F1D, int(frame) & 0xFFFFFFFF, 1 if frame < 0 else 0])
        rgb += rng.standard_normal((h_px, w_px, 3), dtype=np.float32) * np.asarray(GRAIN_SIGMA, np.float32)
    return rgb, t.reshape(h_px, w_px).astype(np.float32)


# ---------------------------------------------------------------- writing the plate

def write_demo_plate(out_dir: str | Path, width: int, height: int, frames: int | Sequence[int],
                     progress: Callable[[int, int, str], None] | None = None,
                     ) -> tuple[str, CameraTrack, DemoScene]:
    """Render the demo plate to ``out_dir/plate.####.exr`` (R, G, B, A, Z; ACEScg; half RGBA).

    Returns the frame pattern, the camera track and the scene. ``frames`` is a count (from 1001) or
    the frame numbers. ``progress(done, total, message)`` is called after each frame.
    """
    from gvfx.exr import write_layers  # OpenImageIO only when writing
    from gvfx.sequence import frame_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = default_scene()
    track = demo_camera(scene, width, height, frames)
    pattern = str(out / "plate.####.exr")
    total = len(track.frames)
    for i, f in enumerate(track.frames):
        rgb, z = render_plate_frame(scene, track, f)
        rgba = np.concatenate([rgb, np.ones((height, width, 1), np.float32)], axis=-1)
        meta = {
            "gvfx:source": "gvfx demo scene (procedural)",
            "gvfx:frame": int(f),
            "gvfx:focal_mm": float(scene.focal_mm),
            "gvfx:haperture_mm": float(scene.haperture_mm),
            "gvfx:cam_to_world": json.dumps(np.round(track.transform(f), 9).tolist()),
            "gvfx:grain_sigma": json.dumps(list(GRAIN_SIGMA)),
        }
        write_layers(frame_path(pattern, f), rgba=rgba, z=z, colorspace="ACEScg", metadata=meta, frame=f)
        if progress is not None:
            progress(i + 1, total, f"demo plate frame {f}")
    log.info("wrote %d demo plate frames to %s", total, pattern)
    return pattern, track, scene
