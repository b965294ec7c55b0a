"""The 3D insert through `gvfx render`: its layers (N, P, shadow) and metadata in the EXRs, the match
stage's light used for it, and one proxy build for several job files naming the same reference."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from gvfx.camera_io import write_usd_camera
from gvfx.demo.scene import write_demo_plate
from gvfx.exr import read_exr
from gvfx.job import load_job
from gvfx.render import render_job

from gvfx_insert3d_truth import reference_png

FRAMES = list(range(1001, 1005))


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    root = tmp_path_factory.mktemp("shot")
    _, track, scene = write_demo_plate(root / "plate", 128, 72, FRAMES)
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    reference_png(root / "can.png", 80, 150)
    return root, scene


def _job(root: Path, scene, name: str, reference: str, out: str) -> Path:
    cx, top, cz = scene.table_top_center
    job = {"name": name, "plate": {"path": "plate/plate.####.exr"}, "depth": {"layer": "Z"},
           "camera": {"file": "cam.usda"}, "output": out,
           "elements": [{"name": "can", "effect": "insert", "reference": reference, "motion_samples": 2,
                         "placement": {"point": [cx, top, cz]}, "size_m": 0.3, "params": {"proxy": "lathe"}}]}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def test_layers_metadata_and_one_build_for_two_jobs(plate, tmp_path, monkeypatch, caplog):
    root, scene = plate
    monkeypatch.setenv("GVFX_PROXIES", str(tmp_path / "proxies"))
    from gvfx.engines.sim.insert3d import build

    build._MEMORY.clear()
    shutil.copy(root / "can.png", root / "same_can_other_name.png")
    with caplog.at_level(logging.INFO, logger="gvfx.engines.sim.insert3d.build"):
        render_job(load_job(_job(root, scene, "a", "can.png", "out_a")))
        build._MEMORY.clear()  # a second process: only the disk cache is left
        render_job(load_job(_job(root, scene, "b", "same_can_other_name.png", "out_b")))
    built = [r.getMessage() for r in caplog.records if "insert proxy of" in r.getMessage()]
    assert len(built) == 2 and "[cached]" not in built[0] and "[cached]" in built[1], built
    assert len(list((tmp_path / "proxies").glob("*.npz"))) == 1
    img = read_exr(root / "out_a" / "elements" / "can" / "v001" / "can.1002.exr")
    ch = img.channels
    assert {"N.R", "N.G", "N.B", "P.R", "P.G", "P.B", "shadow.A", "motion.U", "motion.V"} <= set(ch)
    a = ch["A"]
    assert a.max() > 0.99
    n = np.stack([ch["N.R"], ch["N.G"], ch["N.B"]], -1)[a > 0.99]
    assert np.allclose(np.linalg.norm(n, axis=-1), 1.0, atol=0.01)
    p = np.stack([ch["P.R"], ch["P.G"], ch["P.B"]], -1)[a > 0.99]
    cx, top, cz = scene.table_top_center
    assert p[:, 1].min() > top - 0.01 and p[:, 1].max() < top + 0.31  # stands on the table, 0.30 m tall
    assert ch["shadow.A"].max() > 0.3 and ch["shadow.A"][a > 0.99].mean() < ch["shadow.A"].max()
    md = img.metadata
    assert md["gvfx:insert:proxy"] == "lathe" and md["gvfx:effect"] == "insert"
    other = read_exr(root / "out_b" / "elements" / "can" / "v001" / "can.1002.exr")
    assert np.array_equal(other.channels["R"], ch["R"])  # the same object in both shots


def test_usd_layout_carries_the_proxy_mesh(plate, tmp_path, monkeypatch):
    from pxr import Usd, UsdGeom, UsdShade

    from gvfx.layout import layout_shot, validate_layout

    root, scene = plate
    monkeypatch.setenv("GVFX_PROXIES", str(tmp_path / "proxies"))
    job = _job(root, scene, "lay", "can.png", "out_lay")
    render_job(load_job(job))
    path = layout_shot(root / "out_lay", job_path=job)
    stage = Usd.Stage.Open(str(path))
    prim = stage.GetPrimAtPath("/World/Elements/can/Proxy")
    assert prim and prim.IsA(UsdGeom.Mesh)
    mesh = UsdGeom.Mesh(prim)
    assert len(mesh.GetFaceVertexCountsAttr().Get()) > 1000
    assert UsdGeom.PrimvarsAPI(prim).GetPrimvar("st").GetInterpolation() == UsdGeom.Tokens.faceVarying
    xf = UsdGeom.Xformable(prim)
    assert len(xf.GetTimeSamples()) == len(FRAMES)
    cx, top, cz = scene.table_top_center
    cache = UsdGeom.BBoxCache(Usd.TimeCode(FRAMES[1]), [UsdGeom.Tokens.default_])
    box = cache.ComputeWorldBound(prim).ComputeAlignedRange()
    lo, hi = np.array(box.GetMin()), np.array(box.GetMax())
    assert abs(lo[1] - top) < 0.01 and abs(hi[1] - lo[1] - 0.30) < 0.01  # stands on the table, 0.30 m tall
    assert abs(0.5 * (lo[0] + hi[0]) - cx) < 0.05 and abs(0.5 * (lo[2] + hi[2]) - cz) < 0.05
    mat, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()
    surf = UsdShade.Shader(stage.GetPrimAtPath(mat.GetPath().AppendChild("PreviewSurface")))
    assert surf.GetIdAttr().Get() == "UsdPreviewSurface" and surf.GetInput("diffuseColor").HasConnectedSource()
    tex = UsdShade.Shader(stage.GetPrimAtPath(mat.GetPath().AppendChild("Texture")))
    tex_file = path.parent / tex.GetInput("file").Get().path
    assert tex_file.is_file() and read_exr(tex_file).rgba()[..., 2].mean() > 0.05
    assert validate_layout(path) == []
