"""The Blender add-on in real Blender (the ``bpy`` module in its own venv), installed from the zip
``hosts/blender/build.py`` builds, driving a real ``gvfx worker`` ($GVFX_EXECUTABLE) on a small demo
plate. Every test runs once per Blender: 5.x ($GVFX_BLENDER_PYTHON) and 4.x ($GVFX_BLENDER4_PYTHON, the
older ``scene.node_tree`` compositor); an unset one is skipped, saying how to make it. The Blender-side
scripts are in ``blender_scripts/``; each writes a JSON of what it saw, asserted here (pixels are
compared with OpenImageIO in this venv)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "blender_scripts"
W, H, FRAMES, FIRST = 96, 54, 6, 1001

# test id -> (environment variable, Blender major version, how to make that Python)
BLENDERS = {
    "blender5": ("GVFX_BLENDER_PYTHON", 5, "python3 -m venv .venv-blender && .venv-blender/bin/pip install bpy==5.0.1"),
    "blender4": ("GVFX_BLENDER4_PYTHON", 4,
                 "python3 -m venv .venv-blender4 && .venv-blender4/bin/pip install bpy==4.5.15"),
}


def _gvfx_executable() -> str:
    exe = os.environ.get("GVFX_EXECUTABLE", "").strip() or str(Path(sys.executable).parent / "gvfx")
    if not Path(exe).is_file():
        exe = shutil.which("gvfx") or ""
    if not exe:
        pytest.skip("no gvfx executable: set GVFX_EXECUTABLE")
    return exe


@pytest.fixture(scope="module", params=list(BLENDERS))
def blender(request) -> dict:
    """One Blender Python (with bpy of the expected major version); skipped when its variable is unset."""
    var, major, recipe = BLENDERS[request.param]
    exe = os.environ.get(var, "").strip()
    if not exe:
        pytest.skip(f"{var} is not set (a Python with bpy {major}.x: {recipe})")
    if not Path(exe).is_file():
        pytest.skip(f"{var}={exe} does not exist")
    return {"id": request.param, "python": exe, "major": major}


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """The built zips, a 96x54 6-frame demo plate with depth, and the config the scripts read (shared by
    every Blender)."""
    gvfx_exe = _gvfx_executable()
    from gvfx.demo.scene import write_demo_plate

    work = tmp_path_factory.mktemp("blender")
    build = subprocess.run([sys.executable, str(ROOT / "hosts/blender/build.py"), "-o", str(work / "dist"), "--legacy"],
                           capture_output=True, text=True, timeout=60)
    assert build.returncode == 0, build.stderr
    zip_path, legacy_zip = build.stdout.split()[:2]
    _, track, scene = write_demo_plate(work / "plate", W, H, FRAMES)
    return {"work": work, "track": track,
            "cfg": dict(zip=zip_path, legacy_zip=legacy_zip, first=FIRST, last=FIRST + FRAMES - 1, width=W, height=H,
                        focal_mm=scene.focal_mm, haperture_mm=scene.haperture_mm,
                        cam_to_world=[track.transform(f).tolist() for f in track.frames],
                        plate_first=str(work / "plate" / f"plate.{FIRST}.exr"), executable=gvfx_exe,
                        point=list(scene.table_top_center), point2=list(scene.box_top_center), size_m=0.5, check_frame=FIRST + 2,
                        crashing_worker=str(SCRIPTS / "crashing_worker.py"))}


def _run(shot, blender, script: str, name: str, timeout: float = 240) -> dict:
    work = shot["work"] / blender["id"] / name
    work.mkdir(parents=True)
    res_dir = work / "blender_user"
    cfg = dict(shot["cfg"], work=str(work), output=str(work / "out"), result=str(work / "result.json"))
    (work / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(res_dir), BLENDER_USER_EXTENSIONS=str(res_dir / "extensions"))
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([blender["python"], str(SCRIPTS / script), "--", str(work / "cfg.json")], env=env,
                          capture_output=True, text=True, timeout=timeout)
    log = f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, log
    assert (work / "result.json").is_file(), log
    out = json.loads((work / "result.json").read_text())
    assert out["blender_version"][0] == blender["major"], (blender, out["blender_version"])
    out["_work"], out["_log"], out["_res"], out["_major"] = work, log, res_dir, blender["major"]
    return out


def _pixels(path: str | Path, to_rec709: bool = False) -> np.ndarray:
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    assert not buf.has_error, buf.geterror()
    if to_rec709:  # Blender's compositor works (and writes EXRs) in Linear Rec.709
        buf = oiio.ImageBufAlgo.colorconvert(buf, "ACEScg", "lin_rec709")
    return buf.get_pixels(oiio.FLOAT)[..., :4]


@pytest.fixture(scope="module")
def generated(shot, blender):
    return _run(shot, blender, "generate.py", "generate")


def test_installed_from_zip_where_doctor_looks(generated):
    ext = generated["_res"] / "extensions" / "user_default" / "gvfx"
    assert (ext / "blender_manifest.toml").is_file() and (ext / "vendor" / "gvfx_client.py").is_file()


# Blender 5 vs 4.x: the comp's output node, and the colour-mix / alpha-over socket labels ("A"/"B" on
# ShaderNodeMix in 5.x are "Image"/"Image_001" on 4.x's CompositorNodeMixRGB; AlphaOver's Background and
# Foreground are "Image"/"Image_001")
OUTPUT_NODE = {5: ("gvfx output", "NodeGroupOutput"), 4: ("gvfx composite", "CompositorNodeComposite")}
NODE_TYPES = {5: {"mix": "ShaderNodeMix", "math": "ShaderNodeMath"},
              4: {"mix": "CompositorNodeMixRGB", "math": "CompositorNodeMath"}}
SOCKETS_4X = {"A": "Image", "B": "Image_001", "Result": "Image", "Background": "Image", "Foreground": "Image_001"}


def _expected_link(link: str, major: int) -> str:
    """A link written for Blender 5 (``node:socket->node:socket``) as Blender ``major`` names it."""
    if major >= 5:
        return link
    ends = []
    for end in link.split("->"):
        node, sock = end.rsplit(":", 1)
        node = OUTPUT_NODE[4][0] if node == OUTPUT_NODE[5][0] else node
        ends.append(f"{node}:{SOCKETS_4X.get(sock, sock)}")
    return "->".join(ends)


def _assert_links(expected, links: set, major: int):
    for link in expected:
        want = _expected_link(link, major)
        assert want in links, (want, sorted(links))


def _assert_node_types(nodes: dict, major: int, roles: dict):
    """Each named gvfx node is this Blender's type for its role ("mix", "math" or a bl_idname)."""
    for name, role in roles.items():
        assert nodes[name]["type"] == NODE_TYPES[major].get(role, role), (name, nodes[name], major)
    if major < 5:  # gvfx made the scene's tree: Blender's default Render Layers node is not left in it
        assert not any(n["type"] == "CompositorNodeRLayers" for n in nodes.values()), nodes


