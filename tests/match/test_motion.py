"""Camera-induced motion vectors and vector blur."""

from __future__ import annotations

import numpy as np

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.match.motion import camera_motion, vector_blur


def _track():
    cam = Camera(35.0, 36.0, 160, 90)
    frames = (1, 2, 3)
    mats = np.stack([look_at(np.array([0.1 * i, 1.5 + 0.02 * i, 5.0]), np.array([0.05 * i, 1.0, 0.0]))
                     for i in range(3)])
    return CameraTrack(cam, frames, mats)


def test_static_world_point_motion_matches_projection():
    tr = _track()
    world = np.array([[0.3, 1.1, -0.4], [-0.6, 0.8, 0.5], [0.0, 1.4, -1.0]])
    z = np.full((90, 160), np.inf, np.float32)
    uv0, z0 = tr.project_world(world, 1)
    uv1, _ = tr.project_world(world, 2)
    px = np.floor(uv0).astype(int)
    centres = px + 0.5
    # put each point's depth at the pixel it lands in; the expected motion is of the pixel centre's point
    for (x, y), d in zip(px, z0):
        z[y, x] = d
    mv = camera_motion(z, tr, 1)
    pts = tr.unproject_world(centres, z0, 1)
    exp = tr.project_world(pts, 2)[0] - centres
    for (x, y), e, raw in zip(px, exp, uv1 - uv0):
        assert abs(mv[y, x, 0] - e[0]) < 0.1 and abs(-mv[y, x, 1] - e[1]) < 0.1  # V is up
        assert abs(mv[y, x, 0] - raw[0]) < 0.1  # and the point's own displacement, to the pixel's precision
    assert np.abs(mv[np.isinf(z)]).max() == 0


def test_last_frame_holds_the_previous_velocity():
    tr = _track()
    z = np.full((90, 160), 4.0, np.float32)
    mv = camera_motion(z, tr, 3)
    assert np.abs(mv).max() > 0.5


def test_vector_blur_smears_along_the_vector_and_keeps_energy():
    rgba = np.zeros((32, 64, 4), np.float32)
    rgba[14:18, 30:34] = 1.0
    mv = np.zeros((32, 64, 2), np.float32)
    mv[..., 0] = 8.0  # 8 px per frame to the right
    out = vector_blur(rgba, mv, 1.0)
    cols = np.flatnonzero(out[16, :, 3] > 0.01)
    assert cols.min() <= 27 and cols.max() >= 36  # smeared over ~8 px horizontally
    assert np.flatnonzero(out[:, 32, 3] > 0.01).tolist() == [14, 15, 16, 17]  # not vertically
    assert abs(out[..., 3].sum() - rgba[..., 3].sum()) / rgba[..., 3].sum() < 0.05
    assert np.array_equal(vector_blur(rgba, mv, 0.0), rgba)
