"""Tests for the particle effects (sparks, debris, dust, rain, snow) and the splat rasteriser."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.engines.base import ElementSpec, PlateContext
from gvfx.engines.sim import particles, splat
from gvfx.engines.sim.common import Anchor, SimCache
from gvfx.surface import DepthSurface, Plane, raycast_depth

UP = np.array([0.0, 1.0, 0.0])
FLOOR = Plane(UP, 0.0)


def _plate(frames: list[int], boxes=(), move_mps: float = 0.0, w: int = 160, h: int = 90) -> PlateContext:
    """A floor (plus optional boxes) seen by a camera that may truck sideways."""
    cam = Camera(30.0, 36.0, w, h)
    mats = np.stack([look_at(np.array([0.3 + move_mps * i / 24.0, 1.5, 3.5]), np.array([0.0, 0.4, 0.0]))
                     for i in range(len(frames))])
    depths = {f: raycast_depth(cam, mats[i], planes=(FLOOR,), boxes=boxes) for i, f in enumerate(frames)}
    return PlateContext(frames, CameraTrack(cam, tuple(frames), mats), depth=lambda f: depths[f], width=w, height=h)


def _sim(tmp_path, ctx, effect, anchor, params, seed=0, name="c", start=None):
    spec = ElementSpec("e", effect, seed=seed, params=params, start_frame=start)
    cache = SimCache(tmp_path / name)
    particles.simulate(spec, ctx, anchor, cache)
    return spec, cache


def test_sparks_never_end_up_behind_the_floor(tmp_path):
    frames = list(range(1, 25))
    ctx = _plate(frames, move_mps=0.5)
    anchor = Anchor(np.array([0.0, 0.6, 0.0]), UP, UP, 1.0)  # spraying from 60 cm above the floor
    params = {"count": 300, "emit_frames": 4, "speed_mps": 3.0, "substeps": 3}
    spec, cache = _sim(tmp_path, ctx, "sparks", anchor, params)
    hits_floor = 0
    for i, f in enumerate(frames):
        c = cache.read(f)
        surf = DepthSurface(ctx.depth(f), ctx.camera.camera_at(f), ctx.camera.transform(f))
        for k in range(c["track"].shape[0]):
            pos = c["track"][k][c["track_alive"][k]]
            sd = surf.signed_distance(pos)
            sd = sd[np.isfinite(sd)]
            assert sd.min(initial=1.0) >= -0.02, f"frame {f}: a spark is behind the floor"
        hits_floor += int(np.sum(c["alive"] & (np.abs(c["pos"][:, 1]) < 0.02)))
    assert hits_floor > 100  # they did reach the floor (and bounced / slid on it)
    last = cache.read(frames[-1])
    assert last["pos"][last["alive"], 1].min() > -0.01


def test_sparks_cool_from_yellow_white_to_red(tmp_path):
    frames = list(range(1, 31))
    ctx = _plate(frames)
    anchor = Anchor(np.array([0.0, 0.6, 0.0]), UP, UP, 1.0)
    params = {"count": 300, "emit_frames": 0, "lifetime_s": 1.2, "substeps": 2}
    spec, cache = _sim(tmp_path, ctx, "sparks", anchor, params)
    ratios = []
    for f in (2, 14, 27):
        rgb = particles.render(spec, ctx, anchor, f, cache).rgba[..., :3].reshape(-1, 3).sum(axis=0)
        ratios.append(rgb[1] / rgb[0])
    assert ratios[0] > 0.6 and ratios[2] < 0.3
    assert ratios[0] > ratios[1] > ratios[2]
    temp = [cache.read(f)["temperature_K"][cache.read(f)["alive"]].mean() for f in (2, 27)]
    assert temp[0] > 3000 > 1500 > temp[1]


def test_rain_splashes_on_the_surface(tmp_path):
    frames = list(range(1, 13))
    ctx = _plate(frames, boxes=(((-0.6, 0.0, -0.5), (0.6, 0.8, 0.5)),))
    anchor = Anchor(np.array([0.0, 0.0, 0.0]), UP, UP, 0.5)
    spec, cache = _sim(tmp_path, ctx, "rain", anchor, {"count": 300, "splash_count": 2, "near_fraction": 0.0})
    first = cache.read(frames[0])
    splash = first["kind"] == 1
    assert splash.sum() > 0
    born_at = {}
    for f in frames:
        c = cache.read(f)
        for k in range(c["track"].shape[0]):
            new = np.flatnonzero(splash & c["track_alive"][k])
            for i in new:
                born_at.setdefault(int(i), c["track"][k][i].astype(np.float64))
    assert len(born_at) > 50
    pts = np.array(list(born_at.values()))
    on_floor = np.abs(pts[:, 1]) < 0.03
    on_table = (np.abs(pts[:, 1] - 0.8) < 0.03) & (np.abs(pts[:, 0]) < 0.61) & (np.abs(pts[:, 2]) < 0.51)
    assert np.all(on_floor | on_table)
    assert on_table.sum() > 0 and on_floor.sum() > 0
    fr = particles.render(spec, ctx, anchor, frames[-1], cache)
    assert fr.rgba[..., 3].max() > 0.05


def test_same_seed_same_cache_and_chunk_render_equals_full(tmp_path):
    frames = list(range(1001, 1011))
    ctx = _plate(frames, move_mps=1.0)
    anchor = Anchor(np.array([0.0, 0.5, 0.0]), UP, UP, 1.0)
    params = {"count": 200, "emit_frames": 3, "substeps": 2}
    spec, a = _sim(tmp_path, ctx, "sparks", anchor, params, seed=7, name="a", start=1003)
    _, b = _sim(tmp_path, ctx, "sparks", anchor, params, seed=7, name="b", start=1003)
    _, c = _sim(tmp_path, ctx, "sparks", anchor, params, seed=8, name="c", start=1003)
    for f in range(1003, 1011):
        ca, cb = a.read(f), b.read(f)
        assert ca.keys() == cb.keys()
        for k in ca:
            assert np.array_equal(ca[k], cb[k]), (f, k)
    assert not np.array_equal(a.read(1006)["pos"], c.read(1006)["pos"])
    full = [particles.render(spec, ctx, anchor, f, a) for f in frames]
    chunk = [particles.render(spec, ctx, anchor, f, b) for f in (1008, 1006, 1007)]
    for f, fr in zip((1008, 1006, 1007), chunk):
        assert np.array_equal(fr.rgba, full[f - 1001].rgba) and np.array_equal(fr.z, full[f - 1001].z)
    assert full[0].rgba.max() == 0 and np.isinf(full[0].z).all()  # before the start: empty
    assert full[5].rgba[..., 3].max() > 0


@pytest.mark.parametrize("effect", ["debris", "dust", "snow"])
def test_other_effects_render_valid_elements(tmp_path, effect):
    frames = list(range(1, 9))
    ctx = _plate(frames)
    anchor = Anchor(np.array([0.0, 0.0, 0.5]), UP, UP, 1.0)
    spec, cache = _sim(tmp_path, ctx, effect, anchor, {"count": 150})
    fr = particles.render(spec, ctx, anchor, 6, cache)
    a = fr.rgba[..., 3]
    assert a.max() > 0.01 and a.min() >= 0 and a.max() <= 1
    assert np.all(np.isfinite(fr.z[a > 0])) and np.all(np.isinf(fr.z[a == 0]))
    assert 0 <= fr.holdout.min() and fr.holdout.max() <= 1
    assert np.all(fr.rgba[..., :3] <= a[..., None] * 10 + 1e-6)
    last = cache.read(frames[-1])
    alive = last["alive"]
    assert last["pos"][alive, 1].min() > -0.02  # nothing fell through the floor
    if effect == "snow":
        assert last["asleep"].sum() > 0  # flakes settled


def test_splat_conserves_coverage_and_keeps_nearest_z():
    sp = splat.Splats(uv=np.array([[40.3, 20.7], [40.3, 20.7], [10.0, 10.0]]), z=np.array([5.0, 3.0, 2.0]),
                      rgb=np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]), alpha=np.array([0.2, 0.2, 0.1]),
                      radius_px=np.array([0.3, 0.3, 2.0]))
    rgba, z = splat.rasterize(sp, 64, 32, emissive=True)
    # sub-pixel splats keep their area-weighted coverage: 0.2 * pi * 0.3^2 each
    near = rgba[15:26, 35:46]
    assert near[..., 0].sum() == pytest.approx(0.2 * np.pi * 0.09, rel=1e-6)
    assert z[20, 40] == 3.0 and z[10, 10] == 2.0 and np.isinf(z[0, 63])
    assert rgba[..., 3].max() < 1.0