ROLES = {"gvfx fire +lightwrap": "mix", "gvfx fire +grain": "mix", "gvfx fire shadow": "mix",
         "gvfx fire 1-holdout": "math", "gvfx fire 1-shadow": "math", "gvfx fire alpha": "CompositorNodeSetAlpha",
         "gvfx fire holdout": "CompositorNodeSetAlpha", "gvfx over": "CompositorNodeAlphaOver",
         "gvfx viewer": "CompositorNodeViewer", "gvfx fire +platelight": "mix"}
ROLES2 = dict(ROLES, **{"gvfx sum 1": "mix", "gvfx sum alpha 1": "math", "gvfx sum 1 alpha": "CompositorNodeSetAlpha",
                        "gvfx fire split": "CompositorNodeSeparateColor", "gvfx sparks shadow": "mix",
                        "gvfx sparks +platelight": "mix"})


def test_generate_loads_versions_and_builds_the_comp_tree(generated):
    g, major = generated, generated["_major"]
    assert g["first_run"] == ["FINISHED"] and g["second_run"] == ["FINISHED"], g["_log"]
    assert g["version1"] == "v001" and g["version2"] == ["v002", "v001"]
    assert g["version_items"] == ["v001", "v002"] and g["running_after"] is False
    assert g["status1"] == "gvfx: done: fire v001"
    nodes, links = g["nodes"], set(g["links"])
    el = nodes["gvfx fire element"]
    assert el["type"] == "CompositorNodeImage" and el["source"] == "SEQUENCE"
    assert el["image"].endswith("elements/fire/v001/fire.1001.exr")
    assert (el["frame_start"], el["frame_duration"], el["frame_offset"]) == (FIRST, FRAMES, FIRST - 1)
    assert nodes["gvfx plate"]["image"].endswith(f"plate/plate.{FIRST}.exr")
    # the comp reads the plate in the job's colour space (what the worker read); the artist's image is left
    assert nodes["gvfx plate"]["colorspace"] == el["colorspace"] == "ACEScg"
    assert g["user_plate_colorspace_after"] == g["user_plate_colorspace_before"]
    out_name, out_type = OUTPUT_NODE[major]
    assert nodes[out_name]["type"] == out_type
    _assert_node_types(nodes, major, ROLES)
    # the rebuild recipe of docs/match.md
    _assert_links(("gvfx fire element:Combined->gvfx fire +lightwrap:A",
                   "gvfx fire element:lightwrap->gvfx fire +lightwrap:B",
                   "gvfx fire +lightwrap:Result->gvfx fire +grain:A",
                   "gvfx fire element:grain->gvfx fire +grain:B",
                   "gvfx fire +grain:Result->gvfx fire alpha:Image",
                   "gvfx fire element:Alpha->gvfx fire alpha:Alpha",
                   "gvfx fire element:holdout->gvfx fire 1-holdout:Value_001",
                   "gvfx fire 1-holdout:Value->gvfx fire holdout:Alpha",
                   "gvfx fire alpha:Image->gvfx fire holdout:Image",
                   "gvfx plate:Image->gvfx fire shadow:A",
                   "gvfx fire element:shadow->gvfx fire 1-shadow:Value_001",
                   "gvfx fire 1-shadow:Value->gvfx fire shadow:B",
                   "gvfx fire shadow:Result->gvfx fire +platelight:A",
                   "gvfx fire element:platelight->gvfx fire +platelight:B",
                   "gvfx fire +platelight:Result->gvfx over:Background",
                   "gvfx fire holdout:Image->gvfx over:Foreground",
                   "gvfx over:Image->gvfx output:Image",
                   "gvfx over:Image->gvfx viewer:Image"), links, major)
    # second run: fire v002, sparks v001, summed (colour Add, alpha Add) before the over
    nodes2, links2 = g["nodes2"], set(g["links2"])
    assert nodes2["gvfx fire element"]["image"].endswith("elements/fire/v002/fire.1001.exr")
    assert nodes2["gvfx sparks element"]["image"].endswith("elements/sparks/v001/sparks.1001.exr")
    _assert_node_types(nodes2, major, ROLES2)
    _assert_links(("gvfx fire holdout:Image->gvfx sum 1:A", "gvfx sparks holdout:Image->gvfx sum 1:B",
                   "gvfx fire split:Alpha->gvfx sum alpha 1:Value",
                   "gvfx sparks split:Alpha->gvfx sum alpha 1:Value_001",
                   "gvfx sum 1:Result->gvfx sum 1 alpha:Image", "gvfx sum alpha 1:Value->gvfx sum 1 alpha:Alpha",
                   "gvfx sum 1 alpha:Image->gvfx over:Foreground", "gvfx fire shadow:Result->gvfx sparks shadow:A",
                   # the plate's light from both emitters, added after every shadow
                   "gvfx sparks shadow:Result->gvfx fire +platelight:A",
                   "gvfx fire +platelight:Result->gvfx sparks +platelight:A",
                   "gvfx sparks +platelight:Result->gvfx over:Background", "gvfx over:Image->gvfx output:Image"),
                  links2, major)
    assert g["after_switch"]["gvfx fire element"].endswith("elements/fire/v001/fire.1001.exr")
    assert g["after_switch"]["gvfx sparks element"].endswith("elements/sparks/v001/sparks.1001.exr")


