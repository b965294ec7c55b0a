"""The demo plate: exact depth, determinism, grain, camera motion, written EXRs, the reference image."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gvfx.demo.scene import (DEFAULT_FIRST_FRAME, GRAIN_SIGMA, DemoScene, default_scene, demo_camera,
                             render_plate_frame, write_demo_plate)

W, H, N = 192, 108, 5


@pytest.fixture(scope="module")
def scene() -> DemoScene:
    return default_scene()


@pytest.fixture(scope="module")
def track(scene):
    return demo_camera(scene, W, H, N)


@pytest.fixture(scope="module")
def frames(scene, track):
    """Clean (no grain) renders of every frame: {frame: (rgb, z)}."""
    return {f: render_plate_frame(scene, track, f, grain=False) for f in track.frames}


def _pixel_ray(track, frame, u_px, v_px):
    """World origin and direction (camera-Z scaled to 1) of a pixel centre, from gvfx.camera alone."""
    uv = np.array([[u_px + 0.5, v_px + 0.5]])
    p1 = track.unproject_world(uv, np.array([1.0]), frame)[0]
    o = track.position(frame)
    return o, p1 - o


def _pixel_of(track, frame, point):
    uv, z = track.project_world(np.asarray([point], dtype=np.float64), frame)
    return int(uv[0, 0]), int(uv[0, 1]), float(z[0])


def _on_box(p, box, tol):
    """Points (M, 3) on the surface of a box (inside its slightly grown bounds, on some face)."""
    local = (p - np.asarray(box.center)) @ box.rot
    h = np.asarray(box.half)
    inside = np.all(np.abs(local) <= h + tol[:, None], axis=1)
    on_face = np.any(np.abs(np.abs(local) - h) <= tol[:, None], axis=1)
    return inside & on_face


def test_frames_and_lens(scene, track):
    assert track.frames == tuple(range(DEFAULT_FIRST_FRAME, DEFAULT_FIRST_FRAME + N))
    assert track.camera.focal_mm == 35.0 and track.camera.haperture_mm == 36.0
    assert demo_camera(scene, W, H, [7, 9]).frames == (7, 9)


def test_outputs_shapes_and_plausible_values(frames):
    rgb, z = frames[DEFAULT_FIRST_FRAME]
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.float32
    assert z.shape == (H, W) and z.dtype == np.float32
    finite = np.isfinite(z)
    assert 0.05 < (~finite).mean() < 0.3  # some sky above the wall
    assert np.all(z[finite] > 1.0) and np.all(z[finite] < 12.0)
    med = float(np.median(rgb[finite]))
    assert 0.08 < med < 0.4  # midtones around grey 0.18
    sky = rgb[~finite]
    assert sky.min() > 0.2 and sky.max() < 4.0
    assert np.all(sky[:, 2] > sky[:, 0])  # a blue sky


def test_every_pixel_lies_on_a_surface(scene, track, frames):
    """Unproject each pixel with its rendered Z: it must be on the ground, the wall or a box."""
    for f in (track.frames[0], track.frames[-1]):
        _, z = frames[f]
        v, u = np.nonzero(np.isfinite(z))
        p = track.unproject_world(np.stack([u + 0.5, v + 0.5], axis=1), z[v, u].astype(np.float64), f)
        tol = 2e-6 * z[v, u] + 1e-5
        ok = (np.abs(p[:, 1]) < tol) | ((np.abs(p[:, 2] - scene.wall_z_m) < tol) & (p[:, 1] <= scene.wall_height_m))
        for box in scene.boxes():
            ok |= _on_box(p, box, tol)
        assert ok.all(), f"frame {f}: {(~ok).sum()} pixels float off every surface"


def test_depth_matches_analytic_ray_plane_distance(scene, track, frames):
    f = track.frames[2]
    _, z = frames[f]
    # the ground at the floor point
    u, v, _ = _pixel_of(track, f, scene.floor_point)
    o, d = _pixel_ray(track, f, u, v)
    assert z[v, u] == pytest.approx(-o[1] / d[1], rel=1e-5)
    # the wall, half-way up, straight behind the table
    u, v, _ = _pixel_of(track, f, (0.0, 1.2, scene.wall_z_m))
    o, d = _pixel_ray(track, f, u, v)
    assert z[v, u] == pytest.approx((scene.wall_z_m - o[2]) / d[2], rel=1e-5)
    # the image centre pixel: compare with the nearest analytic hit among all surfaces
    u, v = W // 2, H // 2
    o, d = _pixel_ray(track, f, u, v)
    cands = [-o[1] / d[1]]
    for box in scene.boxes():
        lo, ld = (o - np.asarray(box.center)) @ box.rot, d @ box.rot
        t1, t2 = (-np.asarray(box.half) - lo) / ld, (np.asarray(box.half) - lo) / ld
        tn, tf = np.minimum(t1, t2).max(), np.maximum(t1, t2).min()
        if tn <= tf and tn > 0:
            cands.append(tn)
    assert z[v, u] == pytest.approx(min(cands), rel=1e-5)


def test_sky_is_infinite_above_the_wall(scene, track, frames):
    f = track.frames[0]
    _, z = frames[f]
    o, d = _pixel_ray(track, f, W // 2, 0)
    height_at_wall = o[1] + (scene.wall_z_m - o[2]) / d[2] * d[1]
    assert height_at_wall > scene.wall_height_m  # the top row looks over the wall...
    assert np.isinf(z[0, W // 2])  # ...into the sky
    assert np.isfinite(z[-1]).all()  # the bottom row is all ground


def test_table_top_unprojects_to_table_height(scene, track, frames):
    for f in track.frames:
        _, z = frames[f]
        for point in (scene.table_top_center, scene.table_edge_point):
            u, v, depth = _pixel_of(track, f, point)
            assert 0 <= u < W and 0 <= v < H
            p = track.unproject_world(np.array([[u + 0.5, v + 0.5]]), np.array([float(z[v, u])]), f)[0]
            assert p[1] == pytest.approx(scene.table_top_height_m, abs=0.01)
            assert z[v, u] == pytest.approx(depth, rel=0.03)


def test_floor_point_visible_all_shot(scene, track, frames):
    for f in track.frames:
        u, v, depth = _pixel_of(track, f, scene.floor_point)
        assert 0 <= u < W and 0 <= v < H
        assert frames[f][1][v, u] == pytest.approx(depth, rel=0.02)


def test_geometry_matches_the_brief(scene, track):
    assert 0.8 <= scene.table_top_height_m <= 0.9
    dist = np.linalg.norm(track.position(track.frames[0]) - np.asarray(scene.table_top_center))
    assert 3.0 <= dist <= 5.0
    for f in track.frames:
        assert 6.0 <= scene.wall_distance_m(track.position(f)) <= 8.0
        assert 1.5 <= track.position(f)[1] <= 1.7


def test_camera_moves(track, frames):
    pos = np.array([track.position(f) for f in track.frames])
    steps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert np.all(steps > 0.01)
    assert np.linalg.norm(pos[-1] - pos[0]) > 0.5
    z0, z1 = frames[track.frames[0]][1], frames[track.frames[-1]][1]
    both = np.isfinite(z0) & np.isfinite(z1)
    assert np.mean(np.abs(z0[both] - z1[both]) > 0.05) > 0.5


def test_deterministic_with_seeded_grain(scene, track, frames):
    f = track.frames[1]
    rgb_a, z_a = render_plate_frame(scene, track, f)
    rgb_b, z_b = render_plate_frame(scene, track, f)
    assert np.array_equal(rgb_a, rgb_b) and np.array_equal(z_a, z_b)
    clean, z_clean = frames[f]
    assert np.array_equal(z_a, z_clean)
    grain = rgb_a - clean
    assert np.allclose(grain.reshape(-1, 3).std(axis=0), GRAIN_SIGMA, rtol=0.08)
    assert np.allclose(grain.reshape(-1, 3).mean(axis=0), 0.0, atol=3e-4)
    other = render_plate_frame(scene, track, track.frames[2])[0] - frames[track.frames[2]][0]
    assert abs(np.corrcoef(grain.ravel(), other.ravel())[0, 1]) < 0.02  # a new grain every frame


def test_textures_have_trackable_detail(frames):
    rgb, z = frames[DEFAULT_FIRST_FRAME]
    lum = rgb.mean(axis=2)
    gy, gx = np.gradient(lum)
    mag = np.hypot(gx, gy)[np.isfinite(z)]
    assert np.mean(mag > 0.01) > 0.2  # plenty of gradients, not flat colours


def test_write_demo_plate_reads_back(tmp_path):
    oiio = pytest.importorskip("OpenImageIO")
    calls = []
    pattern, track, scene = write_demo_plate(tmp_path / "plate", 64, 36, [1, 2],
                                             progress=lambda d, t, m: calls.append((d, t)))
    assert pattern.endswith("plate.####.exr")
    assert calls == [(1, 2), (2, 2)]
    path = tmp_path / "plate" / "plate.0002.exr"
    buf = oiio.ImageBuf(str(path))
    spec = buf.spec()
    assert list(spec.channelnames) == ["R", "G", "B", "A", "Z"]
    px = buf.get_pixels(oiio.FLOAT)
    rgb, z = render_plate_frame(scene, track, 2)
    assert np.array_equal(px[:, :, 4], z)  # Z is written as float32
    assert np.allclose(px[:, :, :3], rgb, rtol=2e-3, atol=1e-3)  # RGB as half
    assert np.all(px[:, :, 3] == 1.0)
    assert spec.get_float_attribute("gvfx:focal_mm") == 35.0
    m = np.array(json.loads(spec.get_string_attribute("gvfx:cam_to_world")))
    assert np.allclose(m, track.transform(2), atol=1e-8)


def test_reference_png_is_the_generated_ball():
    from PIL import Image

    from gvfx.demo.make_reference import REFERENCE_PATH, make_reference
    assert REFERENCE_PATH.stat().st_size < 100_000
    with Image.open(REFERENCE_PATH) as im:
        assert im.mode == "RGBA" and im.size == (256, 256)
        pixels = np.asarray(im)
    assert np.array_equal(pixels, make_reference(256))
    alpha = pixels[:, :, 3]
    assert alpha[0, 0] == 0 and alpha[128, 128] == 255
    assert 0.6 < (alpha == 255).mean() < 0.8  # a disc: pi/4 of the square, less the margin
    assert len(np.unique(pixels[alpha == 255][:, :3] // 64, axis=0)) >= 5  # several stripe colours
