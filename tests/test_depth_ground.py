"""``depth: ground``: a weight-free ground plane from the camera height and the horizon's row, checked
against an independent ray/plane intersection, and wired through the job and the plate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gvfx.camera import Camera, look_at
from gvfx.depth_ground import ground_depth, tilt_from_horizon
from gvfx.errors import DepthError, GvfxError, JobError
from gvfx.exr import write_layers
from gvfx.job import parse_job
from gvfx.plate import open_plate


def _true_ground_z(cam: Camera, c2w: np.ndarray) -> np.ndarray:
    """Camera Z of the world ground y = 0 per pixel (inf where the ray misses it), by ray casting."""
    f_px = cam.focal_mm / cam.haperture_mm * cam.width
    u = (np.arange(cam.width) + 0.5 - cam.width / 2) / f_px
    v = -(np.arange(cam.height) + 0.5 - cam.height / 2) / f_px
    dx, dy = np.meshgrid(u, v)
    d = np.stack([dx, dy, -np.ones_like(dx)], -1) @ c2w[:3, :3].T
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d[..., 1] < 0, -c2w[1, 3] / d[..., 1], np.inf)
    return t  # the camera-space ray has z = -1, so the ray parameter is Z


@pytest.mark.parametrize("eye,target", [((0.0, 1.6, 0.0), (0.0, 1.6, -10.0)),       # level
                                        ((-1.0, 1.5, 2.0), (0.0, 1.0, -7.0)),        # tilted, panned
                                        ((0.3, 4.0, 0.0), (0.5, 0.0, -6.0))])        # looking down
def test_ground_depth_matches_ray_casting(eye, target):
    cam = Camera(32.0, 36.0, 160, 90)
    c2w = look_at(np.array(eye), np.array(target))
    forward = -c2w[:3, 2]
    tilt = math.asin(-forward[1])
    f_px = cam.focal_mm / cam.haperture_mm * cam.width
    horizon = (cam.height / 2 - f_px * math.tan(tilt)) / cam.height
    assert tilt_from_horizon(cam, horizon) == pytest.approx(tilt)
    z = ground_depth(cam, eye[1], horizon)
    truth = _true_ground_z(cam, c2w)
    assert z.shape == (90, 160) and z.dtype == np.float32
    seen = np.isfinite(truth) & (truth < 1e4)
    assert np.array_equal(np.isfinite(z) & (z < 1e4), seen)
    np.testing.assert_allclose(z[seen], truth[seen], rtol=1e-4)


def test_ground_depth_bad_values_are_clear():
    cam = Camera(32.0, 36.0, 16, 9)
    with pytest.raises(DepthError, match="height_m"):
        ground_depth(cam, 0.0, 0.5)
    with pytest.raises(DepthError, match="horizon"):
        ground_depth(cam, 1.6, float("nan"))


def _still(tmp_path: Path) -> Path:
    rgba = np.full((18, 32, 4), 0.2, np.float32)
    return write_layers(tmp_path / "still.exr", rgba=rgba)


def test_job_ground_depth_reaches_the_plate(tmp_path):
    _still(tmp_path)
    job = parse_job({"plate": {"path": "still.exr", "frames": "1-2"},
                     "depth": {"source": "ground", "height_m": 1.6, "horizon": 0.4},
                     "camera": {"focal_mm": 35.0}, "elements": [{"name": "a", "effect": "sparks"}]}, tmp_path)
    plate = open_plate(job)
    z = plate.depth(1)
    np.testing.assert_array_equal(z, ground_depth(plate.camera.camera_at(1), 1.6, 0.4))
    assert np.isinf(z[:7]).all() and np.isfinite(z[8:]).all()  # sky above the horizon row 7.2


def test_ground_needs_its_fields_and_no_depth_names_it(tmp_path):
    _still(tmp_path)
    with pytest.raises(JobError, match="height_m and depth.horizon"):
        parse_job({"plate": {"path": "still.exr"}, "depth": {"source": "ground", "height_m": 1.6},
                   "elements": [{"name": "a", "effect": "sparks"}]}, tmp_path)
    plate = open_plate(parse_job({"plate": {"path": "still.exr", "frames": "1-1"},
                                  "elements": [{"name": "a", "effect": "sparks"}]}, tmp_path))
    with pytest.raises(GvfxError, match="no depth layer") as exc:
        plate.depth(1)
    assert "source: ground" in str(exc.value)
