"""The 3D insert against the world: a textured can ray cast exactly from an orbiting, craning camera
(tests/engines/sim/gvfx_insert3d_truth.py) versus gvfx's lathe proxy built from one ray-cast photograph."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.engines.base import ElementSpec
from gvfx.engines.sim import insert
from gvfx.engines.sim.common import Anchor, SimCache

from gvfx_insert3d_truth import (HEIGHT_M, RADIUS_M, UP, base_point, iou, label_share, orbit_track, plate_context, raycast_can,
                             reference_png)

FRAMES = list(range(1, 11))


@pytest.fixture(autouse=True)
def _proxy_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GVFX_PROXIES", str(tmp_path / "proxies"))


@pytest.fixture(scope="module")
def can_png(tmp_path_factory) -> str:
    return reference_png(tmp_path_factory.mktemp("ref") / "can.png")


@pytest.fixture(scope="module")
def shot(can_png, tmp_path_factory):
    """The can inserted with `size_m: 0.30` on the ground at the origin, rendered every frame."""
    track = orbit_track(FRAMES)
    ctx = plate_context(track)
    anchor = Anchor(np.zeros(3), UP, UP, HEIGHT_M)
    spec = ElementSpec("can", "insert", reference=can_png, size_m=HEIGHT_M, shutter_frames=0.0,
                       params={"light_dir": (-0.5, 0.8, 0.3)})
    cache = SimCache(tmp_path_factory.mktemp("cache"))
    insert.simulate(spec, ctx, anchor, cache)
    out = {f: insert.render(spec, ctx, anchor, f, cache) for f in FRAMES}
    truth = {f: raycast_can(track.camera, track.transform(f)) for f in FRAMES}
    return spec, ctx, track, out, truth


def test_auto_chooses_lathe_for_a_symmetric_can_and_says_so(shot):
    spec = shot[0]
    meta = insert.metadata(spec)
    assert meta["gvfx:insert:proxy"] == "lathe" and float(meta["gvfx:insert:symmetry"]) > 0.95
    assert meta["gvfx:insert:collider"] == "box"


def test_silhouette_follows_the_true_can_through_orbit_and_crane(shot):
    _, _, _, out, truth = shot
    ious = np.array([iou(out[f].rgba[..., 3] > 0.5, truth[f].mask) for f in FRAMES])
    assert ious.mean() >= 0.90, ious
    assert ious.min() >= 0.85, ious
    # the lid comes into view as the camera cranes up: the proxy shows it too
    assert truth[FRAMES[-1]].lid.sum() > 100


def test_base_stands_on_its_true_place(shot):
    _, _, _, out, truth = shot
    err = np.array([np.abs(base_point(out[f].rgba[..., 3] > 0.5) - base_point(truth[f].mask)).max() for f in FRAMES])
    assert err.max() <= 2.0, err


def test_front_label_turns_away_as_the_truth_does(shot):
    _, _, _, out, truth = shot
    got, want = [], []
    for f in FRAMES:
        a = out[f].rgba[..., 3]
        rgb = out[f].rgba[..., :3] / np.maximum(a, 1e-6)[..., None]
        got.append(label_share(rgb, a > 0.5))
        want.append(float(truth[f].label.sum() / truth[f].mask.sum()))
    got, want = np.array(got), np.array(want)
    assert want[0] > 0.3 and want[-1] < want[0] - 0.2  # the shot really turns the label away
    assert np.abs(got - want).max() <= 0.1, (got, want)


def test_depth_normals_position_and_motion_match_the_ray_cast(shot):
    _, ctx, track, out, truth = shot
    for f in (FRAMES[0], FRAMES[len(FRAMES) // 2], FRAMES[-2]):
        ef, t = out[f], truth[f]
        both = (ef.rgba[..., 3] > 0.99) & t.mask
        both &= ~np.roll(~t.mask, 1, 0) & ~np.roll(~t.mask, -1, 0) & ~np.roll(~t.mask, 1, 1) & ~np.roll(~t.mask, -1, 1)
        assert both.sum() > 500
        assert np.median(np.abs(ef.z[both] - t.z[both])) < 0.005
        assert np.median(np.linalg.norm(ef.extra["P"][both] - t.point[both], axis=-1)) < 0.005
        cosang = np.sum(ef.extra["N"][both] * t.normal[both], axis=-1)
        assert np.median(cosang) > np.cos(np.radians(6))
        # a static object under a moving camera: forward motion of the true surface point, V up
        uv1, _ = track.project_world(t.point[both], f + 1)
        ys, xs = np.nonzero(both)
        want = np.stack([uv1[:, 0] - (xs + 0.5), -(uv1[:, 1] - (ys + 0.5))], -1)
        assert np.median(np.linalg.norm(ef.extra["motion"][both] - want, axis=-1)) < 0.3
        assert np.abs(want).max() > 2  # the camera does move
        # premultiplied: colour never exceeds alpha's share, never black on the object
        lum = ef.rgba[..., :3].max(axis=-1)
        assert lum[both].min() > 0.01


def test_cast_shadow_is_the_true_shape_projected_along_the_light(shot):
    spec, ctx, track, out, truth = shot
    light = np.asarray(spec.params["light_dir"], float)
    light /= np.linalg.norm(light)
    f = FRAMES[0]
    cast = out[f].extra["shadow"]
    z = ctx.depth(f)
    dark = (cast > 0.5) & ~truth[f].mask
    assert dark.sum() > 100
    # analytic truth: a ground point is in shadow iff its ray towards the light passes through the can
    ground = np.isfinite(z) & ~truth[f].mask
    ys, xs = np.nonzero(ground)
    p = track.unproject_world(np.stack([xs + 0.5, ys + 0.5], -1), z[ys, xs], f)
    a = light[0] ** 2 + light[2] ** 2
    b = 2 * (p[:, 0] * light[0] + p[:, 2] * light[2])
    c = p[:, 0] ** 2 + p[:, 2] ** 2 - RADIUS_M ** 2
    disc = b * b - 4 * a * c
    root = np.sqrt(np.clip(disc, 0, None))
    s0, s1 = (-b - root) / (2 * a), (-b + root) / (2 * a)
    top = HEIGHT_M / light[1]
    hit = (disc > 0) & (s1 > 0) & (s0 < top)
    want = np.zeros_like(ground)
    want[ys, xs] = hit
    assert want.sum() > 200
    got = (cast > 0.5) & ground
    assert iou(got, want) >= 0.8, iou(got, want)
    contact = out[f].extra["contact"]
    assert contact.max() > 0.5  # darkest where it touches the ground


def test_renders_are_deterministic(shot, can_png, tmp_path):
    spec, ctx, _, out, _ = shot
    cache = SimCache(tmp_path / "c2")
    anchor = Anchor(np.zeros(3), UP, UP, HEIGHT_M)
    insert.simulate(spec, ctx, anchor, cache)
    again = insert.render(spec, ctx, anchor, FRAMES[3], cache)
    assert np.array_equal(again.rgba, out[FRAMES[3]].rgba)


def test_a_rolling_sphere_collider_turns_the_3d_proxy_without_slipping(can_png, tmp_path):
    """Rolling without slipping: the body turns by distance / radius about the axis n x v."""
    track = orbit_track(FRAMES)
    ctx = plate_context(track)
    anchor = Anchor(np.zeros(3), UP, UP, HEIGHT_M)
    spec = ElementSpec("can", "insert", reference=can_png, size_m=HEIGHT_M, shutter_frames=0.0,
                       params={"collider": "sphere", "velocity_mps": (0.6, 0.0, 0.0), "friction": 0.0})
    cache = SimCache(tmp_path / "roll")
    insert.simulate(spec, ctx, anchor, cache)
    a, b = cache.read(FRAMES[2]), cache.read(FRAMES[6])
    dist = float(b["pos"][0] - a["pos"][0])
    assert dist > 0.05
    rel = b["rot_track"][0] @ a["rot_track"][0].T
    angle = np.arccos(np.clip((np.trace(rel) - 1) / 2, -1, 1))
    assert angle == pytest.approx(dist / (HEIGHT_M / 2), rel=0.05)
    axis = np.array([rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]])
    assert axis[2] < 0 and abs(axis[2]) > 0.99 * np.linalg.norm(axis)  # rolling +x on a y-up floor: about -z
    ef = insert.render(spec, ctx, anchor, FRAMES[6], cache)
    assert ef.rgba[..., 3].max() > 0.99
