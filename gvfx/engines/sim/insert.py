"""The ``insert`` effect: a rigid object from ONE reference image, simulated as a sphere or box collider
on the scene's support (``contact.py``: gravity, bounce, no-slip rolling, rest) and rendered either as a 3D proxy
(``proxy: lathe | inflate | mesh | auto``, :mod:`gvfx.engines.sim.insert3d`: the same object from every
angle, lit and shadowed by the plate) or, with ``proxy: card``, as the cut-out facing the camera,
turning in screen as it rolls. ``size_m`` is the object's height (its matte's bounding box).

``proxy: sphere | box`` (the collider, before the 3D proxies existed) is read as ``collider`` with a
deprecation warning, and renders a card as it did.

Reference: an RGBA image (alpha used as is: OIIO reads PNG alpha as premultiplied), or an RGB image on
a plain background, keyed automatically: the background colour is the median of a 2-pixel border, the
matte a soft ramp of the (square-root encoded) colour distance to it, and the background is
subtracted out of the edge pixels (premultiplied = image - (1 - alpha) * background).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from gvfx.engines.base import EffectInfo, ElementFrame, ElementSpec, Param, PlateContext, ProgressFn
from gvfx.engines.sim.common import Anchor, SimCache, holdout_from_depth, resolved_params, sim_frames
from gvfx.engines.sim.contact import resolve_contact
from gvfx.engines.sim.particles import read_entries, scene_ground, scene_support, shutter_times
from gvfx.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["EFFECTS", "validate", "simulate", "render", "load_cutout", "proxy_and_collider", "metadata"]

GRAVITY_MPS2 = 9.81
PROXIES = ("auto", "lathe", "inflate", "card", "mesh")
KEY_LO, KEY_HI = 0.06, 0.16  # colour distance (sqrt-encoded) ramp of the automatic matte

EFFECTS: dict[str, EffectInfo] = {
    "insert": EffectInfo("insert", "an object from one reference image (size_m = its height) as a 3D proxy "
                         "that stands, falls, bounces or rolls on the plate's surface", (
        Param("proxy", str, "auto", "3D shape: lathe (turned, e.g. a can), inflate (rounded), card (flat cut-out), "
              "mesh (reference is an OBJ/GLB/USD file), auto (lathe if the matte is symmetric, else inflate)",
              choices=PROXIES + ("sphere", "box")),
        Param("collider", str, "auto", "collision shape of size_m: sphere (rolls) or box (slides); auto: box for "
              "3D proxies, sphere for a card", choices=("auto", "sphere", "box")),
        Param("upright", str, "normal", "stand along the surface normal or the world up", choices=("normal", "up")),
        Param("facing_deg", float, 0.0, "turn about the up axis from facing the camera at the start frame"),
        Param("width_m", float, 0.0, "object width (0 = from the reference's aspect)", 0.0),
        Param("depth_m", float, 0.0, "object depth (0 = as wide as the width for lathe)", 0.0),
        Param("thickness", float, 0.5, "inflate: depth at the thickest point, fraction of the width", 0.02, 4.0),
        Param("delight", float, 0.5, "how much of the reference's own shading to remove before relighting",
              0.0, 1.0),
        Param("aa_samples", int, 4, "minimum render samples per pixel (anti-aliasing, shared with motion blur)",
              1, 9),
        Param("light_dir", tuple, None, "world direction towards the key light (default: the match stage's)"),
        Param("plate_mean_rgb", tuple, None, "the plate's mean colour, for the light level and ambient (default: "
              "given by gvfx render; none = neutral)"),
        Param("velocity_mps", tuple, (0.0, 0.0, 0.0), "initial velocity, world m/s"),
        Param("restitution", float, 0.35, "bounciness (0..1)", 0.0, 1.0),
        Param("friction", float, 0.3, "rolling (sphere) or sliding (box) resistance", 0.0, 1.0),
        Param("substeps", int, 8, "simulation sub-steps per frame", 1, 32),
    )),
}


def simulate(spec: ElementSpec, ctx: PlateContext, anchor: Anchor, cache: SimCache,
             progress: ProgressFn | None = None) -> None:
    """Simulate the proxy from the start frame to the plate's end, one cache entry per frame."""
    p = resolved_params(EFFECTS["insert"], spec.params)
    validate(spec)  # fail before any work
    frames = sim_frames(spec.start_frame, ctx.frames)
    fps = float(ctx.fps)
    up = np.asarray(anchor.up, np.float64) / np.linalg.norm(anchor.up)
    radius = 0.5 * float(anchor.size_m)
    rolling = proxy_and_collider(spec)[1] == "sphere"
    pos = np.asarray(anchor.point, np.float64) + np.asarray(anchor.normal, np.float64) * (radius + 1e-4)
    vel = np.asarray(p["velocity_mps"], np.float64).copy()
    omega = np.zeros(3)
    rot = np.eye(3)  # the body's world rotation (rolling), for the 3D proxies
    spin = 0.0
    asleep = False
    sub = int(p["substeps"])
    dt = 1.0 / (fps * sub)
    e, mu = float(p["restitution"]), float(p["friction"])
    ground = scene_ground(ctx, frames[0], up)
    support = scene_support(ctx, frames, up, ground)
    calm = np.zeros(1, np.int64)
    for i, f in enumerate(frames):
        view_axis = ctx.camera.transform(float(f))[:3, 2]  # camera +Z (towards the viewer), world
        track = np.empty((sub, 1, 3), np.float32)
        spins = np.empty(sub, np.float64)
        rots = np.empty((sub, 3, 3), np.float64)
        snap = {}
        for k in range(sub):
            track[k, 0] = pos
            spins[k] = spin
            rots[k] = rot
            if k == 0:
                snap = dict(pos=pos.astype(np.float32), vel=vel.astype(np.float32), omega=omega.astype(np.float32),
                            spin_rad=np.float64(spin), asleep=np.bool_(asleep), radius_m=np.float64(radius))
            if asleep:
                continue
            vel = vel - up * GRAVITY_MPS2 * dt
            c = resolve_contact(support, pos + vel * dt, vel, radius, dt, restitution=e, friction=mu,
                                footprint="sphere" if rolling else "box", rest_speed_mps=0.02, prev_pos=pos,
                                calm=calm)
            new, vel, calm = c.pos[0], c.vel[0], c.calm
            if c.touching[0]:
                n = c.normal[0] if np.all(np.isfinite(c.normal[0])) else up
                vt = vel - float(vel @ n) * n
                omega = np.cross(n, vt) / radius if rolling else np.zeros(3)
            if c.resting[0]:
                omega[:] = 0.0
                asleep = True
            pos = new
            spin += float(omega @ view_axis) * dt
            rot = _rotvec(omega * dt) @ rot
        cache.write(f, track=track, track_alive=np.ones((sub, 1), bool), spin_track=spins, rot_track=rots, **snap)
        if progress is not None:
            progress(i + 1, len(frames), f"insert frame {f}")