def _element_layers(path: Path) -> dict:
    """An element EXR's channels over the display window (its data window has overscan)."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    px = buf.get_pixels(oiio.FLOAT, oiio.ROI(0, W, 0, H, 0, 1, 0, buf.nchannels))
    return {c: px[..., i] for i, c in enumerate(buf.spec().channelnames)}


def _to_rec709(rgba: np.ndarray) -> np.ndarray:
    """An ACEScg image as Blender's compositor sees it (Linear Rec.709), converted by OpenImageIO."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(oiio.ImageSpec(rgba.shape[1], rgba.shape[0], 4, oiio.FLOAT))
    buf.set_pixels(oiio.ROI(0, rgba.shape[1], 0, rgba.shape[0], 0, 1, 0, 4), np.ascontiguousarray(rgba, np.float32))
    return oiio.ImageBufAlgo.colorconvert(buf, "ACEScg", "lin_rec709").get_pixels(oiio.FLOAT)


@pytest.mark.parametrize("run,comp_version,elements", [
    ("run1", "v001", [("fire", "v001")]),
    ("run2", "v002", [("fire", "v002"), ("sparks", "v001")])])
def test_rendered_comp_matches_gvfx_comp_and_plate(shot, generated, run, comp_version, elements):
    g, frame = generated, FIRST + 2
    out = g["_work"] / "out"
    render = _pixels(g[f"render_{run}"])
    plate = _pixels(shot["work"] / "plate" / f"plate.{frame}.exr", True)
    comp = _pixels(out / "comp" / comp_version / f"comp.{frame}.exr", True)
    assert render.shape == (H, W, 4)
    # the Blender comp is gvfx's own comp (rebuild recipe), frame for frame; gvfx's comp is half float
    # (sparks reach ~700, where a half step is 0.5): a relative tolerance
    assert np.allclose(render[..., :3], comp[..., :3], rtol=3e-3, atol=3e-3)
    layers = [_element_layers(out / "elements" / n / v / f"{n}.{frame}.exr") for n, v in elements]
    near = layers[0]["A"] * (1 - layers[0]["holdout.A"]) > 0.3
    far = np.all([(lay["A"] == 0) & (lay["R"] == 0) & (lay["G"] == 0) & (lay["B"] == 0) & (lay["shadow.A"] < 1e-4)
                  for lay in layers], axis=0)  # no element pixel (a glow is light without alpha), no shadow
    assert near.sum() >= 10 and far.sum() > W * H // 3
    # the plate with the emitters' light on it (the platelight layers, ACEScg like the plate file)
    lit = _pixels(shot["work"] / "plate" / f"plate.{frame}.exr")
    for lay in layers:
        lit[..., :3] += np.stack([lay.get(f"platelight.{c}", 0 * lay["A"]) for c in "RGB"], -1)
    lit = _to_rec709(lit)[..., :3]
    diff = np.abs(render[..., :3] - lit)
    assert np.median(diff.max(-1)[near]) > 0.02     # the element is there
    assert diff[far].max() < 5e-3 * max(1.0, float(lit[far].max()))  # the lit plate is untouched far from it


