"""Tests for the insert effect: a rigid proxy from one reference image on the plate's depth surface."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.engines.base import ElementSpec, PlateContext
from gvfx.engines.sim import insert
from gvfx.engines.sim.common import Anchor, SimCache
from gvfx.errors import InputError
from gvfx.surface import Plane, raycast_depth

UP = np.array([0.0, 1.0, 0.0])
TABLE = ((-0.6, 0.0, -0.5), (0.6, 0.8, 0.5))


def _plate(frames: list[int], w: int = 160, h: int = 90) -> PlateContext:
    cam = Camera(30.0, 36.0, w, h)
    m = look_at(np.array([0.3, 1.5, 3.5]), np.array([0.0, 0.5, 0.0]))
    z = raycast_depth(cam, m, planes=(Plane(UP, 0.0), Plane(np.array([0, 0, 1.0]), 3.0)), boxes=(TABLE,))
    return PlateContext(frames, CameraTrack.static(cam, frames, m), depth=lambda f: z, width=w, height=h)


@pytest.fixture(scope="module")
def ball_png(tmp_path_factory) -> str:
    """An RGB ball on a plain green background (keyed automatically) with a stripe to show rotation."""
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    img = np.zeros((64, 64, 3), np.uint8)
    img[:] = (40, 200, 60)
    inside = (xx - 32) ** 2 + (yy - 32) ** 2 < 28 ** 2
    img[inside] = (220, 60, 40)
    img[inside & (np.abs(xx - 32) < 4)] = (240, 240, 240)
    path = tmp_path_factory.mktemp("ref") / "ball.png"
    Image.fromarray(img).save(path)
    return str(path)


def _run(tmp_path, ctx, anchor, params, ball_png, start=None):
    spec = ElementSpec("ball", "insert", reference=ball_png, params=params, start_frame=start, size_m=anchor.size_m)
    cache = SimCache(tmp_path / "cache")
    insert.simulate(spec, ctx, anchor, cache)
    return spec, cache


def test_automatic_key_of_a_plain_background(ball_png):
    cut = insert.load_cutout(ball_png)
    assert cut.shape == (64, 64, 4)
    assert cut[32, 32, 3] == pytest.approx(1.0) and cut[2, 2, 3] == 0.0 and cut[60, 5, 3] == 0.0
    assert np.all(cut[cut[..., 3] == 0][:, :3] == 0)
    assert 0.55 < cut[..., 3].mean() < 0.65  # pi * 28^2 / 64^2 = 0.60


def test_dropped_insert_accelerates_at_g(tmp_path, ball_png):
    frames = list(range(1, 14))
    ctx = _plate(frames)
    anchor = Anchor(np.array([1.2, 3.0, 1.5]), UP, UP, 0.2)
    _, cache = _run(tmp_path, ctx, anchor, {}, ball_png)
    t = (np.array(frames) - frames[0]) / ctx.fps
    y = np.array([cache.read(f)["pos"][1] for f in frames], np.float64)
    assert y[-1] > 0.5  # still in the air: nothing was hit
    accel = 2 * np.polyfit(t, y, 2)[0]
    assert accel == pytest.approx(-9.81, rel=0.02)


def test_ball_rolls_off_the_table_and_rests_on_the_floor(tmp_path, ball_png):
    frames = list(range(1, 97))
    ctx = _plate(frames)
    anchor = Anchor(np.array([0.1, 0.8, 0.2]), UP, UP, 0.2)
    spec, cache = _run(tmp_path, ctx, anchor, {"proxy": "card", "velocity_mps": (1.2, 0.0, 0.0)}, ball_png)
    states = [cache.read(f) for f in frames]
    y = np.array([s["pos"][1] for s in states])
    x = np.array([s["pos"][0] for s in states])
    on_table = x < 0.6
    assert np.abs(y[on_table] - 0.9).max() < 0.01  # rolled along the top at table + radius
    assert abs(states[5]["spin_rad"]) > 0.5  # turned in screen while rolling
    assert x[-1] > 0.7 and abs(y[-1] - 0.1) < 0.01  # left the edge, fell, rests on the floor
    assert np.linalg.norm(states[-1]["vel"]) < 0.05
    fr = insert.render(spec, ctx, anchor, 3, cache)
    a = fr.rgba[..., 3]
    assert a.max() > 0.9 and np.all(np.isfinite(fr.z[a > 0])) and np.all(np.isinf(fr.z[a == 0]))
    assert fr.holdout[a > 0.5].max() < 0.05  # on the table top, in front of everything


def test_held_out_behind_the_table(tmp_path, ball_png):
    frames = [1, 2, 3]
    ctx = _plate(frames)
    anchor = Anchor(np.array([0.0, 0.0, -0.9]), UP, UP, 0.3)  # on the floor, behind the table
    spec, cache = _run(tmp_path, ctx, anchor, {}, ball_png)
    assert abs(cache.read(3)["pos"][1] - 0.15) < 0.01  # the hidden floor (ground plane) holds it
    fr = insert.render(spec, ctx, anchor, 3, cache)
    a = fr.rgba[..., 3] > 0.5
    assert a.sum() > 20
    assert fr.holdout[a].mean() > 0.95


def test_missing_reference_names_the_file_and_field(tmp_path):
    ctx = _plate([1, 2])
    anchor = Anchor(np.array([0.0, 1.0, 1.0]), UP, UP, 0.2)
    spec = ElementSpec("ball", "insert", reference=tmp_path / "nope.png")
    with pytest.raises(InputError, match="nope.png.*reference"):
        insert.simulate(spec, ctx, anchor, SimCache(tmp_path / "c"))