def _rotvec(v: np.ndarray) -> np.ndarray:
    """(3, 3) rotation by the rotation vector ``v`` (axis times angle, radians): Rodrigues."""
    a = float(np.linalg.norm(v))
    if a < 1e-12:
        return np.eye(3)
    k = v / a
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * kx @ kx


def sample_rotation(entries: dict[int, dict], t: float) -> np.ndarray:
    """(3, 3) body rotation at sub-frame ``t`` from the cached ``rot_track`` (nearest earlier sub-step,
    then turned on by the remaining fraction towards the next; identity for caches without it)."""
    keys = sorted(entries)
    e = min(max(int(np.floor(t)), keys[0]), keys[-1])
    d = entries[e]
    if "rot_track" not in d:
        return np.eye(3)
    rt = d["rot_track"]
    kk = rt.shape[0]
    x = min(max((t - e) * kk, 0.0), kk)
    k = min(int(np.floor(x)), kk - 1)
    a = rt[k].astype(np.float64)
    if k + 1 < kk:
        b = rt[k + 1]
    elif e + 1 in entries and "rot_track" in entries[e + 1]:
        b = entries[e + 1]["rot_track"][0]
    else:
        return a
    u, _, vt = np.linalg.svd(a + (b.astype(np.float64) - a) * (x - k))  # blend, back onto rotations
    return u @ vt


def validate(spec: ElementSpec, ctx: PlateContext | None = None) -> None:
    """A clear error before any work: no reference, no usable matte, a mesh that does not load."""
    _reference_path(spec)
    kind, _ = proxy_and_collider(spec)
    if kind != "card":
        _built(spec, kind)


def proxy_and_collider(spec: ElementSpec) -> tuple[str, str]:
    """The element's proxy kind and collider, with ``proxy: sphere|box`` read as the old collider."""
    p = resolved_params(EFFECTS["insert"], spec.params)
    kind, collider = p["proxy"], p["collider"]
    if kind in ("sphere", "box"):
        log.warning("element %s: params.proxy: %s is the collision shape, now `collider: %s` (deprecated "
                    "alias; it renders a card; set proxy to auto/lathe/inflate/mesh for a 3D object)",
                    spec.name, kind, kind)
        return "card", kind if collider == "auto" else collider
    if collider == "auto":
        collider = "sphere" if kind == "card" else "box"
    return kind, collider


