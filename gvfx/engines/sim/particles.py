"""Particle effects of the sim engine: sparks, debris, dust, rain and snow.

Simulation: a fixed pool of particles (see ``emitters.py``) integrated with sub-steps (gravity, drag
towards wind + smooth turbulence), resting on the scene's support (``contact.py``: the ground plane and
the up-facing surfaces of the plate depth) and bouncing off the steep surfaces of the frame's depth
(bounce, friction, sleep; rain drops die and spawn splash droplets). Each frame's cache
entry holds the state at the frame and a sub-frame track of positions to the next frame, so a frame
renders with motion blur from the cache alone.
"""

from __future__ import annotations

import logging

import numpy as np

from gvfx.engines.base import ElementFrame, ElementSpec, LightSamples, PlateContext, ProgressFn
from gvfx.engines.sim import splat
from gvfx.engines.sim.common import Anchor, SimCache, holdout_from_depth, light_direction, resolved_params, sim_frames
from gvfx.engines.sim.contact import SupportField, resolve_contact
from gvfx.engines.sim.emitters import EFFECTS, GRAVITY_MPS2, WEATHER, Particles, Turbulence, emit
from gvfx.errors import DepthError
from gvfx.surface import DepthSurface, Plane, fit_ground_plane, unproject_depth

log = logging.getLogger(__name__)

__all__ = ["EFFECTS", "simulate", "render", "scene_ground", "scene_support", "frame_surface"]

#: Sparks end their life at this temperature (a dull red).
SPARK_COLD_K = 900.0


def _plate_frame(ctx: PlateContext, frame: int) -> int:
    return int(min(max(frame, ctx.frames[0]), ctx.frames[-1]))


def scene_ground(ctx: PlateContext, frame: int, up: np.ndarray) -> Plane | None:
    """The plate's ground plane (world) from one frame's depth, or None when there is none to fit."""
    f = _plate_frame(ctx, frame)
    pts = unproject_depth(ctx.depth(f), ctx.camera.camera_at(f), ctx.camera.transform(f), stride=4)
    try:
        return fit_ground_plane(pts, up)
    except DepthError as exc:
        log.info("no ground plane in the plate depth (%s): off-screen particles do not collide", exc)
        return None


