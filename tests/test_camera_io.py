"""Camera files: Nuke .chan and USD, round trips, known orientations, Z-up stages, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gvfx.camera import Camera, CameraTrack, load_camera, look_at
from gvfx.camera_io import (euler_to_matrix, matrix_to_euler_zxy, read_chan, read_usd_camera, write_chan,
                            write_usd_camera)
from gvfx.errors import CameraError

W, H = 1920, 1080


def _moving_track(zoom: bool = False) -> CameraTrack:
    frames = tuple(range(1001, 1007))
    mats = []
    for i, _ in enumerate(frames):
        eye = np.array([2.0 * math.cos(0.3 * i), 1.5 + 0.1 * i, 6.0 + math.sin(0.3 * i)])
        mats.append(look_at(eye, np.array([0.2 * i, 0.5, -3.0])))
    focals = tuple(30.0 + 2.0 * i for i in range(len(frames))) if zoom else None
    return CameraTrack(Camera(30.0, 36.0, W, H), frames, np.stack(mats), focals)


def _view_dir(m: np.ndarray) -> np.ndarray:
    return m[:3, :3] @ np.array([0.0, 0.0, -1.0])


# --- rotations ---

def test_euler_zxy_known_orientation():
    # Nuke ZXY: Z applied first, then X, then Y.  rz=90 then rx=90: the camera looks up, its up is -X.
    r = euler_to_matrix(90, 0, 90, "ZXY")
    np.testing.assert_allclose(r @ [0, 0, -1], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(r @ [0, 1, 0], [-1, 0, 0], atol=1e-12)
    # a different order gives a different camera (so the order matters and is tested)
    r_xyz = euler_to_matrix(90, 0, 90, "XYZ")
    np.testing.assert_allclose(r_xyz @ [0, 0, -1], [-1, 0, 0], atol=1e-12)
    # ry=90 alone turns the view from -Z to -X
    np.testing.assert_allclose(euler_to_matrix(0, 90, 0) @ [0, 0, -1], [-1, 0, 0], atol=1e-12)


@pytest.mark.parametrize("angles", [(10, 20, 30), (-45, 170, -120), (89.0, -30, 5), (0, 0, 0)])
def test_matrix_to_euler_zxy_inverts(angles):
    r = euler_to_matrix(*angles, "ZXY")
    back = euler_to_matrix(*matrix_to_euler_zxy(r), "ZXY")
    np.testing.assert_allclose(back, r, atol=1e-9)


def test_bad_rotation_order():
    with pytest.raises(CameraError):
        euler_to_matrix(0, 0, 0, "XXY")


# --- .chan ---

def test_chan_known_line(tmp_path):
    # vfov 2*atan(12/35): with a 36 mm back at 16:9 the vertical back is 20.25 mm
    vap = 36.0 * H / W
    vfov = math.degrees(2 * math.atan(vap / 2 / 35.0))
    p = tmp_path / "cam.chan"
    p.write_text(f"1001 1.0 2.0 3.0 0 90 0 {vfov}\n1002\t1.5\t2.0\t3.0\t0\t90\t0\t{vfov}\n")
    tr = read_chan(p, W, H)
    assert tr.frames == (1001, 1002)
    assert tr.camera.focal_mm == pytest.approx(35.0, abs=1e-9)
    assert tr.focal_mm is None
    np.testing.assert_allclose(tr.position(1001), [1, 2, 3])
    np.testing.assert_allclose(tr.position(1001.5), [1.25, 2, 3])
    np.testing.assert_allclose(_view_dir(tr.transform(1001)), [-1, 0, 0], atol=1e-12)
    assert load_camera(p, W, H).frames == (1001, 1002)


def test_chan_without_fov_uses_given_focal(tmp_path):
    p = tmp_path / "cam.chan"
    p.write_text("# exported\n1 0 0 5 0 0 0\n\n2 0 0 4 0 0 0\n")
    assert read_chan(p, W, H, focal_mm=50.0).camera.focal_mm == 50.0
    assert read_chan(p, W, H).camera.focal_mm == 35.0
    np.testing.assert_allclose(read_chan(p, W, H, units_to_m=0.01).position(1), [0, 0, 0.05])


@pytest.mark.parametrize("zoom", [False, True])
def test_chan_round_trip(tmp_path, zoom):
    tr = _moving_track(zoom)
    p = tmp_path / "out.chan"
    write_chan(p, tr)
    back = read_chan(p, W, H, haperture_mm=36.0)
    assert back.frames == tr.frames
    np.testing.assert_allclose(back.cam_to_world, tr.cam_to_world, atol=1e-6)
    for f in tr.frames:
        assert back.camera_at(f).focal_mm == pytest.approx(tr.camera_at(f).focal_mm, rel=1e-6)
    assert (back.focal_mm is not None) == zoom


@pytest.mark.parametrize("content, needle", [
    ("1001 0 0 0 0 0\n", "line 1"),
    ("1001 0 0 0 0 0 0 40\n1002 0 0 x 0 0 0 40\n", "line 2"),
    ("1001 0 0 0 0 0 0 40\n1001 0 0 0 0 0 0 40\n", "line 2"),
    ("1001.5 0 0 0 0 0 0 40\n", "line 1"),
    ("1001 0 0 0 0 0 0 400\n", "line 1"),
    ("\n# nothing\n", "no frames"),
])
def test_chan_bad_lines_name_file_and_line(tmp_path, content, needle):
    p = tmp_path / "bad.chan"
    p.write_text(content)
    with pytest.raises(CameraError) as info:
        read_chan(p, W, H)
    assert "bad.chan" in str(info.value) and needle in str(info.value)


def test_chan_missing_file(tmp_path):
    with pytest.raises(CameraError, match="nope.chan"):
        read_chan(tmp_path / "nope.chan", W, H)


# --- USD ---

@pytest.mark.parametrize("zoom", [False, True])
@pytest.mark.parametrize("suffix", [".usda", ".usdc"])
def test_usd_round_trip(tmp_path, zoom, suffix):
    tr = _moving_track(zoom)
    p = tmp_path / f"cam{suffix}"
    write_usd_camera(p, tr, fps=25.0)
    back = read_usd_camera(p, W, H)
    assert back.frames == tr.frames
    np.testing.assert_allclose(back.cam_to_world, tr.cam_to_world, atol=1e-9)
    assert back.camera.haperture_mm == pytest.approx(36.0, rel=1e-6)
    for f in tr.frames:
        assert back.camera_at(f).focal_mm == pytest.approx(tr.camera_at(f).focal_mm, rel=1e-6)
    assert (back.focal_mm is not None) == zoom
    from pxr import Usd, UsdGeom
    stage = Usd.Stage.Open(str(p))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (1001, 1006)
    assert stage.GetTimeCodesPerSecond() == 25.0


def test_usd_given_frames_and_center_offset(tmp_path):
    tr = CameraTrack(Camera(40.0, 36.0, W, H, center_offset_px=(12.0, -8.0)), (1, 3),
                     np.stack([np.eye(4), look_at(np.array([0, 0, 2.0]), np.array([1.0, 0, 0]))]))
    p = tmp_path / "cam.usda"
    write_usd_camera(p, tr)
    back = read_usd_camera(p, W, H, frames=[2, 1])
    assert back.frames == (1, 2)
    np.testing.assert_allclose(back.camera.center_offset_px, (12.0, -8.0), atol=1e-4)
    np.testing.assert_allclose(back.position(2), [0, 0, 1.0], atol=1e-9)  # USD interpolates halfway


def _blender_style_stage(path, meters_per_unit: float, scale: float):
    """A Z-up stage as Blender's exporter writes it: Xform with translate/rotateXYZ above the camera."""
    from pxr import Gf, Usd, UsdGeom
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, meters_per_unit)
    stage.SetStartTimeCode(1)
    stage.SetEndTimeCode(3)
    UsdGeom.Xform.Define(stage, "/root")
    xf = UsdGeom.Xform.Define(stage, "/root/Camera")
    t_op = xf.AddTranslateOp()
    r_op = xf.AddRotateXYZOp()
    for f in (1, 2, 3):
        # Blender: camera at (x, -10, 2) m, rotated 90 deg about X: looks along +Y (horizontal)
        t_op.Set(Gf.Vec3d(0.5 * (f - 1) * scale, -10.0 * scale, 2.0 * scale), f)
        r_op.Set(Gf.Vec3f(90.0, 0.0, 0.0), f)
    cam = UsdGeom.Camera.Define(stage, "/root/Camera/Camera")
    tenths = 1.0 / (100.0 * meters_per_unit)  # UsdGeomCamera: lens and film back in tenths of a scene unit
    cam.GetFocalLengthAttr().Set(50.0 * tenths)
    for f in (1, 2, 3):  # time-sampled apertures, as Blender 5 writes them
        cam.GetHorizontalApertureAttr().Set(36.0 * tenths, f)
        cam.GetVerticalApertureAttr().Set(20.25 * tenths, f)
    stage.GetRootLayer().Save()


