"""The 3D insert's inputs: user meshes (OBJ written here, USD written by usd-core itself, a GLB laid out
by the glTF 2.0 spec) rendered against the ray-cast can, and every bad input as one clear line."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from PIL import Image

from gvfx.engines.base import ElementSpec, Placement
from gvfx.engines.sim import SimEngine, insert
from gvfx.engines.sim.common import Anchor, SimCache
from gvfx.engines.sim.insert3d.mesh_io import load_mesh
from gvfx.errors import InputError

from gvfx_insert3d_truth import HEIGHT_M, RADIUS_M, UP, iou, orbit_track, plate_context, raycast_can

SEG = 48


@pytest.fixture(autouse=True)
def _proxy_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GVFX_PROXIES", str(tmp_path / "proxies"))


def _cylinder(scale: float = 1.0):
    """A closed cylinder of the can's size (times ``scale``): vertices, counter-clockwise triangles, uvs."""
    a = 2 * np.pi * np.arange(SEG) / SEG
    ring = np.stack([RADIUS_M * np.sin(a), np.zeros(SEG), RADIUS_M * np.cos(a)], -1)
    v = np.concatenate([ring, ring + [0, HEIGHT_M, 0], [[0, 0, 0], [0, HEIGHT_M, 0]]]) * scale
    f = []
    for i in range(SEG):
        j = (i + 1) % SEG
        f += [(i, j, SEG + j), (i, SEG + j, SEG + i), (2 * SEG, j, i), (2 * SEG + 1, SEG + i, SEG + j)]
    uv = np.stack([np.arange(len(v)) % SEG / SEG, (np.arange(len(v)) >= SEG).astype(float)], -1)
    return v, np.array(f), uv


def _obj(path, scale=1.0):
    v, f, uv = _cylinder(scale)
    Image.fromarray(np.full((4, 4, 3), (30, 60, 200), np.uint8)).save(path.parent / "tex.png")
    (path.parent / "can.mtl").write_text("newmtl m\nKd 0.1 0.2 0.8\nmap_Kd tex.png\n")
    lines = ["mtllib can.mtl", "o can"] + [f"v {x} {y} {z}" for x, y, z in v] + [f"vt {a} {b}" for a, b in uv]
    lines += ["usemtl m"] + [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in f]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _usd(path):
    from pxr import Usd, UsdGeom, Vt

    v, f, _ = _cylinder()
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    mesh = UsdGeom.Mesh.Define(stage, "/can")
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(v.astype(np.float32)))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray([3] * len(f)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray(f.ravel().tolist()))
    UsdGeom.Xformable(mesh).AddTranslateOp().Set((5.0, 2.0, -1.0))  # placement in the file is ignored
    stage.Save()
    return str(path)


def _glb(path):
    """A GLB of the cylinder: JSON chunk + BIN chunk (positions float32, indices uint32), per the spec."""
    v, f, _ = _cylinder()
    pos, idx = v.astype(np.float32).tobytes(), f.astype(np.uint32).tobytes()
    doc = {"asset": {"version": "2.0"}, "buffers": [{"byteLength": len(pos) + len(idx)}],
           "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(pos)},
                           {"buffer": 0, "byteOffset": len(pos), "byteLength": len(idx)}],
           "accessors": [{"bufferView": 0, "componentType": 5126, "count": len(v), "type": "VEC3",
                          "min": v.min(0).tolist(), "max": v.max(0).tolist()},
                         {"bufferView": 1, "componentType": 5125, "count": f.size, "type": "SCALAR"}],
           "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}]}
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    binary = pos + idx
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<II", len(js), 0x4E4F534A) + js
                     + struct.pack("<II", len(binary), 0x004E4942) + binary)
    return str(path)


