"""Measurable looks of the rendered volume elements (low resolution, few frames): the fire's flicker
frequency against the buoyant puffing law 1.5/sqrt(D), its HDR blackbody core; the explosion's growth
exponent, hot core, emissive (shadowless) glow and rising soot; the smoke plume above the old box top with
no hard cut at the top of its domain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.engines.base import ElementSpec, PlateContext
from gvfx.engines.sim import volume
from gvfx.engines.sim.common import Anchor, SimCache
from gvfx.engines.sim.volume_sources import puffing_hz

FPS = 24.0


def _ctx(n_frames: int, size_m: float, w: int, h: int) -> PlateContext:
    """A static camera framing a ``size_m`` element at the origin over an empty (sky) plate."""
    frames = list(range(1, n_frames + 1))
    cam = Camera(35.0, 36.0, w, h)
    eye = np.array([0.0, 1.6 * size_m, 7.0 * size_m])
    track = CameraTrack.static(cam, frames, look_at(eye, np.array([0.0, 1.4 * size_m, 0.0])))
    return PlateContext(frames, track, lambda f: np.full((h, w), np.inf, np.float32), w, h, fps=FPS)


def _anchor(size_m: float) -> Anchor:
    return Anchor(np.zeros(3), np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0]), size_m)


def _render_all(tmp: Path, effect: str, size_m: float, n_frames: int, w: int, h: int, **params):
    ctx, anchor = _ctx(n_frames, size_m, w, h), _anchor(size_m)
    spec = ElementSpec("el", effect, size_m=size_m, seed=1, params=params)
    cache = SimCache(tmp)
    volume.simulate(spec, ctx, anchor, cache)
    return ctx, anchor, [volume.render(spec, ctx, anchor, f, cache) for f in ctx.frames]


def _peak_hz(series: np.ndarray, fps: float) -> float:
    """Frequency of the largest spectral peak in 0.7..8 Hz of a (quadratically detrended) series."""
    t = np.arange(len(series))
    x = series - np.polyval(np.polyfit(t, series, 2), t)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=8 * len(x)))
    fq = np.fft.rfftfreq(8 * len(x), 1.0 / fps)
    band = (fq > 0.7) & (fq < 8.0)
    return float(fq[band][np.argmax(spec[band])])


@pytest.mark.parametrize("size_m", [0.5, 2.0])
def test_fire_flickers_at_the_puffing_frequency_of_its_size(tmp_path, size_m):
    _, _, frames = _render_all(tmp_path, "fire", size_m, 72, 48, 27, resolution=40, preroll_frames=12)
    light = np.array([float(ef.extra["emission"].sum()) for ef in frames])
    expected = puffing_hz(2 * 0.3 * size_m)  # D = the source disc's diameter
    assert abs(_peak_hz(light, FPS) - expected) < 0.25 * expected
    # a real flicker, not +-8%: the emitted light swings by a third of its mean or more
    assert np.std(light) / np.mean(light) > 0.3


@pytest.fixture(scope="module")
def explosion(tmp_path_factory):
    return _render_all(tmp_path_factory.mktemp("expl"), "explosion", 0.5, 24, 160, 90, resolution=40)


def test_explosion_grows_like_a_blast_not_a_pop(explosion):
    _, _, frames = explosion
    area = np.array([float((ef.rgba[..., 3] > 0.5).sum()) for ef in frames])
    radius = np.sqrt(area)
    t = np.arange(1, 13) / FPS
    exponent = np.polyfit(np.log(t), np.log(radius[:12]), 1)[0]
    assert 0.25 < exponent < 0.55  # Sedov-Taylor: 0.4
    assert radius[1] < 0.65 * radius[11]  # not full size in 2 frames


def test_explosion_has_a_hot_core_and_casts_no_shadow_where_it_glows(explosion):
    _, _, frames = explosion
    early = frames[2]
    lum = early.rgba[..., :3].mean(-1)
    assert lum.max() > 3.0  # HDR core, >> 1 scene-linear
    y, x = np.unravel_index(np.argmax(lum), lum.shape)
    r, g, b = early.rgba[y, x, :3]
    assert r > g > b  # blackbody: orange-white, not peach-grey
    glow = lum > 1.0
    assert glow.sum() > 10
    alpha = early.rgba[..., 3]
    assert np.all(early.extra["shadow_alpha"][glow] < 0.3 * alpha[glow])
    assert np.allclose(early.extra["emission"][glow], early.rgba[glow, :3], rtol=0.3)


def test_explosion_cools_to_soot_that_keeps_rising(explosion):
    _, _, frames = explosion
    peaks = [float(ef.rgba[..., :3].mean(-1).max()) for ef in frames]
    assert peaks[-1] < 0.25 * peaks[2]  # cooled
    top = [int(np.nonzero(ef.rgba[..., 3].max(axis=1) > 0.05)[0].min()) for ef in frames]
    assert top[-1] < top[15] - 3  # still rising (image rows go down the frame)
    assert frames[-1].rgba[..., 3].max() > 0.9  # dense soot remains


def test_smoke_rises_beyond_the_old_box_and_fades_at_its_top(tmp_path):
    size = 0.5
    ctx, anchor, frames = _render_all(tmp_path, "smoke", size, 24, 96, 160, resolution=48)
    m = 0
    old_top = ctx.camera.project_world(np.array([[0.0, 2.0 * size, 0.0]]), ctx.frames[m])[0][0]
    box = volume.grid_layout("smoke", anchor, 48)
    new_top = ctx.camera.project_world(np.array([[0.0, box.box_max[1], 0.0]]), ctx.frames[m])[0][0]
    alpha = frames[-1].rgba[..., 3]
    rows = alpha.max(axis=1)
    row_old = int(old_top[1])
    assert rows[: row_old - 2].max() > 0.05  # smoke above the old box's top (rows above it)
    row_new = int(np.clip(new_top[1], 0, ctx.height - 1))
    # no hard cut: the alpha near the domain top is a small fraction of the plume's
    assert rows[max(row_new, 0): row_new + 3].max() < 0.2 * rows.max()
