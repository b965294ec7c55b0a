"""Particle effects described as data (parameters and presets) and their emitters: where and when each
particle is born, with which velocity and attributes. Used by ``particles.py``.

Point effects (sparks, debris, dust) emit at the anchor: emitter radius 0.15 * size_m, speeds scaled
by size_m (presets are tuned for size_m = 1). Weather effects (rain, snow) fill a volume above the
visible scene: size_m scales that area about the anchor (1 = what the first frame's depth sees, up to
40 m away) and
``count`` is the number of particles in the air at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gvfx.engines.base import EffectInfo, Param
from gvfx.engines.sim.common import DEFAULT_LIGHT_DIR, Anchor
from gvfx.surface import unproject_depth

GRAVITY_MPS2 = 9.81
WEATHER = ("rain", "snow")
MAX_WEATHER_DISTANCE_M = 40.0
#: The near layer of rain and snow falls in a box from NEAR_MIN_M to NEAR_BOX_M in front of the camera.
NEAR_BOX_M = 3.0
NEAR_MIN_M = 0.5

_PRESETS: dict[str, dict] = {
    "sparks": dict(count=3000, emit_frames=24, speed_mps=4.0, spread_deg=40.0, lifetime_s=1.4,
                   particle_size_m=0.0025, drag=0.25, turbulence_mps=0.2, restitution=0.4, friction=0.3,
                   intensity=150.0, substeps=4),
    "debris": dict(count=200, emit_frames=0, speed_mps=4.0, spread_deg=50.0, lifetime_s=30.0,
                   particle_size_m=0.04, drag=0.05, turbulence_mps=0.0, restitution=0.3, friction=0.6,
                   intensity=1.0, substeps=4),
    "dust": dict(count=1500, emit_frames=12, speed_mps=1.5, spread_deg=80.0, lifetime_s=4.0,
                 particle_size_m=0.08, drag=3.0, turbulence_mps=0.4, restitution=0.0, friction=0.8,
                 intensity=0.6, substeps=2),
    "rain": dict(count=6000, emit_frames=0, speed_mps=0.0, spread_deg=3.0, lifetime_s=4.0,
                 particle_size_m=0.0015, drag=1.1, turbulence_mps=0.2, restitution=0.0, friction=1.0,
                 intensity=1.0, substeps=4),
    "snow": dict(count=1500, emit_frames=0, speed_mps=0.0, spread_deg=10.0, lifetime_s=600.0,
                 particle_size_m=0.012, drag=9.0, turbulence_mps=0.5, restitution=0.0, friction=1.0,
                 intensity=0.9, substeps=2),
}

_HELP = {
    "sparks": "hot sparks (grinder, fire): bright motion-blurred streaks that cool and bounce",
    "debris": "tumbling chunks that bounce and settle, lit by the key light",
    "dust": "a soft, faint, slow dust puff dominated by air drag",
    "rain": "fast thin rain streaks over the visible scene, splashing where they hit",
    "snow": "soft flakes drifting with turbulence and settling on surfaces",
}


_INTENSITY_HELP = {
    "sparks": "emitted radiance at birth (scene-linear; HDR, cools with temperature)",
    "rain": "light a drop catches, in multiples of the plate's median brightness (its own look)",
    "snow": "flake brightness (albedo scale)",
}


def _params(effect: str) -> tuple[Param, ...]:
    d = _PRESETS[effect]
    ps = [
        Param("count", int, d["count"], "particles emitted (rain/snow: in the air at once)", 1, 200000),
        Param("emit_frames", int, d["emit_frames"], "frames of continuous emission (0 = one burst)", 0, 10000),
        Param("speed_mps", float, d["speed_mps"], "launch speed in m/s (scaled by size_m)", 0.0, 100.0),
        Param("spread_deg", float, d["spread_deg"], "launch cone half-angle around the direction", 0.0, 180.0),
        Param("direction", tuple, (0.0, 0.0, 0.0), "launch direction (world); (0,0,0) = surface normal"),
        Param("lifetime_s", float, d["lifetime_s"], "mean particle lifetime in seconds", 0.01, 10000.0),
        Param("particle_size_m", float, d["particle_size_m"], "particle size in metres", 1e-4, 10.0),
        Param("drag", float, d["drag"], "air drag rate per second (terminal speed = 9.81 / drag)", 0.0, 100.0),
        Param("wind_mps", tuple, (0.0, 0.0, 0.0), "wind velocity in world m/s"),
        Param("turbulence_mps", float, d["turbulence_mps"], "smooth turbulent wind speed in m/s", 0.0, 50.0),
        Param("turbulence_scale_m", float, 1.0, "size of turbulent eddies in metres", 0.01, 100.0),
        Param("restitution", float, d["restitution"], "bounciness on the scene surface (0..1)", 0.0, 1.0),
        Param("friction", float, d["friction"], "sliding friction on the scene surface", 0.0, 1.0),
        Param("intensity", float, d["intensity"], _INTENSITY_HELP.get(effect, "brightness (albedo scale)"), 0.0, 1e4),
        Param("substeps", int, d["substeps"], "simulation sub-steps per frame", 1, 16),
    ]
    if effect == "sparks":
        ps.append(Param("temperature_K", float, 4500.0, "temperature at birth (they cool to ~900 K)", 1000.0, 10000.0))
        ps.append(Param("glow", float, 0.08, "glow around the sparks: added light, fraction of their emission", 0.0, 10.0))
        ps.append(Param("glow_size", float, 0.006, "glow radius, fraction of the frame width", 0.0, 0.2))
    if effect in WEATHER:
        ps.append(Param("near_fraction", float, 0.15, "share of the count falling in a box within "
                        f"{NEAR_BOX_M:g} m of the camera (defocused foreground)", 0.0, 1.0))
        ps.append(Param("near_fstop", float, 2.0, "f-stop that defocuses the near layer (0 = sharp)", 0.0, 64.0))
        ps.append(Param("size_spread", float, 0.35 if effect == "rain" else 0.5,
                        "log-normal spread (sigma of ln size) of the particle sizes", 0.0, 2.0))
    if effect == "rain":
        ps.append(Param("splash_count", int, 3, "splash droplets per drop hitting a surface", 0, 8))
    if effect == "debris":
        ps.append(Param("albedo", tuple, (0.16, 0.13, 0.10), "chunk colour (ACEScg albedo)"))
        ps.append(Param("light_dir", tuple, DEFAULT_LIGHT_DIR, "world direction towards the key light"))
    return tuple(ps)


EFFECTS: dict[str, EffectInfo] = {name: EffectInfo(name, _HELP[name], _params(name)) for name in _PRESETS}


@dataclass
class Particles:
    """The particle pool: fixed size and order for the whole shot, so index i is the same particle in
    every cache entry. Times are in frames, ages and lifetimes in seconds."""

    pos: np.ndarray  # (N, 3) world m
    vel: np.ndarray  # (N, 3) m/s
    birth: np.ndarray  # (N,) frame (inf = not yet scheduled, e.g. an unused splash slot)
    life_s: np.ndarray  # (N,)
    size_m: np.ndarray  # (N,)
    kind: np.ndarray  # (N,) int8: 0 = main, 1 = splash
    asleep: np.ndarray  # (N,) bool
    dead: np.ndarray  # (N,) bool (killed by a hit)
    axis: np.ndarray  # (N, 3) tumble axis
    spin_rps: np.ndarray  # (N,) tumble rate, radians per second
    rot: np.ndarray  # (N,) tumble angle, radians
    splash_dirs: np.ndarray  # (N_main, k, 3) random unit vectors for splash droplets


def _basis(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = np.cross(n, a)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(n, e1)


def cone(rng: np.random.Generator, direction: np.ndarray, spread_deg: float, n: int) -> np.ndarray:
    """(n, 3) unit vectors uniform on the spherical cap of half-angle ``spread_deg`` around ``direction``."""
    d = direction / np.linalg.norm(direction)
    e1, e2 = _basis(d)
    cos_max = np.cos(np.radians(spread_deg))
    c = 1.0 - rng.random(n) * (1.0 - cos_max)
    s = np.sqrt(np.maximum(0.0, 1.0 - c * c))
    phi = rng.random(n) * 2 * np.pi
    return c[:, None] * d + s[:, None] * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)


def unit_vectors(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    v = rng.normal(size=shape + (3,))
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


class Turbulence:
    """A smooth, divergence-free, seeded wind field: a sum of sinusoidal shear modes (amplitude
    perpendicular to the wave vector), drifting in time."""

    def __init__(self, rng: np.random.Generator, speed_mps: float, scale_m: float, modes: int = 8) -> None:
        self.k = unit_vectors(rng, (modes,)) * (2 * np.pi / scale_m) * rng.uniform(0.6, 1.6, (modes, 1))
        a = unit_vectors(rng, (modes,))
        a -= np.einsum("ij,ij->i", a, self.k)[:, None] * self.k / np.einsum("ij,ij->i", self.k, self.k)[:, None]
        self.a = a / np.linalg.norm(a, axis=1, keepdims=True) * (speed_mps * np.sqrt(2.0 / modes))
        self.phase = rng.uniform(0, 2 * np.pi, modes)
        self.omega = rng.uniform(0.3, 1.0, modes) * 2 * np.pi / max(scale_m, 1e-3) * 0.5

    def __call__(self, pos: np.ndarray, t_s: float) -> np.ndarray:
        if not np.any(self.a):
            return np.zeros_like(pos)
        arg = pos @ self.k.T + self.phase + self.omega * t_s
        return np.sin(arg) @ self.a


def _weather_volume(ctx, frame: int, anchor: Anchor, size_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                            float, float]:
    """The spawn box above the visible scene: horizontal centre (3,), the two horizontal half-axes (3,)
    (unit axes times half extents), the top height and the lowest visible height (along up)."""
    up = anchor.up / np.linalg.norm(anchor.up)
    cam = ctx.camera
    pts = unproject_depth(ctx.depth(frame), cam.camera_at(frame), cam.transform(frame), stride=4)
    eye = cam.position(frame)
    if len(pts):
        pts = pts[np.linalg.norm(pts - eye, axis=1) < MAX_WEATHER_DISTANCE_M]
    if len(pts) < 4:  # all sky: a box in front of the camera
        fwd = -cam.transform(frame)[:3, 2]
        pts = eye + fwd * np.linspace(2, 20, 8)[:, None] - up * 1.5
    pts = np.concatenate([pts, eye[None]])
    e1, e2 = _basis(up)
    h = pts @ up
    a1, a2 = pts @ e1, pts @ e2
    lo1, hi1 = np.percentile(a1, [1, 99])
    lo2, hi2 = np.percentile(a2, [1, 99])
    # Scale the visible extent by size_m about the anchor (size_m < 1 concentrates around the anchor).
    p1, p2 = float(anchor.point @ e1), float(anchor.point @ e2)
    lo1, hi1 = p1 + (lo1 - p1) * size_m, p1 + (hi1 - p1) * size_m
    lo2, hi2 = p2 + (lo2 - p2) * size_m, p2 + (hi2 - p2) * size_m
    c1, c2 = (lo1 + hi1) / 2, (lo2 + hi2) / 2
    half1, half2 = max((hi1 - lo1) / 2, 0.5), max((hi2 - lo2) / 2, 0.5)
    centre = c1 * e1 + c2 * e2
    top = max(float(np.percentile(h, 99)), float(eye @ up)) + 2.0
    return centre, e1 * half1, e2 * half2, top, float(np.percentile(h, 1))


def _near_layer(ctx, start: int, p: dict, up: np.ndarray, v_term: float, drift: np.ndarray, count: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Births, velocities and positions of the near layer: ``near_fraction * count`` particles in the air
    at once in the camera's view between NEAR_MIN_M and NEAR_BOX_M, each born above the top of the view
    at the camera position of its birth frame (so a moving camera keeps its foreground rain)."""
    fps = float(ctx.fps)
    in_air = max(1, int(round(count * float(p["near_fraction"]))))
    cam = ctx.camera.camera_at(start)
    tan_v = 0.5 * cam.vaperture / cam.focal_mm
    tan_h = 0.5 * cam.haperture_mm / cam.focal_mm
    drop_m = 2.0 * NEAR_BOX_M * tan_v + 1.0  # the height it falls through the view, plus a margin
    fall_s = drop_m / max(v_term, 1e-3)
    span_s = (ctx.frames[-1] - start + 1) / fps + fall_s
    m = max(1, int(round(in_air * span_s / fall_s)))
    birth = start - fall_s * fps + np.sort(rng.random(m)) * span_s * fps
    depth = np.sqrt(rng.uniform(NEAR_MIN_M ** 2, NEAR_BOX_M ** 2, m))  # uniform in the view's volume
    side = rng.uniform(-1.0, 1.0, m) * (tan_h + 0.1) * depth
    pos = np.empty((m, 3))
    for f in np.unique(np.clip(np.floor(birth), ctx.frames[0], ctx.frames[-1])).astype(int):
        sel = np.clip(np.floor(birth), ctx.frames[0], ctx.frames[-1]).astype(int) == f
        c2w = ctx.camera.transform(f)
        eye, fwd = c2w[:3, 3], -c2w[:3, 2]
        fwd_h = fwd - up * (fwd @ up)
        fwd_h /= max(np.linalg.norm(fwd_h), 1e-9)
        right_h = np.cross(fwd_h, up)
        base = eye + depth[sel, None] * fwd_h + side[sel, None] * right_h
        pos[sel] = base + up * (depth[sel] * tan_v + 0.5 + rng.uniform(0.0, 0.5, int(sel.sum())))[:, None]
    vel = np.broadcast_to(drift, (m, 3)) + rng.normal(0, 0.05 * v_term, (m, 3))
    return birth, vel, pos


