"""Shadows on a flat ground plane: cast away from the light, darkest at contact."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.camera import Camera, look_at
from gvfx.match.shadow import estimate_light_dir, shadow_matte

W, H = 240, 160


@pytest.fixture(scope="module")
def ground_scene():
    """Camera 2 m up looking at the ground; a 0.4 m box standing on the ground at the origin."""
    cam = Camera(30.0, 36.0, W, H)
    c2w = look_at(np.array([0.0, 2.0, 4.0]), np.array([0.0, 0.0, 0.0]))
    rays = cam.ray_directions()  # camera space, z = -1
    wr = rays @ c2w[:3, :3].T
    o = c2w[:3, 3]
    t = -o[1] / wr[..., 1]  # ray hits y = 0
    pts = o + t[..., None] * wr
    plate_z = np.where(t > 0, t, np.inf).astype(np.float32)  # camera Z = t because ray z = -1
    # the element: a box x, z in [-0.2, 0.2], y in [0, 0.4]: ray-march a few depths per pixel
    el_z = np.full((H, W), np.inf, np.float32)
    for s in np.linspace(0.5, 8.0, 1500):
        p = o + s * wr
        inside = (np.abs(p[..., 0]) <= 0.2) & (np.abs(p[..., 2]) <= 0.2) & (p[..., 1] >= 0) & (p[..., 1] <= 0.4)
        el_z = np.where(inside & ~np.isfinite(el_z), s, el_z)
    alpha = np.isfinite(el_z).astype(np.float32)
    return cam, c2w, plate_z, el_z, alpha, pts


def test_shadow_falls_opposite_the_light(ground_scene):
    cam, c2w, plate_z, el_z, alpha, pts = ground_scene
    light = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)  # from +X, 45 degrees up
    sh = shadow_matte(alpha, el_z, plate_z, cam, c2w, light, strength=1.0, contact_strength=0.0, softness=0.0)
    vis = sh * (alpha == 0)  # shadow seen on the ground (not behind the box)
    assert vis.sum() > 50
    c = (vis[..., None] * pts).sum((0, 1)) / vis.sum()
    # centroid displaced from the contact point (origin) along -light projected on the ground (-X)
    assert c[0] < -0.2 and abs(c[2]) < 0.15
    assert sh.max() <= 1.0 and sh.min() >= 0.0
    # the other way round follows the light
    sh2 = shadow_matte(alpha, el_z, plate_z, cam, c2w, np.array([-1.0, 1.0, 0.0]) / np.sqrt(2), strength=1.0,
                       contact_strength=0.0, softness=0.0)
    c2 = ((sh2 * (alpha == 0))[..., None] * pts).sum((0, 1)) / (sh2 * (alpha == 0)).sum()
    assert c2[0] > 0.2


def test_contact_darkening_is_strongest_at_contact(ground_scene):
    cam, c2w, plate_z, el_z, alpha, pts = ground_scene
    sh = shadow_matte(alpha, el_z, plate_z, cam, c2w, np.array([0.0, 1.0, 0.0]), strength=0.0,
                      contact_strength=1.0, contact_radius=0.15)
    ground = alpha == 0
    dist = np.maximum(np.abs(pts[..., 0]), np.abs(pts[..., 2])) - 0.2  # distance to the box footprint
    # the camera side: the matte sees the box's front faces only (its back is hidden), so contact is
    # judged where the element's visible surface meets the ground
    front = pts[..., 2] > 0.0
    near = ground & front & (dist > 0) & (dist < 0.03)
    mid = ground & front & (dist > 0.15) & (dist < 0.2)
    far = ground & (dist > 0.6)
    assert sh[near].mean() > 0.6
    assert sh[near].mean() > sh[mid].mean() > sh[far].mean()
    assert sh[far].max() < 0.01


def test_no_element_no_shadow(ground_scene):
    cam, c2w, plate_z, *_ = ground_scene
    empty = np.full((H, W), np.inf, np.float32)
    assert shadow_matte(np.zeros((H, W), np.float32), empty, plate_z, cam, c2w, np.array([0, 1.0, 0])).max() == 0


def test_light_estimate_points_at_the_bright_sky(ground_scene):
    cam, c2w, plate_z, *_ = ground_scene
    rgb = np.full((H, W, 3), 0.1, np.float32)
    rgb[:20, 200:] = 20.0  # a bright patch top-right
    d = estimate_light_dir(rgb, None, cam, c2w)
    assert d[0] > 0.2 and d[1] > np.sin(np.radians(14))
    assert np.isclose(np.linalg.norm(d), 1.0)


def test_contact_scales_with_each_part_and_its_opacity(ground_scene):
    """Many faint, thin parts spread over the ground (rain-like) reach only around themselves, weighted by
    their opacity: the old whole-element radius darkened nearly every ground pixel."""
    cam, c2w, plate_z, *_ = ground_scene
    rng = np.random.default_rng(2)
    alpha = np.zeros((H, W), np.float32)
    el_z = np.full((H, W), np.inf, np.float32)
    for _ in range(150):  # 1 px wide streaks, 6 px long, 0.3 opacity, just above the ground
        y, x = rng.integers(60, H - 8), rng.integers(0, W)
        alpha[y:y + 6, x] = 0.3
        el_z[y:y + 6, x] = plate_z[y:y + 6, x] * 0.999  # ~4 mm above the ground
    sh = shadow_matte(alpha, el_z, plate_z, cam, c2w, np.array([0.0, 1.0, 0.0]), strength=0.0,
                      contact_strength=0.8, contact_radius=0.15)
    assert (sh > 0.5).mean() == 0.0  # a 0.3-opacity part cannot darken by more than 0.8 x 0.3
    assert sh.max() <= 0.8 * 0.3 + 1e-3
    assert (sh > 0.05).mean() < 0.05  # each reaches a few pixels around itself
    assert (sh[alpha > 0] > 0.1).mean() > 0.5  # but it is there, under the parts