@pytest.mark.parametrize("writer", [_obj, _usd, _glb])
def test_mesh_files_load_as_the_same_cylinder(tmp_path, writer):
    suffix = {"_obj": ".obj", "_usd": ".usda", "_glb": ".glb"}[writer.__name__]
    pr = load_mesh(writer(tmp_path / f"can{suffix}"))
    assert len(pr.faces) == 4 * SEG
    lo, hi = pr.verts.min(0), pr.verts.max(0)
    assert np.allclose(lo, [-RADIUS_M, 0, -RADIUS_M], atol=1e-3) and np.allclose(hi, [RADIUS_M, HEIGHT_M, RADIUS_M],
                                                                                  atol=1e-3)
    tri = pr.verts[pr.faces]
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert vol == pytest.approx(np.pi * RADIUS_M ** 2 * HEIGHT_M, rel=0.01)  # outward, closed


def test_obj_mesh_rendered_matches_the_ray_cast_can(tmp_path):
    ref = _obj(tmp_path / "can.obj", scale=7.0)  # any unit: scaled to size_m
    frames = [1, 4, 7, 10]
    track = orbit_track(list(range(1, 11)))
    ctx = plate_context(track)
    anchor = Anchor(np.zeros(3), UP, UP, HEIGHT_M)
    spec = ElementSpec("can", "insert", reference=ref, size_m=HEIGHT_M, shutter_frames=0.0,
                       params={"light_dir": (0.3, 0.9, 0.3)})
    assert insert.metadata(spec)["gvfx:insert:proxy"] == "mesh"
    cache = SimCache(tmp_path / "cache")
    insert.simulate(spec, ctx, anchor, cache)
    for f in frames:
        ef = insert.render(spec, ctx, anchor, f, cache)
        assert iou(ef.rgba[..., 3] > 0.5, raycast_can(track.camera, track.transform(f)).mask) > 0.93
        rgb = ef.rgba[..., :3][ef.rgba[..., 3] > 0.99]
        assert (rgb[:, 2] > rgb[:, 0]).mean() > 0.95  # the texture's blue, from map_Kd


def _spec(ref, **kw):
    return ElementSpec("obj", "insert", reference=ref, placement=Placement(point=(0.0, 0.0, 0.0)), **kw)


def _one_line(exc: InputError, name: str) -> str:
    text = str(exc)
    assert "\n" not in text and name in text and "Traceback" not in text
    return text


def test_bad_inputs_are_one_clear_line(tmp_path):
    ctx = plate_context(orbit_track([1, 2]))
    eng = SimEngine()
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((32, 32, 4), np.uint8), "RGBA").save(blank)
    with pytest.raises(InputError) as e:
        eng.validate(_spec(str(blank)), ctx)
    assert "no usable matte" in _one_line(e.value, "blank.png")
    empty = tmp_path / "empty.obj"
    empty.write_text("# nothing\nv 0 0 0\nv 1 0 0\n")
    with pytest.raises(InputError) as e:
        eng.validate(_spec(str(empty)), ctx)
    assert "no triangles" in _one_line(e.value, "empty.obj")
    for name, data in (("broken.obj", "v 0 0 zero\nf 1 2 3\n"), ("broken.glb", "not a glb at all"),
                       ("broken.usda", "#usda 1.0\ndef Mesh \"x\" {{{\n"), ("dangling.obj", "v 0 0 0\nf 1 2 9\n")):
        (tmp_path / name).write_text(data)
        with pytest.raises(InputError) as e:
            eng.validate(_spec(str(tmp_path / name)), ctx)
        assert "does not parse" in _one_line(e.value, name)
    with pytest.raises(InputError) as e:
        eng.validate(_spec(str(blank), size_m=0.0), ctx)
    assert "size_m" in _one_line(e.value, "size_m") and "height" in str(e.value)


def test_deprecated_proxy_sphere_is_the_collider_and_a_card(tmp_path, caplog):
    spec = _spec("x.png", params={"proxy": "sphere"})
    assert insert.proxy_and_collider(spec) == ("card", "sphere")
    assert "deprecated" in caplog.text
    assert insert.proxy_and_collider(_spec("x.png", params={"proxy": "lathe"})) == ("lathe", "box")
    assert insert.proxy_and_collider(_spec("x.png", params={"proxy": "card"})) == ("card", "sphere")