def test_switching_back_to_an_older_version_changes_the_comp(generated):
    a, b = _pixels(generated["render_switched"]), _pixels(generated["render_run2"])
    assert np.abs(a - b).max() > 0.02


def test_usd_layout_imports_camera_and_cards(generated):
    assert generated["layout_import"] == ["FINISHED"], generated["_log"]
    types = [t for _, t in generated["layout_objects"]]
    assert "CAMERA" in types and "MESH" in types, generated["layout_objects"]


def test_scene_camera_exported_as_chan_in_gvfx_world(generated, shot):
    from gvfx.camera_io import read_chan

    (chan,) = generated["camera_chan"]
    track = read_chan(chan, W, H, haperture_mm=shot["cfg"]["haperture_mm"])
    assert track.frames == shot["track"].frames
    for f in track.frames:
        assert np.allclose(track.transform(f), shot["track"].transform(f), atol=1e-4)
    assert track.camera_at(FIRST).focal_mm == pytest.approx(shot["cfg"]["focal_mm"], rel=1e-5)


@pytest.fixture(scope="module")
def failures(shot, blender):
    return _run(shot, blender, "cancel_errors.py", "cancel")


def test_cancel_mid_job_is_clean(failures):
    f = failures
    assert f["running_during"] is True and f["saw_progress"] is True, f["_log"]
    assert f["cancel_finished"] and f["cancel_state"] == "cancelled"
    assert f["cancel_running_after"] is False and f["cancel_active_after"] is True
    assert f["cancel_tree"] is None and f["cancel_version_items"] == ["NONE"]
    assert "cancelled" in f["cancel_status"]
    # no partial frames: whatever the cancelled version holds is whole EXRs and its version.json
    for vdir in (f["_work"] / "out" / "elements").glob("*/v*"):
        for p in vdir.iterdir():
            assert p.name == "version.json" or p.suffix == ".exr", p
            if p.suffix == ".exr":
                assert _pixels(p).shape == (H, W, 4)


