"""The pinhole camera model and camera tracks: projection, rays, look_at, interpolation, scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfx.camera import Camera, CameraTrack, default_camera, interpolate_transform, load_camera, look_at
from gvfx.errors import CameraError


@pytest.fixture
def cam() -> Camera:
    return Camera(focal_mm=35.0, haperture_mm=36.0, width=64, height=48)


def _rot_y(deg: float) -> np.ndarray:
    a = math.radians(deg)
    m = np.eye(4)
    m[:3, :3] = [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]
    return m


def test_intrinsics(cam):
    assert cam.fx == pytest.approx(35.0 / 36.0 * 64)
    assert cam.fy == pytest.approx(cam.fx)
    assert (cam.cx, cam.cy) == (32.0, 24.0)
    assert cam.vaperture == pytest.approx(27.0)
    assert cam.hfov_deg == pytest.approx(math.degrees(2 * math.atan(18 / 35)))
    np.testing.assert_allclose(cam.K, [[cam.fx, 0, 32], [0, cam.fy, 24], [0, 0, 1]])


def test_project_known_points(cam):
    uv, z = cam.project(np.array([[0.0, 0.0, -5.0], [1.0, 1.0, -2.0], [0.0, 0.0, 3.0]]))
    np.testing.assert_allclose(uv[0], [32, 24])
    # +X is right, +Y is up: v decreases (rows count down from the top)
    np.testing.assert_allclose(uv[1], [32 + cam.fx / 2, 24 - cam.fy / 2])
    np.testing.assert_allclose(z, [5, 2, -3])  # behind the camera: Z <= 0


@settings(max_examples=50, deadline=None)
@given(st.floats(0, 64), st.floats(0, 48), st.floats(0.05, 1e4),
       st.floats(10, 200), st.floats(0.5, 2.0), st.floats(-5, 5), st.floats(-5, 5))
def test_project_unproject_round_trip(u, v, z, focal, aspect, ox, oy):
    c = Camera(focal, 36.0, 64, 48, pixel_aspect=aspect, center_offset_px=(ox, oy))
    pts = c.unproject(np.array([[u, v]]), np.array([z]))
    assert pts[0, 2] == pytest.approx(-z)
    uv, zz = c.project(pts)
    np.testing.assert_allclose(uv[0], [u, v], atol=1e-6 * max(1.0, z))
    assert zz[0] == pytest.approx(z)


def test_ray_directions(cam):
    rays = cam.ray_directions()
    assert rays.shape == (48, 64, 3)
    np.testing.assert_allclose(rays[..., 2], -1.0)
    # a point at depth Z on each ray projects back to that pixel's centre
    uv, z = cam.project((rays * 7.0).reshape(-1, 3))
    np.testing.assert_allclose(uv.reshape(48, 64, 2), cam.pixel_grid(), atol=1e-9)
    np.testing.assert_allclose(z, 7.0)
    # top-left pixel looks left and up; rays are symmetric about the centre
    assert rays[0, 0, 0] < 0 < rays[0, 0, 1]
    np.testing.assert_allclose(rays[0, 0, :2], -rays[-1, -1, :2])
    assert cam.pixel_grid()[0, 0].tolist() == [0.5, 0.5]


def test_scaled_projects_consistently(cam):
    pts = np.array([[0.3, -0.2, -4.0], [-1.0, 0.5, -9.0]])
    uv, _ = cam.project(pts)
    half = cam.scaled(32, 24)
    uv2, _ = half.project(pts)
    np.testing.assert_allclose(uv2, uv * 0.5)
    # non-uniform scaling (anamorphic squeeze) changes the pixel aspect, not the view
    squeezed = Camera(35, 36, 64, 48, center_offset_px=(2.0, -3.0)).scaled(32, 48)
    assert squeezed.pixel_aspect == pytest.approx(2.0)
    uv3, _ = squeezed.project(pts)
    uv_ref, _ = Camera(35, 36, 64, 48, center_offset_px=(2.0, -3.0)).project(pts)
    np.testing.assert_allclose(uv3, uv_ref * [0.5, 1.0])


def test_look_at():
    m = look_at(np.array([0.0, 2.0, 5.0]), np.array([0.0, 2.0, 0.0]))
    np.testing.assert_allclose(m, np.array([[1, 0, 0, 0], [0, 1, 0, 2], [0, 0, 1, 5], [0, 0, 0, 1.0]]), atol=1e-12)
    m2 = look_at(np.array([3.0, 1.0, 0.0]), np.array([0.0, 0.0, 0.0]))
    fwd = m2[:3, :3] @ [0, 0, -1]
    np.testing.assert_allclose(fwd, -np.array([3.0, 1.0, 0.0]) / math.sqrt(10))
    np.testing.assert_allclose(m2[:3, :3] @ m2[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(m2[:3, :3]) == pytest.approx(1.0)
    assert (m2[:3, :3] @ [1, 0, 0])[1] == pytest.approx(0.0)  # no roll: right stays horizontal
    with pytest.raises(CameraError):
        look_at(np.zeros(3), np.array([0.0, 5.0, 0.0]))
    with pytest.raises(CameraError):
        look_at(np.ones(3), np.ones(3))


def test_interpolate_transform():
    a = _rot_y(0)
    b = _rot_y(90)
    b[:3, 3] = [2, 0, -4]
    mid = interpolate_transform(a, b, 0.5)
    np.testing.assert_allclose(mid[:3, :3], _rot_y(45)[:3, :3], atol=1e-9)
    np.testing.assert_allclose(mid[:3, 3], [1, 0, -2])
    np.testing.assert_allclose(interpolate_transform(a, b, 0.0), a, atol=1e-9)
    np.testing.assert_allclose(interpolate_transform(a, b, 1.0), b, atol=1e-9)
    # the short way round, and through a 180-degree-plus trace<=0 rotation
    c = _rot_y(170)
    d = _rot_y(-170)
    np.testing.assert_allclose(interpolate_transform(c, d, 0.5)[:3, :3], _rot_y(180)[:3, :3], atol=1e-9)


def test_track_sub_frames_and_hold():
    cam = Camera(35, 36, 64, 48)
    m0, m1 = _rot_y(0), _rot_y(60)
    m1[:3, 3] = [0, 0, -6]
    tr = CameraTrack(cam, (10, 12), np.stack([m0, m1]), focal_mm=(35.0, 45.0))
    np.testing.assert_allclose(tr.transform(11)[:3, :3], _rot_y(30)[:3, :3], atol=1e-9)
    np.testing.assert_allclose(tr.position(11.5), [0, 0, -4.5])
    np.testing.assert_allclose(tr.transform(5), m0)
    np.testing.assert_allclose(tr.transform(99), m1)
    assert tr.camera_at(11).focal_mm == pytest.approx(40.0)
    assert tr.camera_at(50).focal_mm == pytest.approx(45.0)
    np.testing.assert_allclose(tr.world_to_camera(12) @ m1, np.eye(4), atol=1e-12)


def test_track_world_round_trip():
    cam = Camera(28, 36, 64, 48)
    tr = CameraTrack.static(cam, [1, 2, 3], look_at(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, -2.0])))
    pts = np.array([[0.0, 0.0, -2.0], [0.5, 0.3, -1.0]])
    uv, z = tr.project_world(pts, 2)
    np.testing.assert_allclose(uv[0], [32, 24], atol=1e-9)
    np.testing.assert_allclose(tr.unproject_world(uv, z, 2), pts, atol=1e-9)


def test_track_validation():
    cam = Camera(35, 36, 64, 48)
    with pytest.raises(CameraError):
        CameraTrack(cam, (1, 2), np.stack([np.eye(4)]))
    with pytest.raises(CameraError):
        CameraTrack(cam, (2, 1), np.stack([np.eye(4)] * 2))
    with pytest.raises(CameraError):
        CameraTrack(cam, (1, 1), np.stack([np.eye(4)] * 2))
    with pytest.raises(CameraError):
        CameraTrack(cam, (), np.zeros((0, 4, 4)))


def test_camera_validation_and_default():
    for bad in [dict(focal_mm=0, haperture_mm=36), dict(focal_mm=35, haperture_mm=-1),
                dict(focal_mm=float("nan"), haperture_mm=36)]:
        with pytest.raises(CameraError):
            Camera(width=64, height=48, **bad)
    with pytest.raises(CameraError):
        Camera(35, 36, 0, 48)
    d = default_camera(1920, 1080)
    assert (d.focal_mm, d.haperture_mm, d.width, d.height) == (35.0, 36.0, 1920, 1080)


def test_load_camera_errors(tmp_path):
    with pytest.raises(CameraError, match="not found"):
        load_camera(tmp_path / "cam.chan", 64, 48)
    other = tmp_path / "cam.fbx"
    other.write_text("")
    with pytest.raises(CameraError, match="unknown camera file type"):
        load_camera(other, 64, 48)
