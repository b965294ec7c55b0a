"""Lens: ST-map identity, radial round trip, overscan canvases and data windows."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.camera import Camera, CameraTrack
from gvfx.engines.base import ElementSpec, Placement, PlateContext
from gvfx.match.lens import (RadialModel, identity_stmap, overscan_camera, overscan_context, overscan_margin,
                             overscan_spec, radial_source_px, remap, stmap_source_px)


def test_identity_stmap_leaves_the_element_unchanged():
    rng = np.random.default_rng(0)
    img = rng.random((30, 50, 4)).astype(np.float32)
    src = stmap_source_px(identity_stmap(50, 30), 0)
    assert np.allclose(remap(img, src), img, atol=1e-5)
    # with a margin the identity map extends linearly: still the identity on the overscan canvas
    big = rng.random((40, 60, 4)).astype(np.float32)
    assert np.allclose(remap(big, stmap_source_px(identity_stmap(50, 30), 5)), big, atol=1e-4)


def test_stmap_origin_is_bottom_left():
    """G = 0 samples the bottom row (Nuke's convention)."""
    img = np.zeros((10, 10), np.float32)
    img[-1, :] = 1.0  # bottom row
    st = np.zeros((10, 10, 2), np.float32)
    st[..., 0] = 0.55
    st[..., 1] = 0.05  # near the bottom in Nuke's coordinates
    assert np.allclose(remap(img, stmap_source_px(st, 0)), 1.0)


def test_radial_distort_then_undistort_round_trips():
    model = RadialModel(k1=-0.08, k2=0.02)
    w, h = 1920, 1080
    v, u = np.mgrid[0:h:37, 0:w:41].astype(np.float64) + 0.5
    p = np.stack([u, v], axis=-1)
    back = model.undistort_px(model.distort_px(p, w, h), w, h)
    assert np.abs(back - p).max() < 0.1
    assert np.abs(model.distort_px(p, w, h) - p).max() > 20  # it does distort (corners move)


def test_radial_redistortion_moves_image_content_to_the_distorted_position():
    model = RadialModel(k1=0.1)
    w, h = 160, 90
    img = np.zeros((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    cu, cv = 140.0, 75.0  # an undistorted blob near a corner
    img[:] = np.exp(-((xx - cu) ** 2 + (yy - cv) ** 2) / (2 * 1.5 ** 2))
    out = remap(img, radial_source_px(model, w, h, 0))
    expect = model.distort_px(np.array([cu, cv]), w, h)
    c = np.array([(out * xx).sum(), (out * yy).sum()]) / out.sum()
    assert np.abs(c - expect).max() < 0.3


def test_overscan_camera_keeps_every_display_ray():
    cam = Camera(35.0, 36.0, 200, 100, center_offset_px=(3.0, -2.0))
    big = overscan_camera(cam, 10)
    assert (big.width, big.height) == (220, 120)
    assert big.fx == pytest.approx(cam.fx) and big.fy == pytest.approx(cam.fy)
    assert big.cx == pytest.approx(cam.cx + 10) and big.cy == pytest.approx(cam.cy + 10)
    assert np.allclose(big.ray_directions()[10:-10, 10:-10], cam.ray_directions())
    assert overscan_margin(2048, None) == 102 and overscan_margin(2048, 0) == 0


def test_overscan_context_and_spec():
    cam = Camera(35.0, 36.0, 40, 20)
    ctx = PlateContext(frames=[1], camera=CameraTrack.static(cam, [1]), width=40, height=20,
                       depth=lambda f: np.arange(800, dtype=np.float32).reshape(20, 40))
    big = overscan_context(ctx, 4)
    d = big.depth(1)
    assert d.shape == (28, 48) and np.array_equal(d[4:-4, 4:-4], ctx.depth(1)) and d[0, 0] == 0.0
    spec = ElementSpec("a", "fire", placement=Placement(screen_norm=(0.5, 0.25)))
    assert overscan_spec(spec, 4, 40, 20).placement.screen == (24.0, 9.0)
