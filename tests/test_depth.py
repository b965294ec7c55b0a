"""Depth conventions against a synthetic scene: a tilted plane at known depth seen by a known camera."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.camera import Camera
from gvfx.depth import CONVENTIONS, Depth, check_depth_matches, from_z
from gvfx.errors import DepthError, ResolutionMismatchError

W, H = 48, 32
SKY_ROWS = 5  # the top rows see sky


@pytest.fixture
def camera() -> Camera:
    return Camera(focal_mm=24.0, haperture_mm=36.0, width=W, height=H)


@pytest.fixture
def scene(camera):
    """Ground-truth Z and ray distance of the plane n.p = d (camera space), sky in the top rows.

    Distance is computed independently of Z: intersect the *unit* ray direction with the plane.
    """
    n = np.array([0.15, 0.25, -1.0])
    d = 6.0
    v, u = np.mgrid[0:H, 0:W] + 0.5
    dirs = np.stack([(u - camera.cx) / camera.fx, -(v - camera.cy) / camera.fy, -np.ones_like(u)], -1)
    unit = dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)
    dist = d / (unit @ n)
    z = -unit[..., 2] * dist
    z[:SKY_ROWS] = np.inf
    dist[:SKY_ROWS] = np.inf
    assert np.isfinite(z[SKY_ROWS:]).all() and (z[SKY_ROWS:] > 0).all()
    return z, dist


def test_z_convention(camera, scene):
    z, _ = scene
    out = Depth(z.astype(np.float32), "z").to_z(camera)
    assert out.dtype == np.float32 and out.shape == (H, W)
    np.testing.assert_allclose(out[SKY_ROWS:], z[SKY_ROWS:], rtol=1e-6)
    assert np.isinf(out[:SKY_ROWS]).all()


def test_z_in_centimetres_with_zero_sky(camera, scene):
    z, _ = scene
    cm = np.where(np.isinf(z), 0.0, z * 100).astype(np.float32)
    out = Depth(cm, "z", scale=0.01).to_z(camera)
    np.testing.assert_allclose(out[SKY_ROWS:], z[SKY_ROWS:], rtol=1e-5)
    assert np.isinf(out[:SKY_ROWS]).all()


def test_distance_convention(camera, scene):
    z, dist = scene
    assert not np.allclose(dist[SKY_ROWS:], z[SKY_ROWS:])  # off-axis pixels differ
    out = Depth(dist.astype(np.float32), "distance").to_z(camera)
    np.testing.assert_allclose(out[SKY_ROWS:], z[SKY_ROWS:], rtol=1e-5)
    assert np.isinf(out[:SKY_ROWS]).all()
    # the centre ray is the axis: distance == Z there (W, H even: check a pixel next to the centre)
    assert abs(dist[H // 2, W // 2] / z[H // 2, W // 2] - 1) < 1e-3


def test_inverse_z_convention(camera, scene):
    z, _ = scene
    inv = np.where(np.isinf(z), 0.0, 1.0 / z).astype(np.float32)
    out = Depth(inv, "inverse_z").to_z(camera)
    np.testing.assert_allclose(out[SKY_ROWS:], z[SKY_ROWS:], rtol=1e-5)
    assert np.isinf(out[:SKY_ROWS]).all()


@pytest.mark.parametrize("near_is_one", [True, False])
@pytest.mark.parametrize("mapping", ["linear", "inverse"])
def test_normalized_convention(camera, scene, near_is_one, mapping):
    z, _ = scene
    near, far = 2.0, 20.0
    zz = np.clip(z, near, far)
    if mapping == "linear":
        t = (far - zz) / (far - near)
    else:
        t = (1 / zz - 1 / far) / (1 / near - 1 / far)
    vals = t if near_is_one else 1 - t
    dep = Depth(vals.astype(np.float32), "normalized", near=near, far=far, near_is_one=near_is_one,
                normalized_mapping=mapping, far_clip=far)
    out = dep.to_z(camera)
    np.testing.assert_allclose(out[SKY_ROWS:], z[SKY_ROWS:], rtol=1e-4)
    assert np.isinf(out[:SKY_ROWS]).all()  # sky is at far, far_clip makes it sky


def test_normalized_near_value_is_near(camera):
    ones = np.ones((H, W), np.float32)
    assert np.allclose(Depth(ones, "normalized", near=1.5, far=9.0).to_z(camera), 1.5)
    assert np.allclose(Depth(ones, "normalized", near=1.5, far=9.0, near_is_one=False).to_z(camera), 9.0)


def test_far_clip_marks_sky(camera, scene):
    z, _ = scene
    vals = np.where(np.isinf(z), 1e10, z).astype(np.float32)  # a renderer's background value
    out = Depth(vals, "z", far_clip=1e6).to_z(camera)
    assert np.isinf(out[:SKY_ROWS]).all()
    np.testing.assert_allclose(out[SKY_ROWS:], z[SKY_ROWS:], rtol=1e-6)
    cut = float(np.median(z[SKY_ROWS:]))
    out2 = Depth(vals, "z", far_clip=cut).to_z(camera)
    assert np.isinf(out2[z >= cut]).all() and np.isfinite(out2[z < cut]).all()


@pytest.mark.parametrize("convention", [c for c in CONVENTIONS])
def test_from_z_round_trip(camera, scene, convention):
    z, _ = scene
    if convention == "normalized":  # sky is written at far: far beyond the scene + far_clip brings it back
        dep = from_z(z, camera, convention, near=1.0, far=50.0)
    else:
        dep = from_z(z, camera, convention, far_clip=1e6)
    assert dep.convention == convention and dep.values.dtype == np.float32
    back = Depth(dep.values, convention, near=dep.near, far=dep.far, scale=dep.scale,
                 far_clip=dep.far if convention == "normalized" else None).to_z(camera)
    np.testing.assert_allclose(back[SKY_ROWS:], z[SKY_ROWS:], rtol=1e-4)
    assert np.isinf(back[:SKY_ROWS]).all()


def test_from_z_normalized_auto_range(camera, scene):
    z, _ = scene
    dep = from_z(z, camera, "normalized")
    finite = z[np.isfinite(z)]
    assert dep.near == pytest.approx(finite.min()) and dep.far == pytest.approx(finite.max())
    assert dep.values.max() == pytest.approx(1.0) and dep.values.min() == pytest.approx(0.0)


def test_from_z_nuke_style_values(camera, scene):
    z, _ = scene
    dep = from_z(z, camera, "inverse_z")
    assert (dep.values[:SKY_ROWS] == 0).all()
    np.testing.assert_allclose(dep.values[SKY_ROWS:], 1 / z[SKY_ROWS:], rtol=1e-6)
    dz = from_z(z, camera, "z", sky_value=0.0)
    assert (dz.values[:SKY_ROWS] == 0).all()


def test_nan_is_sky_but_all_nan_is_error(camera, scene):
    z, _ = scene
    vals = z.astype(np.float32)
    vals[SKY_ROWS, 0] = np.nan
    out = Depth(vals, "z").to_z(camera)
    assert np.isinf(out[SKY_ROWS, 0])
    with pytest.raises(DepthError, match="all NaN"):
        Depth(np.full((H, W), np.nan, np.float32), "z", path="d.exr", frame=1001).to_z(camera)


def test_negative_values_are_an_error(camera, scene):
    z, _ = scene
    with pytest.raises(DepthError) as info:
        Depth((-z).astype(np.float32), "z", path="shot/depth.1001.exr", frame=1001).to_z(camera)
    msg = str(info.value)
    assert "shot/depth.1001.exr" in msg and "1001" in msg and "negative" in msg


def test_bad_parameters():
    vals = np.ones((H, W), np.float32)
    with pytest.raises(DepthError, match="unknown depth convention"):
        Depth(vals, "disparity")
    with pytest.raises(DepthError, match="near and far"):
        Depth(vals, "normalized")
    with pytest.raises(DepthError):
        Depth(vals, "normalized", near=5.0, far=1.0)
    with pytest.raises(DepthError):
        Depth(vals, "z", scale=0.0)
    with pytest.raises(DepthError):
        Depth(np.ones((H, W, 3), np.float32), "z")
    with pytest.raises(DepthError, match="0..1"):
        Depth(vals * 3, "normalized", near=1.0, far=2.0).to_z(Camera(35, 36, W, H))


def test_resolution_mismatch_names_file_and_frame(camera):
    with pytest.raises(ResolutionMismatchError) as info:
        check_depth_matches((H // 2, W // 2), (H, W, 4), path="depth.1004.exr", frame=1004)
    msg = str(info.value)
    assert "depth.1004.exr" in msg and "1004" in msg and f"{W // 2}x{H // 2}" in msg and f"{W}x{H}" in msg
    check_depth_matches((H, W), (H, W, 3))  # no error
    with pytest.raises(ResolutionMismatchError):
        Depth(np.ones((H, W + 1), np.float32), "z").to_z(camera)


def test_docs_conventions_examples_run():
    """The Python examples in docs/conventions.md execute and their asserts hold."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parent.parent / "docs" / "conventions.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, str(doc), "exec"), {})
