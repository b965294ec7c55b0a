"""The 3D ``insert`` frame: the proxy of the reference, standing on the simulated track, rendered
through the plate camera with the plate's light (called by :mod:`gvfx.engines.sim.insert`).

Placement: the object's height is ``size_m`` (its matte's bounding box, not the image); its base sits
on the collider's contact point; it stands along the surface normal (``upright: normal``) or the
world up (``upright: up``); the side the reference camera saw faces the plate camera at the start
frame, turned by ``facing_deg`` about the up axis.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gvfx.engines.base import ElementFrame, ElementSpec, PlateContext
from gvfx.engines.sim.common import Anchor, SimCache, holdout_from_depth, light_direction, resolved_params
from gvfx.engines.sim.insert3d.build import BuiltProxy, ProxyOptions, build_proxy
from gvfx.engines.sim.insert3d.proxy import Proxy
from gvfx.engines.sim.insert3d.render3d import Pose, render_proxy
from gvfx.engines.sim.insert3d.shade import plate_lighting

log = logging.getLogger(__name__)

__all__ = ["proxy_for", "scaled_proxy", "orientation", "render_3d", "LayoutProxy", "layout_proxy"]


def proxy_for(reference: Path, kind: str, p: dict, cutout_fn) -> BuiltProxy:
    """The (cached) proxy of ``reference`` for the element's params ``p``."""
    opts = ProxyOptions(kind=kind, thickness=float(p["thickness"]), delight=float(p["delight"]),
                        segments=int(p.get("segments", 64)))
    return build_proxy(reference, opts, cutout_fn)


_SCALED: dict[tuple, Proxy] = {}


def scaled_proxy(built: BuiltProxy, spec: ElementSpec, p: dict) -> Proxy:
    """The proxy at the element's size: height ``size_m``, optional ``width_m``/``depth_m`` (memoised)."""
    k = (built.key, float(spec.size_m), float(p["width_m"]), float(p["depth_m"]))
    if k not in _SCALED:
        if len(_SCALED) > 8:
            _SCALED.clear()
        _SCALED[k] = built.proxy.scaled(k[1], k[2] or None, k[3] or None)
    return _SCALED[k]


def orientation(spec: ElementSpec, ctx: PlateContext, anchor: Anchor, p: dict, start: int) -> np.ndarray:
    """(3, 3) object-to-world rotation: +Y along the upright axis, +Z (the reference's view) towards
    the plate camera at ``start``, turned by ``facing_deg``."""
    up = np.asarray(anchor.normal if p["upright"] == "normal" else anchor.up, np.float64)
    up = up / np.linalg.norm(up)
    to_cam = ctx.camera.position(float(start)) - np.asarray(anchor.point, np.float64)
    fwd = to_cam - (to_cam @ up) * up
    if np.linalg.norm(fwd) < 1e-9:  # camera straight above: face the camera's down-screen direction
        fwd = -ctx.camera.transform(float(start))[:3, 1]
        fwd = fwd - (fwd @ up) * up
    fwd /= np.linalg.norm(fwd)
    a = np.radians(float(p["facing_deg"]))
    right = np.cross(up, fwd)
    fwd = np.cos(a) * fwd + np.sin(a) * right
    right = np.cross(up, fwd)
    return np.stack([right, up, fwd], axis=1)


def render_3d(spec: ElementSpec, ctx: PlateContext, anchor: Anchor, frame: int, cache: SimCache, p: dict,
              built: BuiltProxy, frames: list[int], times: np.ndarray, entries: dict, sample,
              sample_rotation) -> ElementFrame:
    """Render the element's proxy at ``frame``: ``sample(entries, t)`` gives the collider's centre,
    ``sample_rotation(entries, t)`` its rolling rotation; the proxy turns about its own middle."""
    proxy = scaled_proxy(built, spec, p)
    rot = orientation(spec, ctx, anchor, p, frames[0])
    radius = float(entries[frame]["radius_m"])
    mid_local = np.array([0.0, radius, 0.0])  # the collider's centre in object space (base + size_m / 2)

    def pose_at(t: float) -> Pose:
        centre, _ = sample(entries, t)
        r = sample_rotation(entries, t) @ rot
        return Pose(r, np.asarray(centre, np.float64) - r @ mid_local)

    f = int(min(max(frame, ctx.frames[0]), ctx.frames[-1]))
    plate_z = ctx.depth(f)
    # the plate's mean colour comes from the job (the display window's middle frame), never from this
    # canvas: an overscan canvas's padded edges would change it
    plate_px = None if p.get("plate_mean_rgb") is None else np.asarray(p["plate_mean_rgb"], np.float64)[None]
    lighting = plate_lighting(light_direction(p if p.get("light_dir") is not None else {}), anchor.up, plate_px)
    fr = render_proxy(proxy, pose_at, ctx.camera, frame, times, ctx.width, ctx.height, lighting,
                      plate_z=plate_z, aa_samples=int(p["aa_samples"]))
    z = np.where(fr.rgba[..., 3] > 0, fr.z, np.inf).astype(np.float32)
    extra = {"motion": fr.motion, "N": fr.normal, "P": fr.position, "shadow": fr.shadow, "contact": fr.contact}
    return ElementFrame(fr.rgba, z, holdout_from_depth(z, plate_z), extra)


@dataclass(frozen=True)
class LayoutProxy:
    """What a USD layout needs of a 3D insert: the scaled proxy (object space) and, per simulated frame,
    its pose: rotation (3, 3) object-to-world and translation (3,) world."""

    proxy: Proxy
    pose_by_frame: dict[int, tuple[np.ndarray, np.ndarray]]


def layout_proxy(spec: ElementSpec, ctx: PlateContext, cache_dir: Path) -> LayoutProxy | None:
    """The element's proxy and animation from its sim cache (None: a card insert or no complete cache)."""
    from gvfx.engines.sim import insert

    kind, _ = insert.proxy_and_collider(spec)
    cache = SimCache(cache_dir)
    meta = cache.read_meta() or {}
    if kind == "card" or "anchor" not in meta:
        return None
    p = resolved_params(insert.EFFECTS["insert"], spec.params)
    anchor = Anchor(np.asarray(meta["anchor"], np.float64), np.asarray(meta["normal"], np.float64),
                    np.array([0.0, 1.0, 0.0]), spec.size_m)
    first, last = meta["frames"]
    rot = orientation(spec, ctx, anchor, p, int(first))
    proxy = scaled_proxy(insert._built(spec, kind), spec, p)
    poses = {}
    for f in range(int(first), int(last) + 1):
        if cache.has(f):
            d = cache.read(f)
            r = (np.asarray(d["rot_track"][0], np.float64) if "rot_track" in d else np.eye(3)) @ rot
            poses[f] = (r, np.asarray(d["pos"], np.float64) - r @ np.array([0.0, float(d["radius_m"]), 0.0]))
    return LayoutProxy(proxy, poses)