@pytest.mark.parametrize("mpu, scale", [(1.0, 1.0), (0.01, 100.0)])
def test_usd_z_up_blender_style(tmp_path, mpu, scale):
    p = tmp_path / "blender.usda"
    _blender_style_stage(p, mpu, scale)
    tr = read_usd_camera(p, W, H)
    assert tr.frames == (1, 2, 3)
    assert tr.camera.focal_mm == pytest.approx(50.0, rel=1e-6)
    assert tr.camera.haperture_mm == pytest.approx(36.0, rel=1e-6)  # not USD's fallback 20.955
    for f in (1, 2, 3):
        m = tr.transform(f)
        # Z-up +Y (Blender's forward here) is gvfx's -Z; Z-up +Z (up) is gvfx's +Y
        np.testing.assert_allclose(_view_dir(m), [0, 0, -1], atol=1e-6)
        np.testing.assert_allclose(m[:3, :3] @ [0, 1, 0], [0, 1, 0], atol=1e-6)
        # position (x, -10, 2) Z-up metres -> (x, 2, 10) Y-up metres
        np.testing.assert_allclose(m[:3, 3], [0.5 * (f - 1), 2.0, 10.0], atol=1e-5)
    assert tr.metadata["up_axis"] == "Z"


def test_usd_world_point_projects_consistently(tmp_path):
    """A Y-up world point in front of the Blender-style camera projects to the image centre."""
    p = tmp_path / "blender.usda"
    _blender_style_stage(p, 1.0, 1.0)
    tr = read_usd_camera(p, W, H)
    uv, z = tr.project_world(np.array([[0.0, 2.0, 0.0]]), 1)
    np.testing.assert_allclose(uv[0], [W / 2, H / 2], atol=1e-6)
    assert z[0] == pytest.approx(10.0)


