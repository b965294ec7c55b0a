"""Light direction on the demo plate: no light source in frame -> the documented default with a low
confidence (never a confident wrong answer); a sun in frame -> found, confidently."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gvfx.demo.scene import default_scene, demo_camera, render_plate_frame
from gvfx.engines.sim.common import DEFAULT_LIGHT_DIR
from gvfx.match.shadow import MIN_CONFIDENCE, default_light_dir, estimate_light


def _angle(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


@pytest.fixture(scope="module")
def demo():
    scene = default_scene()
    track = demo_camera(scene, 480, 270, 4)
    rgb, z = render_plate_frame(scene, track, 1002)
    return track, rgb, z


def test_demo_plate_gives_the_default_with_a_warning(demo, caplog):
    track, rgb, z = demo
    with caplog.at_level(logging.WARNING, logger="gvfx.match.shadow"):
        le = estimate_light(rgb, z, track.camera_at(1002), track.transform(1002))
    assert le.source == "default" and le.confidence < MIN_CONFIDENCE
    assert any("no clear light source" in r.getMessage() for r in caplog.records)
    d = np.asarray(le.direction)
    assert np.allclose(d, default_light_dir(track.transform(1002)))
    assert d[1] > 0.7  # from above ...
    back = track.transform(1002)[:3, 2]
    assert d @ back > 0.4  # ... and behind the camera: shadows fall away from it
    # the plate's sun (the scene's key light) is within 35 degrees of the default: the brightest-pixel
    # guess it replaces was 77 degrees off
    assert _angle(d, DEFAULT_LIGHT_DIR) < 35.0


def test_a_sun_in_frame_is_found_confidently(demo):
    track, rgb, z = demo
    cam, c2w = track.camera_at(1002), track.transform(1002)
    # a small sun in the sky, right of centre, near the top
    h, w = z.shape
    u, v = 0.7 * w, 4.0
    assert not np.isfinite(z[int(v), int(u)])
    ray = cam.unproject(np.array([[u, v]]), np.ones(1))[0]
    sun_dir = c2w[:3, :3] @ (ray / np.linalg.norm(ray))
    yy, xx = np.mgrid[:h, :w]
    disc = ((xx + 0.5 - u) ** 2 + (yy + 0.5 - v) ** 2 < 6 ** 2) & ~np.isfinite(z)
    assert disc.sum() > 40
    sunny = rgb.copy()
    sunny[disc] = 40.0
    le = estimate_light(sunny, z, cam, c2w)
    assert le.source == "light source in frame" and le.confidence >= MIN_CONFIDENCE
    d = np.asarray(le.direction)
    # the frame's top is only a few degrees above the horizon: the documented rule raises a low light to
    # 45 degrees keeping its azimuth
    assert np.degrees(np.arcsin(sun_dir[1])) < 15.0 and d[1] == pytest.approx(np.sin(np.radians(45)), abs=1e-6)
    assert _angle(d * [1, 0, 1], sun_dir * [1, 0, 1]) < 3.0