def _built(spec: ElementSpec, kind: str):
    from gvfx.engines.sim.insert3d.element import proxy_for

    return proxy_for(_reference_path(spec), kind, resolved_params(EFFECTS["insert"], spec.params), load_cutout)


def metadata(spec: ElementSpec) -> dict[str, str]:
    """What the EXRs say of the insert: the proxy kind chosen (``auto`` resolved) and its build key."""
    kind, collider = proxy_and_collider(spec)
    out = {"gvfx:insert:collider": collider}
    if kind == "card":
        out["gvfx:insert:proxy"] = "card"
    else:
        b = _built(spec, kind)
        out.update({"gvfx:insert:proxy": b.kind, "gvfx:insert:proxy_key": b.key})
        if b.symmetry is not None:
            out["gvfx:insert:symmetry"] = f"{b.symmetry:.3f}"
    return out


def _card_cutout(path: Path) -> np.ndarray:
    """The reference cropped to its object (the matte's bounding box): the card's height is size_m."""
    from gvfx.engines.sim.insert3d.matte import OPAQUE

    cut = load_cutout(path)
    solid = cut[..., 3] > OPAQUE
    if not solid.any():
        from gvfx.engines.sim.insert3d.matte import object_matte

        object_matte(cut, path)  # raises the one clear error
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    return cut[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _reference_path(spec: ElementSpec) -> Path:
    if spec.reference is None:
        raise InputError("the insert effect needs a reference image", hint="set the element's reference field "
                         "to an RGBA PNG (or RGB on a plain background)")
    path = Path(spec.reference)
    if not path.is_file():
        raise InputError("reference image not found", path=path, hint="check the path in the job's reference field")
    return path


@functools.lru_cache(maxsize=4)
def _cutout_cached(path: str, mtime: float) -> np.ndarray:
    from gvfx.engines.sim import look

    img = look.load_reference_rgb(path, field="reference")
    return key_reference(img)


def load_cutout(path: str | Path) -> np.ndarray:
    """(H, W, 4) float32 premultiplied ACEScg cut-out of a reference image (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("reference image not found", path=p, hint="check the path in the job's reference field")
    return _cutout_cached(str(p), p.stat().st_mtime)


def key_reference(img: np.ndarray) -> np.ndarray:
    """(H, W, 4) premultiplied cut-out from (H, W, 3|4) ACEScg: RGBA kept, RGB keyed off its border colour."""
    img = np.asarray(img, np.float32)
    if img.shape[-1] == 4:
        return np.ascontiguousarray(img)
    enc = np.sqrt(np.maximum(img, 0.0))
    border = np.concatenate([enc[:2].reshape(-1, 3), enc[-2:].reshape(-1, 3), enc[:, :2].reshape(-1, 3),
                             enc[:, -2:].reshape(-1, 3)])
    bg_enc = np.median(border, axis=0)
    dist = np.linalg.norm(enc - bg_enc, axis=-1)
    a = np.clip((dist - KEY_LO) / (KEY_HI - KEY_LO), 0.0, 1.0)
    a = a * a * (3 - 2 * a)
    bg = bg_enc ** 2
    rgb = np.maximum(img - (1.0 - a)[..., None] * bg, 0.0) * (a > 0)[..., None]
    return np.concatenate([rgb, a[..., None]], axis=-1).astype(np.float32)


def _empty(ctx: PlateContext) -> ElementFrame:
    h, w = ctx.height, ctx.width
    return ElementFrame(np.zeros((h, w, 4), np.float32), np.full((h, w), np.inf, np.float32),
                        np.zeros((h, w), np.float32))


def _sample(entries: dict[int, dict], t: float) -> tuple[np.ndarray, float]:
    """Centre (3,) and screen spin (radians) at sub-frame time ``t`` from the cached tracks."""
    keys = sorted(entries)
    e = min(max(int(np.floor(t)), keys[0]), keys[-1])
    d = entries[e]
    kk = d["track"].shape[0]
    x = min(max((t - e) * kk, 0.0), kk)
    k = min(int(np.floor(x)), kk - 1)
    w = x - k
    a, sa = d["track"][k, 0].astype(np.float64), float(d["spin_track"][k])
    if k + 1 < kk:
        b, sb = d["track"][k + 1, 0], float(d["spin_track"][k + 1])
    elif e + 1 in entries:
        b, sb = entries[e + 1]["track"][0, 0], float(entries[e + 1]["spin_track"][0])
    else:
        return a, sa
    return a + (b.astype(np.float64) - a) * w, sa + (sb - sa) * w


def render(spec: ElementSpec, ctx: PlateContext, anchor: Anchor, frame: int, cache: SimCache) -> ElementFrame:
    """The cut-out at the proxy's place, perspective-scaled, screen-rotated, motion-blurred, held out."""
    frames = sim_frames(spec.start_frame, ctx.frames)
    if frame < frames[0] or not cache.has(frame):
        return _empty(ctx)
    kind, collider = proxy_and_collider(spec)
    times = shutter_times(spec, frame)
    if kind != "card":
        from gvfx.engines.sim.insert3d.element import render_3d

        p = resolved_params(EFFECTS["insert"], spec.params)
        entries = read_entries(cache, np.concatenate([times, times + 1.0, times - 1.0]))
        return render_3d(spec, ctx, anchor, frame, cache, p, _built(spec, kind), frames, times, entries, _sample,
                         sample_rotation)
    ref = _card_cutout(_reference_path(spec))
    entries = read_entries(cache, times)
    radius = float(entries[frame]["radius_m"])
    sphere = collider == "sphere"
    h, w = ctx.height, ctx.width
    acc = np.zeros((h, w, 4), np.float64)
    zbuf = np.full((h, w), np.inf, np.float64)
    rh, rw = ref.shape[:2]
    for t in times:
        centre, spin = _sample(entries, float(t))
        uv, zc = ctx.camera.project_world(centre[None], float(t))
        zc = float(zc[0])
        if zc <= radius * 0.5:
            continue
        fx = ctx.camera.camera_at(float(t)).fx
        half_px = radius / zc * fx  # half the object's height (= size_m / 2), in pixels
        scale = rh / (2.0 * half_px)  # reference pixels per screen pixel
        reach_px = half_px * max(rw, rh) / rh
        u0, v0 = uv[0]
        reach = reach_px * 1.5 + 1
        x0, x1 = int(max(np.floor(u0 - reach), 0)), int(min(np.ceil(u0 + reach), w))
        y0, y1 = int(max(np.floor(v0 - reach), 0)), int(min(np.ceil(v0 + reach), h))
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
        dx, dy_up = xx - u0, -(yy - v0)
        c, s = np.cos(-spin), np.sin(-spin)  # undo the object's rotation
        lx, ly_up = c * dx - s * dy_up, s * dx + c * dy_up
        sample = _bilinear(ref, lx * scale + rw / 2.0, -ly_up * scale + rh / 2.0)
        acc[y0:y1, x0:x1] += sample / len(times)
        rho = np.hypot(dx, dy_up) / half_px
        zs = zc - radius * np.sqrt(np.clip(1 - rho * rho, 0, 1)) if sphere else np.full_like(rho, zc - radius)
        zs = np.where(sample[..., 3] > 0, zs, np.inf)
        zbuf[y0:y1, x0:x1] = np.minimum(zbuf[y0:y1, x0:x1], zs)
    rgba = acc.astype(np.float32)
    z = np.where(rgba[..., 3] > 0, zbuf, np.inf).astype(np.float32)
    f = int(min(max(frame, ctx.frames[0]), ctx.frames[-1]))
    return ElementFrame(rgba, z, holdout_from_depth(z, ctx.depth(f)))


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample (H, W, C) at continuous pixel coordinates (pixel centres at i + 0.5); 0 outside."""
    h, w = img.shape[:2]
    fx, fy = x - 0.5, y - 0.5
    ix, iy = np.floor(fx).astype(np.intp), np.floor(fy).astype(np.intp)
    tx, ty = (fx - ix)[..., None], (fy - iy)[..., None]
    pad = np.pad(img, ((1, 1), (1, 1), (0, 0)))
    ix = np.clip(ix + 1, 0, w)
    iy = np.clip(iy + 1, 0, h)
    inside = ((fx > -1) & (fx < w) & (fy > -1) & (fy < h))[..., None]
    out = (pad[iy, ix] * (1 - tx) * (1 - ty) + pad[iy, ix + 1] * tx * (1 - ty)
           + pad[iy + 1, ix] * (1 - tx) * ty + pad[iy + 1, ix + 1] * tx * ty)
    return np.where(inside, out, 0.0)
