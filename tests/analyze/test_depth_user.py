"""The ``user`` depth back-end: a depth pass on disk, converted from its convention to metric Z."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.analyze.depth_backends import DEPTH_BACKENDS, DepthBackend, get_depth_backend
from gvfx.analyze.solve import Solve
from gvfx.camera import CameraTrack
from gvfx.demo.scene import default_scene, demo_camera, render_plate_frame
from gvfx.depth import ray_lengths
from gvfx.errors import InputError, ResolutionMismatchError
from gvfx.exr import write_exr

W, H = 64, 36
FRAMES = [1001, 1002]


def _solve(track: CameraTrack) -> Solve:
    return Solve(track=track, points=np.zeros((0, 3)), point_colors=None, point_errors=np.zeros(0),
                 observations={}, registered=list(track.frames), interpolated=[], focal_mm=35.0,
                 focal_estimated=False, static="locked_off", scale_source="test", reprojection_error_px=0.0)


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """A tiny demo plate with its true Z, and a 'distance' depth pass (sky = 0) written as EXRs."""
    folder = tmp_path_factory.mktemp("user_depth")
    scene = default_scene()
    track = demo_camera(scene, W, H, FRAMES)
    truth = {}
    for f in FRAMES:
        _, z = render_plate_frame(scene, track, f, grain=False)
        truth[f] = z
        dist = np.where(np.isfinite(z), z * ray_lengths(track.camera_at(f)), 0.0).astype(np.float32)
        write_exr(folder / f"depth.{f:04d}.exr", {"Z": dist}, frame=f)
    return folder, track, truth


def test_registry_names_and_unknown():
    assert set(DEPTH_BACKENDS) == {"sfm", "estimator", "user"}
    be = get_depth_backend("user")
    assert isinstance(be, DepthBackend) and be.name == "user"
    with pytest.raises(InputError, match="sfm, estimator, user"):
        get_depth_backend("lidar")


def test_distance_pass_converts_to_z(shot):
    folder, track, truth = shot
    be = get_depth_backend("user")
    seen = []
    out = list(be.estimate_sequence(FRAMES, lambda f: None, _solve(track), pattern=str(folder / "depth.####.exr"),
                                    convention="distance", progress=lambda d, t, m: seen.append((d, t))))
    assert [f for f, _, _ in out] == FRAMES and seen == [(1, 2), (2, 2)]
    for f, z, conf in out:
        zt = truth[f]
        assert z.shape == (H, W) and z.dtype == np.float32
        sky = ~np.isfinite(zt)
        assert sky.any() and np.isinf(z[sky]).all() and (conf[sky] == 0).all()
        assert (conf[~sky] == 1).all()
        np.testing.assert_allclose(z[~sky], zt[~sky], rtol=1e-5)
        # the conversion mattered: off-axis the stored distance is ~16% longer than Z (35 mm on a 36 mm back)
        corner = ray_lengths(track.camera_at(f))[-1, 0]
        assert 1.15 < corner < 1.17 and np.isfinite(z[-1, 0])
        np.testing.assert_allclose(z[-1, 0] * corner, zt[-1, 0] * corner, rtol=1e-5)


def test_resolution_mismatch_names_file_and_frame(shot):
    folder, _, _ = shot
    big = demo_camera(default_scene(), W * 2, H * 2, FRAMES)
    be = get_depth_backend("user")
    with pytest.raises(ResolutionMismatchError) as err:
        next(be.estimate_sequence(FRAMES, lambda f: None, _solve(big), pattern=str(folder / "depth.####.exr"),
                                  convention="distance"))
    assert "depth.1001.exr" in str(err.value) and "frame 1001" in str(err.value)


def test_missing_pattern_is_a_clear_error():
    be = get_depth_backend("user")
    track = demo_camera(default_scene(), W, H, FRAMES)
    with pytest.raises(InputError, match="needs a depth pass"):
        next(be.estimate_sequence(FRAMES, lambda f: None, _solve(track), convention="z"))