def emit(effect: str, p: dict, spec, ctx, anchor: Anchor, start: int, rng: np.random.Generator) -> Particles:
    """The whole pool for the shot, with birth frames, launch positions and velocities."""
    fps = float(ctx.fps)
    count = int(p["count"])
    up = anchor.up / np.linalg.norm(anchor.up)
    size = float(anchor.size_m)
    splash_k = int(p.get("splash_count", 0)) if effect == "rain" else 0
    if effect in WEATHER:
        centre, ax1, ax2, top, low = _weather_volume(ctx, start, anchor, size)
        v_term = GRAVITY_MPS2 / max(float(p["drag"]), 1e-3)
        fall_s = max(top - low, 1.0) / v_term
        span_s = (ctx.frames[-1] - start + 1) / fps + fall_s
        n = max(1, int(round(count * span_s / fall_s)))
        birth = start - fall_s * fps + np.sort(rng.random(n)) * span_s * fps
        wind = np.asarray(p["wind_mps"], np.float64)
        drift = wind - up * v_term
        vel = np.broadcast_to(drift, (n, 3)) + rng.normal(0, 0.05 * v_term, (n, 3))
        pos = (centre + up * top + rng.uniform(-1, 1, (n, 1)) * ax1 + rng.uniform(-1, 1, (n, 1)) * ax2
               - wind * 0.5 * fall_s)  # upwind so the scene is covered
        pos = pos + up * rng.uniform(0, 0.5, (n, 1))
        near = int(round(n * float(p.get("near_fraction", 0.0))))
        if near:
            keep = rng.permutation(n)[: n - near]  # the far layer keeps count * (1 - near_fraction) in the air
            keep.sort()
            birth, vel, pos = birth[keep], vel[keep], pos[keep]
            nb, nv, npos = _near_layer(ctx, start, p, up, v_term, drift, count, rng)
            birth, vel, pos = np.concatenate([birth, nb]), np.concatenate([vel, nv]), np.concatenate([pos, npos])
            n = len(birth)
        before = birth < start  # pre-born: advance analytically to the start frame
        pos[before] += vel[before] * ((start - birth[before]) / fps)[:, None]
        birth[before] = start
        birth[before & (pos @ up < low)] = np.inf  # it would have landed before the start: never born
        life = np.full(n, float(p["lifetime_s"]))
    else:
        n = count
        emit_frames = int(p["emit_frames"])
        birth = start + (np.sort(rng.random(n)) * emit_frames if emit_frames > 0 else np.zeros(n))
        direction = np.asarray(p["direction"], np.float64)
        if np.linalg.norm(direction) < 1e-9:
            direction = anchor.normal
        dirs = cone(rng, direction, float(p["spread_deg"]), n)
        speed = float(p["speed_mps"]) * size * rng.uniform(0.5, 1.0, n)
        vel = dirs * speed[:, None]
        offset = unit_vectors(rng, (n,)) * (0.15 * size * rng.random(n) ** (1 / 3))[:, None]
        into = np.minimum(offset @ anchor.normal, 0.0)
        offset -= 2.0 * into[:, None] * anchor.normal  # a half-ball on the surface's open side
        pos = np.asarray(anchor.point, np.float64) + anchor.normal * 0.01 * size + offset
        life = float(p["lifetime_s"]) * rng.uniform(0.6, 1.4, n)
    if effect in WEATHER:  # drop and flake sizes are log-normal (median particle_size_m)
        spread = float(p.get("size_spread", 0.0))
        sizes = float(p["particle_size_m"]) * np.exp(np.clip(rng.normal(0.0, 1.0, n), -2.5, 2.5) * spread)
    else:
        sizes = float(p["particle_size_m"]) * rng.uniform(0.6, 1.4, n)
    kind = np.zeros(n, np.int8)
    axis = unit_vectors(rng, (n,))
    spin = rng.uniform(2.0, 12.0, n) * (1 if effect == "debris" else 0)
    splash_dirs = unit_vectors(rng, (n, max(splash_k, 1)))
    if splash_k:
        m = n * splash_k
        pos = np.concatenate([pos, np.zeros((m, 3))])
        vel = np.concatenate([vel, np.zeros((m, 3))])
        birth = np.concatenate([birth, np.full(m, np.inf)])
        life = np.concatenate([life, rng.uniform(0.12, 0.3, m)])
        sizes = np.concatenate([sizes, np.full(m, float(p["particle_size_m"]) * 0.8)])
        kind = np.concatenate([kind, np.ones(m, np.int8)])
        axis = np.concatenate([axis, np.zeros((m, 3))])
        spin = np.concatenate([spin, np.zeros(m)])
    total = len(birth)
    return Particles(pos.astype(np.float64), vel.astype(np.float64), birth.astype(np.float64), life, sizes, kind,
                     np.zeros(total, bool), np.zeros(total, bool), axis, spin, np.zeros(total), splash_dirs)