def test_usd_errors(tmp_path):
    with pytest.raises(CameraError, match="not found"):
        read_usd_camera(tmp_path / "none.usda", W, H)
    bad = tmp_path / "bad.usda"
    bad.write_text("this is not usd")
    with pytest.raises(CameraError, match="bad.usda"):
        read_usd_camera(bad, W, H)
    from pxr import Usd, UsdGeom
    empty = tmp_path / "empty.usda"
    stage = Usd.Stage.CreateNew(str(empty))
    UsdGeom.Xform.Define(stage, "/World")
    stage.GetRootLayer().Save()
    with pytest.raises(CameraError, match="no UsdGeom.Camera"):
        read_usd_camera(empty, W, H)
    with pytest.raises(CameraError, match="not a Camera"):
        read_usd_camera(empty, W, H, prim_path="/World")
    with pytest.raises(CameraError, match="no prim"):
        read_usd_camera(empty, W, H, prim_path="/Nope")


# --- USD camera units (UsdGeomCamera: tenths of a scene unit) ---

def test_usd_written_in_spec_units(tmp_path):
    """gvfx's camera.usda on a metre stage: a 30 mm lens is 0.30, a 36 mm back 0.36, marked with the key."""
    from pxr import Usd, UsdGeom
    p = tmp_path / "cam.usda"
    write_usd_camera(p, _moving_track())
    stage = Usd.Stage.Open(str(p))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/Camera"))
    assert cam.GetFocalLengthAttr().Get() == pytest.approx(0.30)
    assert cam.GetHorizontalApertureAttr().Get() == pytest.approx(0.36)
    assert cam.GetVerticalApertureAttr().Get() == pytest.approx(0.36 * H / W)
    assert cam.GetPrim().GetCustomDataByKey("gvfx:cameraUnits") == "tenthsOfSceneUnit"
    # USD's own camera model (Gf.Camera) agrees on the field of view: 2 atan(36 / (2 * 30))
    gf = cam.GetCamera(Usd.TimeCode(1001))
    assert gf.GetFieldOfView(gf.FOVHorizontal) == pytest.approx(math.degrees(2 * math.atan(18 / 30)), rel=1e-6)