def test_worker_death_and_crash_are_error_reports(failures):
    f = failures
    assert f["kill_finished"] and f["kill_state"] == "error" and f["kill_running_after"] is False
    assert "exited" in f["kill_message"] and "signal 9" in f["kill_message"]
    assert "gvfx worker exited with code 3" in f["crash_error"] and "simulated crash" in f["crash_error"]
    assert f["crash_seconds"] < 20 and f["crash_running_after"] is False


def test_wrong_gvfx_path_says_what_to_fix(failures):
    f = failures
    assert "gvfx executable not found: /nonexistent/venv/bin/gvfx" in f["wrong_path_error"]
    assert "Preferences > Add-ons > gvfx" in f["wrong_path_error"]
    assert f["wrong_path_check_error"] and f["wrong_path_report"].startswith("FAIL worker:")


def test_check_shows_doctor_lines(failures):
    lines = failures["doctor_report"].splitlines()
    assert len(lines) >= 8 and all(ln.split(" ", 1)[0] in ("ok", "warn", "FAIL") for ln in lines)
    assert any(ln.startswith("ok python") for ln in lines)
    assert any(ln.startswith("ok blender adapter") for ln in lines), lines  # the installed extension
    assert failures["doctor_error"] is None or "FAIL" in failures["doctor_error"]


def test_missing_usd_layout_is_reported(failures):
    assert "no USD layout at" in failures["layout_error"] and "layout.usda" in failures["layout_error"]


def test_legacy_zip_installs_as_an_addon(shot, blender):
    r = _run(shot, blender, "legacy_install.py", "legacy", timeout=60)
    assert r["install"] == ["FINISHED"] and r["operators"] is True and r["settings"] == "IMAGE"
    assert r["prefs"] == str(r["_work"])


@pytest.fixture(scope="module")
def file_open(shot, blender):
    return _run(shot, blender, "file_open.py", "file_open")


def test_operator_cancel_removes_its_timer_and_stops_the_job(file_open):
    f = file_open
    assert f["cancel_started"] and f["had_timer"], f["_log"]
    assert f["cancel_timer_after"] and f["cancel_active_after"] and f["cancel_requested"]
    assert f["cancel_running_after"] is False
    assert f["cancel_ended"] and f["cancel_state"] == "cancelled", f["_log"]  # the worker confirmed it


def test_file_open_mid_job_stops_it(file_open):
    f = file_open
    assert f["open_started"] and f["saved_running"] is True, f["_log"]
    assert f["open_active_after"] and f["open_requested"]
    assert f["open_running_after"] and not any(f["open_running_after"])  # no stale "running" from the file
    assert f["open_ended"] and f["open_state"] == "cancelled", f["_log"]
    assert f["handlers_kept"] == [True, True]  # persistent: still there for the next File > Open
    assert f["handlers_after_disable"] == []
