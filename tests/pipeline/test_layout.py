"""layout.usda: valid by USD's own validators, the camera equals the job's camera frame by frame, the
plate card and element cards/boxes carry their sequences and sit where the sims put them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pipeline_shot import make_shot
from pxr import Sdf, Usd, UsdGeom, UsdShade

from gvfx.camera_io import read_usd_camera
from gvfx.cli import main
from gvfx.job import load_job
from gvfx.layout import validate_layout
from gvfx.render import render_job

FRAMES = list(range(1001, 1006))


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layout_shot")
    render_job(load_job(make_shot(root, FRAMES)))
    return root


def test_layout_is_valid_usd(shot: Path) -> None:
    assert validate_layout(shot / "layout.usda") == []
    stage = Usd.Stage.Open(str(shot / "layout.usda"))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (1001, 1005)
    assert stage.GetFramesPerSecond() == 24.0 and stage.GetDefaultPrim().GetPath() == Sdf.Path("/World")


def test_camera_matches_the_job(shot: Path) -> None:
    job_cam = read_usd_camera(shot / "cam.usda", 64, 36, frames=FRAMES)
    lay_cam = read_usd_camera(shot / "layout.usda", 64, 36, frames=FRAMES)
    np.testing.assert_allclose(lay_cam.cam_to_world, job_cam.cam_to_world, atol=1e-9)
    for f in FRAMES:
        a, b = job_cam.camera_at(f), lay_cam.camera_at(f)
        assert (a.focal_mm, a.haperture_mm) == pytest.approx((b.focal_mm, b.haperture_mm))
    stage = Usd.Stage.Open(str(shot / "layout.usda"))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/Camera"))
    # UsdGeomCamera units: tenths of a scene unit, so mm / 100 on this metre stage
    assert cam.GetVerticalApertureAttr().Get() == pytest.approx(job_cam.camera.vaperture / 100.0)


def _texture_files(stage, prim_path: str) -> dict[float, str]:
    binding = UsdShade.MaterialBindingAPI(stage.GetPrimAtPath(prim_path)).ComputeBoundMaterial()[0]
    tex = UsdShade.Shader(stage.GetPrimAtPath(binding.GetPath().AppendChild("Texture")))
    attr = tex.GetInput("file").GetAttr()
    return {t: attr.Get(t).path for t in attr.GetTimeSamples()}


def test_plate_card_and_elements(shot: Path) -> None:
    stage = Usd.Stage.Open(str(shot / "layout.usda"))
    files = _texture_files(stage, "/World/Plate/Card")
    assert files == {float(f): f"./plates/plate/plate.{f}.exr" for f in FRAMES}
    assert all((shot / p).is_file() for p in files.values())
    card = UsdGeom.Mesh(stage.GetPrimAtPath("/World/Plate/Card"))
    assert len(card.GetPointsAttr().Get()) == 4 and card.GetPointsAttr().Get()[0][2] == pytest.approx(-1000.0)
    assert UsdGeom.PrimvarsAPI(card).GetPrimvar("st").GetTypeName() == Sdf.ValueTypeNames.TexCoord2fArray
    for name, volume in (("smoke", True), ("sparks", False)):
        base = f"/World/Elements/{name}"
        assert stage.GetPrimAtPath(f"{base}/Card").IsA(UsdGeom.Mesh)
        assert stage.GetPrimAtPath(f"{base}/Bounds").IsValid() == volume
        assert _texture_files(stage, f"{base}/Card")[1003.0] == f"./elements/{name}/v001/{name}.1003.exr"
        cache = next((shot / "cache").glob(f"{name}-*"))
        anchor = json.loads((cache / "meta.json").read_text())["anchor"]
        m = UsdGeom.Xformable(stage.GetPrimAtPath(base)).ComputeLocalToWorldTransform(Usd.TimeCode(1003))
        np.testing.assert_allclose(list(m.ExtractTranslation()), anchor, atol=1e-6)
        # the card's st follows the camera: its corners' st differ from frame to frame as the camera moves
        st = UsdGeom.PrimvarsAPI(stage.GetPrimAtPath(f"{base}/Card")).GetPrimvar("st")
        assert len(st.GetAttr().GetTimeSamples()) == len(FRAMES)
    cube = UsdGeom.Cube(stage.GetPrimAtPath("/World/Elements/smoke/Bounds"))
    assert cube.GetSizeAttr().Get() == 1.0


def test_layout_command_rebuilds_it(shot: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "again.usda"
    assert main(["layout", str(shot), "-o", str(out)]) == 0
    assert "layout:" in capsys.readouterr().out
    assert validate_layout(out) == []
    stage = Usd.Stage.Open(str(out))
    assert stage.GetPrimAtPath("/World/Elements/sparks/Card").IsValid()