def test_usd_centimetre_stage_is_millimetres(tmp_path):
    """On a centimetre stage (metersPerUnit 0.01) the values are millimetres, translations centimetres."""
    from pxr import Gf, Usd, UsdGeom
    p = tmp_path / "cm.usda"
    stage = Usd.Stage.CreateNew(str(p))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)
    cam = UsdGeom.Camera.Define(stage, "/cam")
    cam.AddTranslateOp().Set(Gf.Vec3d(0, 150.0, 0))
    cam.GetFocalLengthAttr().Set(24.0)
    cam.GetHorizontalApertureAttr().Set(24.89)
    stage.GetRootLayer().Save()
    tr = read_usd_camera(p, W, H)
    assert (tr.camera.focal_mm, tr.camera.haperture_mm) == pytest.approx((24.0, 24.89))
    np.testing.assert_allclose(tr.position(tr.frames[0]), [0, 1.5, 0], atol=1e-9)


# The camera.usda gvfx wrote before it followed the spec (verbatim): lens and back in mm on a metre stage.
LEGACY_GVFX_CAMERA = """#usda 1.0
(
    defaultPrim = "World"
    endTimeCode = 2
    framesPerSecond = 24
    metersPerUnit = 1
    startTimeCode = 1
    timeCodesPerSecond = 24
    upAxis = "Y"
)

def Xform "World"
{
    def Camera "Camera"
    {
        float focalLength = 35
        float horizontalAperture = 36
        float horizontalApertureOffset = 0
        float verticalAperture = 20.25
        float verticalApertureOffset = -0
        matrix4d xformOp:transform.timeSamples = {
            1: ( (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1) ),
            2: ( (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (2, 0, 0, 1) ),
        }
        uniform token[] xformOpOrder = ["xformOp:transform"]
    }
}
"""


def test_usd_legacy_gvfx_file_reads_as_mm(tmp_path):
    p = tmp_path / "old_camera.usda"
    p.write_text(LEGACY_GVFX_CAMERA)
    tr = read_usd_camera(p, W, H)
    assert (tr.camera.focal_mm, tr.camera.haperture_mm) == (35.0, 36.0)
    assert tr.metadata["lens_units"].startswith("mm")
    np.testing.assert_allclose(tr.position(2), [2, 0, 0])
    # the same values in any other shape (here: a translate op instead of gvfx's matrix) follow the spec
    other = tmp_path / "other.usda"
    other.write_text(LEGACY_GVFX_CAMERA.replace("matrix4d xformOp:transform.timeSamples", "matrix4d xformOp:transform:a.timeSamples")
                     .replace('["xformOp:transform"]', '["xformOp:transform:a"]'))
    assert read_usd_camera(other, W, H).camera.focal_mm == pytest.approx(3500.0)
    # the old writer's aperture offsets (principal point +12 px right) read back as it meant them
    shifted = tmp_path / "old_shifted.usda"
    shifted.write_text(LEGACY_GVFX_CAMERA.replace("horizontalApertureOffset = 0", f"horizontalApertureOffset = {12 / W * 36}"))
    assert read_usd_camera(shifted, W, H).camera.center_offset_px[0] == pytest.approx(12.0)
    # an old layout.usda is known by gvfx's doc string
    lay = tmp_path / "old_layout.usda"
    lay.write_text(LEGACY_GVFX_CAMERA.replace('    defaultPrim = "World"', '    doc = "gvfx shot layout: camera"\n    defaultPrim = "Other"'))
    assert read_usd_camera(lay, W, H).camera.focal_mm == 35.0


