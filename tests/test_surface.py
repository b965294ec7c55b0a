"""Tests for gvfx.surface: ground plane fit, depth unprojection, the depth surface used for collisions."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.camera import Camera, look_at
from gvfx.errors import PlacementError
from gvfx.surface import DepthSurface, Plane, fit_ground_plane, raycast_depth, surface_at_pixel, unproject_depth

FLOOR = Plane(np.array([0.0, 1.0, 0.0]), 0.0)  # y = 0
WALL = Plane(np.array([0.0, 0.0, 1.0]), 4.0)  # z = -4


@pytest.fixture
def scene():
    cam = Camera(30.0, 36.0, 160, 90)
    m = look_at(np.array([0.5, 1.6, 4.0]), np.array([0.0, 0.6, -1.0]))
    z = raycast_depth(cam, m, planes=(FLOOR, WALL))
    return cam, m, z


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    c = np.einsum("...i,...i->...", a, b) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def test_ground_plane_with_outliers_and_a_table():
    rng = np.random.default_rng(3)
    tilt = np.radians(4.0)
    n_true = np.array([np.sin(tilt), np.cos(tilt), 0.0])
    xz = rng.uniform(-5, 5, (1400, 2))
    ground = np.stack([xz[:, 0], -(n_true[0] * xz[:, 0] + 0.3) / n_true[1], xz[:, 1]], axis=1)
    ground += rng.normal(0, 0.01, ground.shape)
    table = np.stack([rng.uniform(-1, 1, 300), np.full(300, 0.8), rng.uniform(-1, 1, 300)], axis=1)
    outliers = rng.uniform(-5, 5, (730, 3))  # 30% of all points
    pts = np.concatenate([ground, table, outliers])
    plane = fit_ground_plane(pts, (0, 1, 0), seed=1)
    assert _angle_deg(plane.normal, n_true) < 0.5
    assert abs(plane.offset - 0.3) < 0.02
    assert 0.5 < plane.inlier_ratio < 0.7
    assert np.abs(plane.distance(plane.project(pts[:5]))).max() < 1e-9


def test_unproject_depth_world_points_lie_on_the_scene(scene):
    cam, m, z = scene
    pts = unproject_depth(z, cam, m, stride=3)
    assert len(pts) == np.isfinite(z[::3, ::3]).sum()
    on = np.minimum(np.abs(FLOOR.distance(pts)), np.abs(WALL.distance(pts)))
    assert on.max() < 1e-4


def test_depth_surface_normals_and_signed_distance(scene):
    cam, m, z = scene
    surf = DepthSurface(z, cam, m)
    rng = np.random.default_rng(0)
    # floor points lifted by known heights, inside the view
    base = np.stack([rng.uniform(-1.0, 1.0, 200), np.zeros(200), rng.uniform(-2.5, 1.0, 200)], axis=1)
    h = rng.uniform(-0.03, 0.2, 200)
    pts = base + h[:, None] * FLOOR.normal
    q = surf.query(pts)
    ok = np.isfinite(q.signed_distance)
    assert ok.mean() > 0.9
    # along the view ray: the ray from the camera through p meets the floor at s; distance |s - p|
    eye = m[:3, 3]
    d = pts - eye
    t = -(eye[1]) / d[:, 1]
    truth = (t - 1.0) * np.linalg.norm(d, axis=1)
    assert np.abs(q.signed_distance[ok] - truth[ok]).max() < 0.01
    assert np.abs(q.plane_distance[ok] - h[ok]).max() < 0.01
    interior = ok & (np.abs(q.signed_distance) < 5)
    assert _angle_deg(q.normal[interior], FLOOR.normal).max() < 2.0
    wall_pts = np.array([[0.2, 1.5, -3.9], [-0.5, 2.0, -4.1]])
    qw = surf.query(wall_pts)
    assert _angle_deg(qw.normal, WALL.normal).max() < 2.0
    assert qw.signed_distance[0] > 0 > qw.signed_distance[1]


def test_off_image_is_nan_unless_a_ground_plane_answers(scene):
    cam, m, z = scene
    far_left = np.array([[-50.0, 0.5, 0.0]])
    assert np.isnan(DepthSurface(z, cam, m).signed_distance(far_left)[0])
    assert DepthSurface(z, cam, m, ground=FLOOR).signed_distance(far_left)[0] == pytest.approx(0.5)


def test_surface_at_pixel_and_placement_errors(scene):
    cam, m, z = scene
    uv = (80.5, 80.5)
    p, n = surface_at_pixel(z, cam, m, uv)
    assert abs(p[1]) < 1e-4 and _angle_deg(n, FLOOR.normal) < 1.0
    proj, _ = cam.project((np.linalg.inv(m) @ np.append(p, 1))[None, :3])
    assert np.allclose(proj[0], uv, atol=1e-6)
    with pytest.raises(PlacementError, match="outside"):
        surface_at_pixel(z, cam, m, (200, 10))
    sky = np.full_like(z, np.inf)
    with pytest.raises(PlacementError, match="sky"):
        surface_at_pixel(sky, cam, m, (10, 10))


def test_ground_fit_is_not_tilted_by_the_feet_of_walls_and_boxes():
    rng = np.random.default_rng(5)
    n = 3000
    ground = np.stack([rng.uniform(-4, 4, n), rng.normal(0, 0.002, n), rng.uniform(-4, 1, n)], axis=1)
    # a wall at z = -4 and a box side at x = 2, densely sampled down to the floor (as a plate sees them)
    wall = np.stack([rng.uniform(-4, 4, 2500), rng.uniform(0, 2.5, 2500), np.full(2500, -4.0)], axis=1)
    side = np.stack([np.full(1500, 2.0), rng.uniform(0, 0.6, 1500), rng.uniform(-1, 1, 1500)], axis=1)
    plane = fit_ground_plane(np.concatenate([ground, wall, side]), (0, 1, 0), seed=2)
    assert _angle_deg(plane.normal, np.array([0.0, 1.0, 0.0])) < 0.05
    assert abs(plane.offset) < 0.001
