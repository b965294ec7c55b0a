"""Tests for the volume family (smoke, fire, explosion): holdouts, chunk renders, emission, premult."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.engines.base import ElementSpec, PlateContext
from gvfx.engines.sim import volume
from gvfx.engines.sim.common import Anchor, SimCache

W, H = 160, 90
FRAMES = list(range(1, 9))
FAST = {"resolution": 16, "substeps": 1, "preroll_frames": 3}


def _plate(wall_x_max: float | None = None, moving: bool = True) -> PlateContext:
    """A camera at z=3 looking at the origin over a floor (y=0); optionally a wall at z=1 covering
    world x < ``wall_x_max``."""
    cam = Camera(35.0, 36.0, W, H)
    mats = np.stack([look_at(np.array([0.02 * i if moving else 0.0, 1.0, 3.0]), np.array([0.0, 0.5, 0.0]))
                     for i in range(len(FRAMES))])
    track = CameraTrack(cam, tuple(FRAMES), mats)

    def depth(frame: int) -> np.ndarray:
        m = track.transform(frame)
        d = cam.ray_directions() @ m[:3, :3].T
        eye = m[:3, 3]
        with np.errstate(divide="ignore"):
            t_floor = np.where(d[..., 1] < 0, -eye[1] / d[..., 1], np.inf)
            t_wall = (1.0 - eye[2]) / d[..., 2]
        if wall_x_max is not None:
            x = eye[0] + t_wall * d[..., 0]
            t_floor = np.where((t_wall > 0) & (x < wall_x_max), np.minimum(t_floor, t_wall), t_floor)
        return t_floor.astype(np.float32)

    return PlateContext(list(FRAMES), track, depth, W, H)


ANCHOR = Anchor(np.zeros(3), np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0]), 0.5)


def _spec(effect: str, **kw) -> ElementSpec:
    params = dict(FAST)
    params.update(kw.pop("params", {}))
    return ElementSpec("el", effect, size_m=0.5, seed=kw.pop("seed", 3), params=params,
                       motion_samples=kw.pop("motion_samples", 1), **kw)


@pytest.fixture(scope="module")
def smoke_cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("smoke")
    volume.simulate(_spec("smoke", start_frame=2), _plate(), ANCHOR, SimCache(root))
    return root


@pytest.fixture(scope="module")
def fire_cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fire")
    volume.simulate(_spec("fire"), _plate(), ANCHOR, SimCache(root))
    return root


def test_effects_described_as_data():
    assert set(volume.EFFECTS) == {"smoke", "fire", "explosion"}
    for info in volume.EFFECTS.values():
        names = {p.name for p in info.params}
        assert {"resolution", "substeps", "buoyancy", "vorticity", "wind", "density_scale",
                "emission_scale", "light_dir"} <= names


def test_cache_has_one_entry_per_frame(smoke_cache):
    cache = SimCache(smoke_cache)
    assert [f for f in FRAMES if cache.has(f)] == FRAMES[1:]
    data = cache.read(5)
    assert data["density"].dtype == np.float16
    assert tuple(data["shape"]) == data["density"].shape
    assert float(data["density"].max()) > 0.1


def test_before_start_is_empty(smoke_cache):
    e = volume.render(_spec("smoke", start_frame=2), _plate(), ANCHOR, 1, SimCache(smoke_cache))
    assert not e.rgba.any() and np.all(np.isinf(e.z)) and not e.holdout.any()


def test_premultiplied_and_z_inf_exactly_where_alpha_zero(smoke_cache):
    spec = _spec("smoke", start_frame=2)
    e = volume.render(spec, _plate(), ANCHOR, 6, SimCache(smoke_cache))
    a = e.rgba[..., 3]
    assert e.rgba.dtype == np.float32 and e.rgba.shape == (H, W, 4)
    assert (a > 0.05).sum() > 30 and a.max() <= 1.0
    prm = volume.resolved_params(volume.EFFECTS["smoke"], spec.params)
    look = volume.default_look("smoke")
    max_src = float(np.max(look.smoke_tint) * (prm["light_intensity"] + prm["ambient"]))
    assert np.all(e.rgba[..., :3] <= a[..., None] * max_src + 1e-6)
    assert np.array_equal(np.isinf(e.z), a == 0)
    zf = e.z[a > 0]
    assert np.all((zf > 1.5) & (zf < 4.5))  # the volume sits ~3 m from the camera


def test_holdout_behind_wall(tmp_path):
    """A wall covering world x < 0 at z=1, between camera (z=3) and smoke (z~0): held out there only."""
    spec = _spec("smoke", params={"resolution": 16})
    ctx = _plate(wall_x_max=0.0, moving=False)
    cache = SimCache(tmp_path)
    volume.simulate(spec, ctx, ANCHOR, cache)
    e = volume.render(spec, ctx, ANCHOR, 6, cache)
    a = e.rgba[..., 3]
    m = ctx.camera.transform(6)
    d = ctx.camera.camera.ray_directions() @ m[:3, :3].T
    x_at_wall = m[0, 3] + (1.0 - m[2, 3]) / d[..., 2] * d[..., 0]
    covered = (a > 0.01) & (x_at_wall < -0.02)
    open_ = (a > 0.01) & (x_at_wall > 0.02)
    assert covered.sum() > 10 and open_.sum() > 10
    assert e.holdout[covered].min() > 0.99
    assert e.holdout[open_].max() < 0.01


def test_chunk_render_bitwise_equals_full_render(tmp_path, fire_cache):
    spec = _spec("fire", motion_samples=3, shutter_frames=0.5)
    ctx = _plate()
    full = {f: volume.render(spec, ctx, ANCHOR, f, SimCache(fire_cache)) for f in FRAMES}
    # an independent re-simulation (same seed) and a fresh cache, rendering frames 5..7 alone
    other = SimCache(tmp_path / "again")
    volume.simulate(spec, _plate(), ANCHOR, other)
    for f in (5, 6, 7):
        part = volume.render(spec, ctx, ANCHOR, f, SimCache(other.root))
        assert np.array_equal(part.rgba, full[f].rgba)
        assert np.array_equal(part.z, full[f].z)
        assert np.array_equal(part.holdout, full[f].holdout)
    assert not np.array_equal(full[5].rgba, full[7].rgba)  # it does move


def test_seed_changes_sim(tmp_path, fire_cache):
    other = SimCache(tmp_path)
    volume.simulate(_spec("fire", seed=4), _plate(), ANCHOR, other)
    assert not np.array_equal(other.read(6)["temperature"], SimCache(fire_cache).read(6)["temperature"])


def test_fire_emits_warm_light(fire_cache):
    e = volume.render(_spec("fire"), _plate(), ANCHOR, 6, SimCache(fire_cache))
    temp = SimCache(fire_cache).read(6)["temperature"].astype(np.float32)
    assert temp.max() > 0.3  # fuel burnt into heat
    rgb = e.rgba[..., :3]
    bright = rgb.sum(-1) > np.quantile(rgb.sum(-1), 0.99)
    r, g, b = (rgb[bright].sum(0))
    assert r > g > b > 0
    # emission: the brightest pixels are brighter than any lit smoke could be
    assert rgb.max() > 0.8
    # without emission the same frame is far darker
    dark = volume.render(_spec("fire", params={"emission_scale": 0.0}), _plate(), ANCHOR, 6, SimCache(fire_cache))
    assert dark.rgba[..., 0].max() < 0.3 * rgb[..., 0].max()


def test_explosion_expands(tmp_path):
    spec = _spec("explosion", params={"resolution": 16})
    cache = SimCache(tmp_path)
    volume.simulate(spec, _plate(), ANCHOR, cache)
    occupied = [int((cache.read(f)["temperature"].astype(np.float32) > 0.05).sum()) for f in (1, 3)]
    assert occupied[1] > occupied[0] > 0


def test_motion_layer_follows_camera_pan(fire_cache):
    """The camera moves +x in world each frame, so the (nearly static) volume moves left on screen."""
    e = volume.render(_spec("fire"), _plate(), ANCHOR, 5, SimCache(fire_cache))
    mv = e.extra["motion"]
    a = e.rgba[..., 3]
    assert mv.shape == (H, W, 2)
    assert np.all(mv[a == 0] == 0)
    assert np.all(mv[a > 0][:, 0] < -0.2)


def test_missing_cache_frame_is_a_clear_error(tmp_path):
    from gvfx.errors import EngineError

    with pytest.raises(EngineError, match="prepare"):
        volume.render(_spec("smoke"), _plate(), ANCHOR, 4, SimCache(tmp_path))


def test_reference_sets_the_look(tmp_path, fire_cache):
    import OpenImageIO as oiio

    y, x = np.mgrid[0:32, 0:32] / 32
    heat = np.clip(1 - np.hypot(x - 0.5, y - 0.5) / 0.3, 0, 1)[..., None]
    ref = (heat ** 2 * np.array([0.3, 0.5, 1.0]) * 4 + 0.01).astype(np.float32)  # a blue flame
    path = tmp_path / "blue.exr"
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), oiio.ImageSpec(32, 32, 3, "float"))
    out.write_image(ref)
    out.close()
    e = volume.render(_spec("fire", reference=path), _plate(), ANCHOR, 6, SimCache(fire_cache))
    rgb = e.rgba[..., :3]
    bright = rgb.sum(-1) > np.quantile(rgb.sum(-1), 0.99)
    r, g, b = rgb[bright].sum(0)
    assert b > r
