"""Cameras between gvfx and real Blender (bpy 5.x and 4.x): Blender's own USD export read by gvfx projects
world points where Blender's camera does; gvfx's camera.usda imported by Blender's own USD importer gives
the same lens, sensor and per-frame matrix_world; and the same both ways for Nuke ``.chan`` files (the
format of Blender's Nuke chan add-on manual and Foundry's Camera "import chan file": ``frame tx ty tz rx ry
rz vfov``, Y up, degrees, ZXY). Blender's side is ``blender_scripts/usd_camera.py``."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.camera_io import read_chan, read_usd_camera, write_chan, write_usd_camera

SCRIPT = Path(__file__).resolve().parent / "blender_scripts" / "usd_camera.py"
W, H, FIRST, LAST = 160, 90, 1001, 1005
FITS = ["HORIZONTAL", "VERTICAL", "AUTO"]
BLENDERS = {"blender5": ("GVFX_BLENDER_PYTHON", 5), "blender4": ("GVFX_BLENDER4_PYTHON", 4)}
#: gvfx Y-up world -> Blender Z-up world
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])


@pytest.fixture(scope="module", params=list(BLENDERS))
def blender(request) -> dict:
    var, major = BLENDERS[request.param]
    exe = os.environ.get(var, "").strip()
    if not exe or not Path(exe).is_file():
        pytest.skip(f"{var} is not set to a Python with bpy {major}.x (see tests/hosts/test_blender_addon.py)")
    return {"id": request.param, "python": exe, "major": major}


def _run(blender: dict, work: Path, **cfg) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    cfg = dict(cfg, first=FIRST, last=LAST, width=W, height=H, work=str(work), result=str(work / "result.json"))
    (work / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(work / "user"))
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([blender["python"], str(SCRIPT), "--", str(work / "cfg.json")], env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    out = json.loads((work / "result.json").read_text())
    assert out["blender_version"][0] == blender["major"]
    return out


@pytest.fixture(scope="module")
def exported(blender, tmp_path_factory) -> dict:
    return _run(blender, tmp_path_factory.mktemp(f"usd_export_{blender['id']}"), mode="export", fits=FITS)


@pytest.mark.parametrize("fit", FITS)
def test_blender_usd_export_reads_with_blenders_lens_and_projection(exported, fit):
    res = exported["fits"][fit]
    track = read_usd_camera(res["usd"], W, H)
    assert track.frames == tuple(range(FIRST, LAST + 1))
    assert track.metadata["up_axis"] == "Z" and track.metadata["lens_units"] == "tenthsOfSceneUnit"
    points = np.array(res["points"])
    worst = 0.0
    for f, want in res["frames"].items():
        f = int(f)
        px = np.array(want["pixels"])
        if fit == "HORIZONTAL":  # a 36 mm back fitted horizontally: the lens is Blender's own
            assert track.camera_at(f).focal_mm == pytest.approx(want["lens"], rel=1e-5)
            assert track.camera.haperture_mm == pytest.approx(36.0, rel=1e-5)
        uv, z = track.project_world(points, f)
        np.testing.assert_allclose(z, px[:, 2], rtol=1e-4, atol=1e-4)
        worst = max(worst, float(np.abs(uv - px[:, :2]).max()))
    assert worst <= 0.05, f"{fit}: {worst:.4f} px from Blender's own projection"


@pytest.mark.parametrize("fit", FITS)
def test_chan_from_blender_reads_with_blenders_projection(exported, fit):
    res = exported["fits"][fit]
    track = read_chan(res["chan"], W, H, haperture_mm=36.0)
    # a .chan carries no film offset (Blender's shift): take it from the USD export, checked above
    offset = read_usd_camera(res["usd"], W, H).camera.center_offset_px
    points = np.array(res["points"])
    for f, want in res["frames"].items():
        px = np.array(want["pixels"])
        cam = track.camera_at(int(f))
        if fit != "VERTICAL":  # vertical fit: the 36 mm back is not Blender's sensor width
            assert cam.focal_mm == pytest.approx(want["lens"], rel=1e-4)
        shifted = Camera(cam.focal_mm, cam.haperture_mm, W, H, center_offset_px=offset)
        uv, _ = shifted.project(track.to_camera_space(points, int(f)))
        np.testing.assert_allclose(uv, px[:, :2], atol=0.05)


def _gvfx_track() -> CameraTrack:
    frames = tuple(range(FIRST, LAST + 1))
    mats = [look_at(np.array([0.5 * i, 1.6, 6.0 - 0.4 * i]), np.array([0.1 * i, 1.0, 0.0])) for i in range(len(frames))]
    return CameraTrack(Camera(28.0, 24.89, W, H), frames, np.stack(mats), tuple(28.0 + 3 * i for i in range(len(frames))))


@pytest.fixture(scope="module")
def imported(blender, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp(f"usd_import_{blender['id']}")
    track = _gvfx_track()
    write_usd_camera(work / "camera.usda", track)
    write_chan(work / "camera.chan", track)
    out = _run(blender, work, mode="import", camera_usd=str(work / "camera.usda"), camera_chan=str(work / "camera.chan"))
    return {"out": out, "track": track}


def test_gvfx_camera_usda_imports_into_blender(imported):
    track, out = imported["track"], imported["out"]["usd"]
    for f in track.frames:
        got = out[str(f)]
        assert got["sensor_fit"] in ("HORIZONTAL", "AUTO")
        assert got["sensor_width"] == pytest.approx(24.89, rel=1e-5)
        assert got["lens"] == pytest.approx(track.camera_at(f).focal_mm, rel=1e-5)
        np.testing.assert_allclose(np.array(got["matrix_world"]), Y_UP_TO_Z_UP @ track.transform(f), atol=1e-5)


def test_gvfx_chan_reads_as_nuke_reads_it(imported):
    track, out = imported["track"], imported["out"]["chan"]
    for f in track.frames:
        got = out[str(f)]
        np.testing.assert_allclose(np.array(got["matrix"]), track.transform(f), atol=1e-6)
        assert got["vfov_deg"] == pytest.approx(track.camera_at(f).vfov_deg, rel=1e-6)