def scene_support(ctx: PlateContext, frames: list[int], up: np.ndarray, ground: Plane | None) -> SupportField:
    """What holds particles and inserts up over a shot: the ground plane plus the up-facing surfaces of
    the plate depth at the first, middle and last of ``frames`` (clamped to the plate)."""
    picks = sorted({_plate_frame(ctx, f) for f in (frames[0], frames[len(frames) // 2], frames[-1])})
    views = [(ctx.depth(f), ctx.camera.camera_at(f), ctx.camera.transform(f)) for f in picks]
    return SupportField.from_depth(views, up, ground)


def frame_surface(ctx: PlateContext, frame: int, ground: Plane | None) -> DepthSurface:
    """The depth surface of a frame (plate frames outside the range hold the nearest frame)."""
    f = _plate_frame(ctx, frame)
    return DepthSurface(ctx.depth(f), ctx.camera.camera_at(f), ctx.camera.transform(f), ground=ground)


def _alive(parts: Particles, t: float, fps: float) -> np.ndarray:
    age = (t - parts.birth) / fps
    return (parts.birth <= t + 1e-9) & (age < parts.life_s) & ~parts.dead


def _step(effect: str, p: dict, parts: Particles, act: np.ndarray, t: float, dt: float, fps: float, sub: int,
          surf: DepthSurface, support: SupportField, calm: np.ndarray, turb: Turbulence,
          gravity: np.ndarray) -> None:
    """Advance the active particles ``act`` (indices) by ``dt`` seconds and resolve collisions: the
    support under each particle (table tops, the ground also where the plate hides it) from
    ``support``, steep surfaces the plate shows (walls, box sides) from the frame's depth ``surf``."""
    if act.size == 0:
        return
    drag = float(p["drag"])
    x = parts.pos[act]
    wind = np.asarray(p["wind_mps"], np.float64) + turb(x, t / fps)
    v = (parts.vel[act] + dt * (gravity + drag * wind)) / (1.0 + drag * dt)
    x_new = x + v * dt
    parts.rot[act] += parts.spin_rps[act] * dt
    e, mu = float(p["restitution"]), float(p["friction"])
    c = resolve_contact(support, x_new, v, 0.5 * parts.size_m[act], dt, restitution=e, friction=mu,
                        rest_speed_mps=3.0 * GRAVITY_MPS2 * dt, footprint="point", prev_pos=x, calm=calm[act])
    x_new, v = c.pos, c.vel
    calm[act] = c.calm
    hit = c.touching.copy()
    normal = np.where(hit[:, None], c.normal, 0.0)
    normal[hit & ~np.isfinite(normal[:, 0])] = support.up
    resting = c.resting.copy()
    # Walls and box sides: the frame's depth surface, for steep surfaces only.
    q = surf.query(x_new)
    step = np.linalg.norm(x_new - x, axis=1)
    with np.errstate(invalid="ignore"):
        wall = (q.signed_distance < 0) & (-q.plane_distance <= surf.thickness(q.depth_z) + step)
        wall &= np.isfinite(q.signed_distance) & (np.abs(q.normal @ support.up) < 0.6) & ~hit
    if wall.any():
        w = np.flatnonzero(wall)
        n = q.normal[w]
        x_new[w] += (np.maximum(-q.plane_distance[w], 0.0) + 1e-4)[:, None] * n
        vn = np.minimum(np.einsum("ij,ij->i", v[w], n), 0.0)
        vv = v[w] - (1.0 + e) * vn[:, None] * n
        vt = vv - np.einsum("ij,ij->i", vv, n)[:, None] * n
        vt_len = np.linalg.norm(vt, axis=1)
        keep = np.where(vt_len > 0, np.maximum(0.0, 1.0 - mu * (1.0 + e) * np.abs(vn) / np.maximum(vt_len, 1e-12)), 0.0)
        v[w] = vv - vt * (1.0 - keep)[:, None]
        hit[w] = True
        normal[w] = n
    if hit.any():
        h = np.flatnonzero(hit)
        ids = act[h]
        if effect == "rain":
            parts.dead[ids] = True
            main = parts.kind[ids] == 0
            k = parts.splash_dirs.shape[1] if "splash_count" in p and int(p["splash_count"]) > 0 else 0
            if k and main.any():
                _splash(parts, ids[main], x_new[h][main], normal[h][main], t + 1.0 / sub, k)
        else:
            still = resting[h]
            parts.asleep[ids[still]] = True
            parts.spin_rps[ids] *= 0.8
            parts.spin_rps[ids[still]] = 0.0
    parts.pos[act] = x_new
    parts.vel[act] = v


def _splash(parts: Particles, drops: np.ndarray, where: np.ndarray, normal: np.ndarray, t: float, k: int) -> None:
    """Wake the k splash droplets of each drop that hit: short-lived, thrown up and out of the surface."""
    n_main = parts.splash_dirs.shape[0]
    slots = n_main + drops[:, None] * k + np.arange(k)[None]
    d = parts.splash_dirs[drops, :k]  # (M, k, 3)
    dn = np.einsum("mkj,mj->mk", d, normal)
    d = d - 2.0 * np.minimum(dn, 0.0)[..., None] * normal[:, None]  # into the hemisphere over the surface
    d = d + 1.5 * normal[:, None]
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    speed = 1.2 + 0.8 * np.abs(dn)
    parts.pos[slots] = where[:, None] + normal[:, None] * 0.003
    parts.vel[slots] = d * speed[..., None]
    parts.birth[slots] = t


def simulate(spec: ElementSpec, ctx: PlateContext, anchor: Anchor, cache: SimCache,
             progress: ProgressFn | None = None) -> None:
    """Simulate the shot from the element's start to the plate's last frame, one cache entry a frame."""
    p = resolved_params(EFFECTS[spec.effect], spec.params)
    frames = sim_frames(spec.start_frame, ctx.frames)
    fps = float(ctx.fps)
    rng = np.random.default_rng(spec.seed)
    up = np.asarray(anchor.up, np.float64) / np.linalg.norm(anchor.up)
    parts = emit(spec.effect, p, spec, ctx, anchor, frames[0], rng)
    turb = Turbulence(rng, float(p["turbulence_mps"]), float(p["turbulence_scale_m"]))
    sub = int(p["substeps"])
    dt = 1.0 / (fps * sub)
    gravity = -up * GRAVITY_MPS2
    ground = scene_ground(ctx, frames[0], up)
    support = scene_support(ctx, frames, up, ground)
    n = len(parts.birth)
    calm = np.zeros(n, np.int64)
    log.info("%s: %d particles over %d frames, %d sub-steps", spec.effect, n, len(frames), sub)
    for i, f in enumerate(frames):
        surf = frame_surface(ctx, f, ground)
        track = np.empty((sub, n, 3), np.float32)
        track_alive = np.empty((sub, n), bool)
        snap: dict[str, np.ndarray] = {}
        for k in range(sub):
            t = f + k / sub
            alive = _alive(parts, t, fps)
            track[k] = parts.pos
            track_alive[k] = alive
            if k == 0:
                snap = _snapshot(spec.effect, p, parts, alive, t, fps)
            _step(spec.effect, p, parts, np.flatnonzero(alive & ~parts.asleep), t, dt, fps, sub, surf, support, calm,
                  turb, gravity)
        cache.write(f, track=track, track_alive=track_alive, **snap)
        if progress is not None:
            progress(i + 1, len(frames), f"{spec.effect} frame {f}")


def _snapshot(effect: str, p: dict, parts: Particles, alive: np.ndarray, t: float, fps: float) -> dict:
    age = np.where(parts.birth <= t + 1e-9, (t - parts.birth) / fps, -1.0)
    out = dict(pos=parts.pos.astype(np.float32), vel=parts.vel.astype(np.float32), age_s=age.astype(np.float32),
               alive=alive.copy(), asleep=parts.asleep.copy(), life_s=parts.life_s.astype(np.float32),
               size_m=parts.size_m.astype(np.float32), kind=parts.kind.copy(), birth=parts.birth.copy(),
               rot=parts.rot.astype(np.float32), axis=parts.axis.astype(np.float32))
    if effect == "sparks":
        out["temperature_K"] = spark_temperature(age, parts.life_s, float(p["temperature_K"])).astype(np.float32)
    return out


def spark_temperature(age_s: np.ndarray, life_s: np.ndarray, hot_K: float) -> np.ndarray:
    """Temperature over a spark's life: exponential cooling from ``hot_K`` to SPARK_COLD_K at death."""
    a = np.clip(np.asarray(age_s) / np.asarray(life_s), 0.0, 1.0)
    return SPARK_COLD_K * (hot_K / SPARK_COLD_K) ** (1.0 - a)


def _empty(ctx: PlateContext) -> ElementFrame:
    h, w = ctx.height, ctx.width
    return ElementFrame(np.zeros((h, w, 4), np.float32), np.full((h, w), np.inf, np.float32),
                        np.zeros((h, w), np.float32))


def shutter_times(spec: ElementSpec, frame: int) -> np.ndarray:
    """Sub-frame sample times centred on ``frame`` over ``spec.shutter_frames``."""
    s = max(1, int(spec.motion_samples)) if spec.shutter_frames > 0 else 1
    if s == 1:
        return np.array([float(frame)])
    return frame + spec.shutter_frames * (np.linspace(0.0, 1.0, s) - 0.5)


def sample_track(entries: dict[int, dict], t: float, key: str = "track") -> tuple[np.ndarray, np.ndarray]:
    """Positions (N, 3) and alive flags (N,) at sub-frame time ``t`` from cached sub-frame tracks (linear
    between track samples; held at the ends of the cached range)."""
    keys = sorted(entries)
    e = int(np.floor(t))
    if e < keys[0]:
        d = entries[keys[0]]
        return d[key][0].astype(np.float64), d[key + "_alive"][0]
    if e > keys[-1]:
        d = entries[keys[-1]]
        return d[key][-1].astype(np.float64), d[key + "_alive"][-1]
    d = entries[e]
    kk = d[key].shape[0]
    x = (t - e) * kk
    k = min(int(np.floor(x)), kk - 1)
    w = x - k
    a, aa = d[key][k].astype(np.float64), d[key + "_alive"][k]
    if w <= 1e-9:
        return a, aa
    if k + 1 < kk:
        b, ba = d[key][k + 1], d[key + "_alive"][k + 1]
    elif e + 1 in entries:
        b, ba = entries[e + 1][key][0], entries[e + 1][key + "_alive"][0]
    else:
        return a, aa
    return a + (b.astype(np.float64) - a) * w, aa & ba


def read_entries(cache: SimCache, times: np.ndarray) -> dict[int, dict]:
    """The cache entries a set of sample times needs (each time's frame and the next one)."""
    need = range(int(np.floor(times.min())), int(np.floor(times.max())) + 2)
    return {f: cache.read(f) for f in need if cache.has(f)}


def render(spec: ElementSpec, ctx: PlateContext, anchor: Anchor, frame: int, cache: SimCache) -> ElementFrame:
    """Render one frame from the cache through the plate camera, motion-blurred over the shutter."""
    frames = sim_frames(spec.start_frame, ctx.frames)
    if frame < frames[0] or not cache.has(frame):
        return _empty(ctx)
    p = resolved_params(EFFECTS[spec.effect], spec.params)
    fps = float(ctx.fps)
    times = shutter_times(spec, frame)
    entries = read_entries(cache, times)
    base = entries[frame]
    samples = [sample_track(entries, float(t)) for t in times]
    valid = np.stack([s[1] for s in samples])
    keep = np.flatnonzero(valid.any(axis=0))
    pos = np.stack([s[0][keep] for s in samples])  # (S, M, 3)
    valid = valid[:, keep]
    uv = np.empty(pos.shape[:2] + (2,))
    z = np.empty(pos.shape[:2])
    for i, t in enumerate(times):
        uv[i], z[i] = ctx.camera.project_world(pos[i], float(t))
    attrs = {k: base[k][keep] for k in ("birth", "life_s", "size_m", "kind", "rot", "axis")}
    age = (times[:, None] - attrs["birth"][None]) / fps
    fx = np.array([ctx.camera.camera_at(float(t)).fx for t in times])[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        radius_px = attrs["size_m"][None] * 0.5 / z * fx
    rgb, alpha, radius_px, angle, aspect = _appearance(spec, p, ctx, times, age, attrs, radius_px)
    if spec.effect in WEATHER:
        if spec.effect == "rain":
            refr, key = _rain_light(ctx, frame, uv)
            glint = float(p["intensity"]) * RAIN_GAIN * key * rain_catch(spec.seed, len(base["kind"]))[keep]
            rgb = RAIN_TINT * (glint[None, :] + refr)[..., None]
        alpha, radius_px = _near_defocus(p, ctx, anchor, times, z, alpha, radius_px)
    sp = splat.streaks(uv, z, rgb, alpha, radius_px, valid, angle, aspect)
    emissive = spec.effect == "sparks"
    rgba, zbuf = splat.rasterize(sp, ctx.width, ctx.height, emissive=emissive)
    lights = None
    if emissive:
        lights = _spark_lights(pos[len(times) // 2], valid[len(times) // 2], rgb[len(times) // 2],
                               alpha[len(times) // 2], attrs["size_m"])
        if float(p["glow"]) > 0 and float(p["glow_size"]) > 0:
            rgba, zbuf = splat.glow(rgba, zbuf, float(p["glow"]), float(p["glow_size"]) * ctx.width)
    holdout = holdout_from_depth(zbuf, ctx.depth(_plate_frame(ctx, frame)))
    emission = rgba[..., :3].copy() if emissive else None
    return ElementFrame(rgba, zbuf, holdout, emission=emission, lights=lights)


def _near_defocus(p: dict, ctx: PlateContext, anchor: Anchor, times: np.ndarray, z: np.ndarray,
                  alpha: np.ndarray, radius_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thin-lens defocus of rain drops and flakes nearer than the anchor (the foreground layer): the
    footprint grows by the circle of confusion at ``near_fstop`` focused on the anchor, its peak alpha
    falls so the covered area (and the light) stays the same. Particles beyond the anchor stay sharp;
    those blurred wider than ``splat.MAX_RADIUS_PX`` are not drawn."""
    fstop = float(p.get("near_fstop", 0.0))
    if fstop <= 0:
        return alpha, radius_px
    cam = ctx.camera.camera_at(float(times[0]))
    focus = np.array([ctx.camera.project_world(anchor.point[None], float(t))[1][0] for t in times])
    f_m = cam.focal_mm * 1e-3
    focus = np.maximum(np.nan_to_num(focus, nan=10.0), f_m * 2)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        coc_mm = (f_m * f_m / (fstop * (focus - f_m))) * np.abs(z - focus) / z * 1e3
        coc_px = np.where((z < focus) & np.isfinite(z) & (z > 0), coc_mm / cam.haperture_mm * cam.width, 0.0)
    grown = np.sqrt(radius_px * radius_px + coc_px * coc_px)  # the footprint convolved with the lens disc
    alpha = alpha * (np.maximum(radius_px, 0.5) / np.maximum(grown, 0.5)) ** 2
    # wider than the largest footprint (a drop a few cm from the lens): a faint haze, left out
    alpha = np.where(grown > splat.MAX_RADIUS_PX, 0.0, alpha)
    return alpha, grown


def _rain_light(ctx: PlateContext, frame: int, uv: np.ndarray) -> tuple[np.ndarray, float]:
    """The plate refracted through each drop, (S, M) luminance (the blurred plate above it, never
    darker than the blurred plate behind it), and the plate's key level the glints scale with: the
    RAIN_KEY_PERCENTILE of the blurred plate's luminance (its sky or key-lit surfaces), at least its
    median. Without a plate image: a mid-grey guess (0.18) for both."""
    if ctx.image is None:
        return np.full(uv.shape[:2], 0.18), 0.18
    img = np.nan_to_num(np.asarray(ctx.image(_plate_frame(ctx, frame)), np.float32)[..., :3], nan=0.0,
                        posinf=0.0, neginf=0.0)
    lum = img @ np.array([0.2722, 0.6741, 0.0537], np.float32)
    small, k = _blurred(lum, 8)
    med = max(float(np.median(small)), 1e-4)
    key = max(float(np.percentile(small, RAIN_KEY_PERCENTILE)), med)
    h, w = lum.shape
    up = 0.05 * h
    behind = _bilinear(small, uv[..., 0] / k, uv[..., 1] / k)
    above = _bilinear(small, uv[..., 0] / k, (uv[..., 1] - up) / k)
    return np.maximum(behind, above), key


def rain_catch(seed: int, n: int) -> np.ndarray:
    """(n,) how much of the key light each drop of the pool catches (its orientation to the light and
    the camera): exponential with mean 1, fixed per drop for the shot (no flicker), so most streaks are
    faint and a few glint."""
    return np.random.default_rng([int(seed), 0x7261696E]).exponential(1.0, n)


def _blurred(img: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    from scipy import ndimage

    h, w = img.shape
    hh, ww = max(1, h // k), max(1, w // k)
    small = img[: hh * k, : ww * k].reshape(hh, k, ww, k).mean(axis=(1, 3))
    return ndimage.gaussian_filter(small, 1.5, mode="nearest"), k


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = img.shape
    x = np.clip(np.nan_to_num(x - 0.5), 0, w - 1)
    y = np.clip(np.nan_to_num(y - 0.5), 0, h - 1)
    x0, y0 = np.minimum(x.astype(int), w - 2 if w > 1 else 0), np.minimum(y.astype(int), h - 2 if h > 1 else 0)
    fx, fy = x - x0, y - y0
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    return ((img[y0, x0] * (1 - fx) + img[y0, x1] * fx) * (1 - fy)
            + (img[y1, x0] * (1 - fx) + img[y1, x1] * fx) * fy)


#: Sparks give at most this many point lights to the match stage (grouped on a grid of LIGHT_CELL_M).
MAX_SPARK_LIGHTS = 48
LIGHT_CELL_M = 0.1


def _spark_lights(pos: np.ndarray, valid: np.ndarray, rgb: np.ndarray, alpha: np.ndarray,
                  size_m: np.ndarray) -> LightSamples | None:
    """Point lights from the sparks at mid-shutter: each spark's intensity is its radiance times its
    emitting area (scene-linear units x m^2), summed per grid cell at the cell's power-weighted centre."""
    ok = valid & np.isfinite(pos).all(axis=1)
    if not ok.any():
        return None
    inten = rgb[ok] * (alpha[ok] * np.pi * (0.5 * size_m[ok]) ** 2)[:, None]
    x = pos[ok]
    cell = np.floor(x / LIGHT_CELL_M).astype(np.int64)
    _, inv = np.unique(cell, axis=0, return_inverse=True)
    inv = inv.ravel()
    k = int(inv.max()) + 1
    power = inten.sum(axis=1)
    wsum = np.maximum(np.bincount(inv, power, k), 1e-30)
    centre = np.stack([np.bincount(inv, power * x[:, c], k) for c in range(3)], axis=1) / wsum[:, None]
    colour = np.stack([np.bincount(inv, inten[:, c], k) for c in range(3)], axis=1)
    if k > MAX_SPARK_LIGHTS:  # keep the brightest cells, their total scaled to the whole
        top = np.argsort(-colour.sum(axis=1), kind="stable")[:MAX_SPARK_LIGHTS]
        scale = colour.sum() / max(float(colour[top].sum()), 1e-30)
        centre, colour = centre[top], colour[top] * scale
    return LightSamples(centre.astype(np.float32), colour.astype(np.float32))


def _appearance(spec: ElementSpec, p: dict, ctx: PlateContext, times: np.ndarray, age: np.ndarray, attrs: dict,
                radius_px: np.ndarray):
    """Per-sample colour (S, M, 3), alpha, radius and optional quad angle/aspect of each effect."""
    effect = spec.effect
    s, m = age.shape
    life = attrs["life_s"][None]
    a = np.clip(age / life, 0.0, 1.0)
    intensity = float(p["intensity"])
    angle = aspect = None
    if effect == "sparks":
        hot = float(p["temperature_K"])
        temp = spark_temperature(age, attrs["life_s"][None], hot)
        hue = _spark_colour(spec, temp, hot)
        rgb = hue * (intensity * (temp / hot) ** 3)[..., None]
        alpha = np.ones((s, m))
        radius_px = np.maximum(radius_px, 0.35)
    elif effect == "debris":
        rgb, angle, aspect = _debris_shading(spec, p, ctx, times, attrs)
        alpha = np.ones((s, m))
        radius_px = np.maximum(radius_px, 0.5)
    elif effect == "dust":
        light = light_direction(spec.params)
        lit = 0.55 + 0.45 * max(0.0, float(light[1]))
        rgb = np.broadcast_to(np.array([0.32, 0.29, 0.25]) * intensity * lit, (s, m, 3))
        alpha = 0.12 * np.sin(np.pi * a)
        radius_px = radius_px * (1.0 + 3.0 * a)
    elif effect == "rain":
        # Low alpha, bright: a blurred drop is seen by the light it catches (scaled by _rain_light).
        rgb = np.ones((s, m, 3))  # the light a drop catches is set by render() from the plate
        alpha = np.where(attrs["kind"][None] == 1, RAIN_ALPHA * 1.3, RAIN_ALPHA) * np.ones((s, 1))
        radius_px = np.maximum(radius_px, 0.5)
    else:  # snow: soft flakes, a gaussian wider than the flake
        rgb = np.broadcast_to(np.array([0.9, 0.92, 0.95]) * intensity, (s, m, 3))
        alpha = 0.55 * np.ones((s, m))
        radius_px = np.maximum(radius_px * 1.4, 0.9)
    return np.asarray(rgb, np.float64), alpha, radius_px, angle, aspect


#: Rain drops: peak opacity, hue of the caught light, and the glint of a drop of mean catch in multiples
#: of the plate's key level at ``intensity`` 1 (tuned on the demo plate at 960x540: docs/particles.md).
RAIN_ALPHA = 0.25
RAIN_TINT = np.array([0.96, 0.99, 1.04])
RAIN_GAIN = 6.0
RAIN_KEY_PERCENTILE = 99.0

_LOOK_CACHE: dict[str, object] = {}


def _spark_colour(spec: ElementSpec, temp: np.ndarray, hot_K: float) -> np.ndarray:
    """Blackbody hue of each temperature, or the emission ramp fitted to the spec's reference photo."""
    from gvfx.engines.sim import look

    if spec.reference is not None:
        key = str(spec.reference)
        if key not in _LOOK_CACHE:
            _LOOK_CACHE[key] = look.fit_look(look.load_reference_rgb(spec.reference))
        ramp = _LOOK_CACHE[key]
        col = ramp.emission((temp - SPARK_COLD_K) / (hot_K - SPARK_COLD_K))
        lum = np.maximum(look.luminance(col), 1e-6)
        return np.asarray(col, np.float64) / lum[..., None]
    grid = np.linspace(SPARK_COLD_K * 0.9, max(hot_K, SPARK_COLD_K) * 1.1, 256)
    lut = np.asarray(look.blackbody_rgb(grid), np.float64)  # a table: Planck per sample is slow
    t = np.asarray(temp, np.float64)
    return np.stack([np.interp(t, grid, lut[:, c]) for c in range(3)], axis=-1)


def _rodrigues(v: np.ndarray, axis: np.ndarray, ang: np.ndarray) -> np.ndarray:
    c, s = np.cos(ang)[..., None], np.sin(ang)[..., None]
    return v * c + np.cross(axis, v) * s + axis * np.einsum("...i,...i->...", axis, v)[..., None] * (1 - c)


def _debris_shading(spec: ElementSpec, p: dict, ctx: PlateContext, times: np.ndarray, attrs: dict):
    """Tumbling flat chunks: normal and screen quad from each chunk's rotation, lit by the key light."""
    axis = attrs["axis"].astype(np.float64)
    e1 = np.cross(axis, np.where(np.abs(axis[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 0, 1.0]]))
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(axis, e1)
    # Edges tilted off the spin axis so the chunk's outline changes as it tumbles.
    a_vec = (e1 + 0.6 * axis) / np.linalg.norm(e1 + 0.6 * axis, axis=1, keepdims=True)
    b_vec = e2
    rot = attrs["rot"].astype(np.float64)
    light = np.asarray(p.get("light_dir"), np.float64)
    light = light / np.linalg.norm(light)
    albedo = np.asarray(p["albedo"], np.float64) * float(p["intensity"])
    rgbs, angles, aspects = [], [], []
    for t in times:
        ea = _rodrigues(a_vec, axis, rot)
        eb = _rodrigues(b_vec, axis, rot)
        nrm = np.cross(ea, eb)
        shade = 0.25 + 0.75 * np.abs(nrm @ light)
        rgbs.append(albedo[None] * shade[:, None])
        r = ctx.camera.world_to_camera(float(t))[:3, :3]
        sa, sb = ea @ r.T, eb @ r.T
        angles.append(np.arctan2(-sa[:, 1], sa[:, 0]))
        la = np.hypot(sa[:, 0], sa[:, 1])
        lb = np.abs(sa[:, 0] * sb[:, 1] - sa[:, 1] * sb[:, 0]) / np.maximum(la, 1e-6)
        aspects.append(np.clip(lb / np.maximum(la, 1e-6), 0.15, 1.0))
    return np.stack(rgbs), np.stack(angles), np.stack(aspects)