def test_usd_time_sampled_apertures_keep_the_field_of_view(tmp_path):
    """An animated film back (gvfx has one back per track) becomes the same field of view in the lens."""
    from pxr import Usd, UsdGeom
    p = tmp_path / "back.usda"
    stage = Usd.Stage.CreateNew(str(p))
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    cam = UsdGeom.Camera.Define(stage, "/cam")
    cam.GetFocalLengthAttr().Set(0.35)
    cam.GetHorizontalApertureAttr().Set(0.36, 1)
    cam.GetHorizontalApertureAttr().Set(0.18, 2)
    stage.GetRootLayer().Save()
    tr = read_usd_camera(p, W, H)
    assert tr.frames == (1, 2)
    for f in (1, 2):
        gf = cam.GetCamera(Usd.TimeCode(f))
        assert tr.camera_at(f).hfov_deg == pytest.approx(gf.GetFieldOfView(gf.FOVHorizontal), rel=1e-6)


@pytest.mark.parametrize("attr, value, msg", [("HorizontalAperture", 0.0, "horizontalAperture is 0"),
                                              ("HorizontalAperture", -0.36, "horizontalAperture is -0.36"),
                                              ("VerticalAperture", 0.0, "verticalAperture is 0"),
                                              ("FocalLength", -0.35, "focalLength is -0.35")])
def test_usd_bad_apertures_are_one_line(tmp_path, attr, value, msg):
    from pxr import Usd, UsdGeom
    p = tmp_path / "bad_back.usda"
    stage = Usd.Stage.CreateNew(str(p))
    cam = UsdGeom.Camera.Define(stage, "/cam")
    getattr(cam, f"Get{attr}Attr")().Set(value)
    stage.GetRootLayer().Save()
    with pytest.raises(CameraError, match=msg) as exc:
        read_usd_camera(p, W, H)
    assert "bad_back.usda" in str(exc.value) and "\n" not in str(exc.value)


def test_usd_projection_matches_usds_own_frustum(tmp_path):
    """USD's Gf.Camera (lens, back and aperture offsets) projects a point where gvfx does."""
    from pxr import Gf, Usd, UsdGeom
    p = tmp_path / "offset.usda"
    stage = Usd.Stage.CreateNew(str(p))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    cam = UsdGeom.Camera.Define(stage, "/cam")
    cam.AddTranslateOp().Set(Gf.Vec3d(0.5, 1.0, 4.0))
    for name, v in [("FocalLength", 0.4), ("HorizontalAperture", 0.36), ("VerticalAperture", 0.2025),
                    ("HorizontalApertureOffset", 0.02), ("VerticalApertureOffset", -0.013)]:
        getattr(cam, f"Get{name}Attr")().Set(v)
    stage.GetRootLayer().Save()
    tr = read_usd_camera(p, W, H)
    gf = cam.GetCamera(Usd.TimeCode.Default())
    view_proj = gf.frustum.ComputeViewMatrix() * gf.frustum.ComputeProjectionMatrix()
    for point in ([0.3, 1.2, -2.0], [-1.0, 0.4, 0.5], [2.0, 2.0, -6.0]):
        ndc = view_proj.Transform(Gf.Vec3d(*point))  # x, y in [-1, 1], y up
        want = [(ndc[0] + 1) / 2 * W, (1 - ndc[1]) / 2 * H]
        uv, _ = tr.project_world(np.array([point]), 1)
        np.testing.assert_allclose(uv[0], want, atol=1e-3)
