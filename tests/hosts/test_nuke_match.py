"""The GVFX Match node's Generate end to end against the fake ``nuke`` (tests/hosts/fake_nuke): plate,
depth, element and camera inputs written with Write nodes, a real ``gvfx match`` subprocess, its printed
estimates parsed into the node's knobs, the internal Read pointed at the matched element, and a second
Generate making a new version folder."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from fake_nuke.paths import add_fake_nuke

add_fake_nuke()

import nuke  # noqa: E402  (the fake)
from gvfx_nuke import generate as G  # noqa: E402
from gvfx_nuke import jobs as J  # noqa: E402
from gvfx_nuke import nodes as N  # noqa: E402
from gvfx_nuke import params as P  # noqa: E402

FIRST, LAST = 1001, 1004
MATCHED_LAYERS = {"R", "G", "B", "A", "Z", "holdout.A", "shadow.A"}
MATCHED_PREFIXES = ("lightwrap.", "grain.", "motion.")


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """A tiny demo plate (R, G, B, A, Z), its camera, and a sparks element rendered on it by render_job."""
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.scene import write_demo_plate
    from gvfx.job import parse_job
    from gvfx.render import render_job

    root = tmp_path_factory.mktemp("nuke_match")
    pattern, track, scene = write_demo_plate(root / "plate", 96, 54, list(range(FIRST, LAST + 1)))
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    job = {"name": "el", "plate": {"path": pattern}, "depth": {"layer": "Z"}, "camera": {"file": "cam.usda"},
           "output": "out", "comp": False, "match": {"grain": False},
           "elements": [{"name": "sparks", "effect": "sparks", "placement": {"point": list(scene.table_edge_point)},
                         "size_m": 0.5, "seed": 3, "motion_samples": 1, "shutter": 0.0,
                         "params": {"count": 300, "intensity": 20.0}}]}
    render_job(parse_job(job, root))
    element = root / "out" / "elements" / "sparks" / "v001" / "sparks.####.exr"
    assert (root / "out/elements/sparks/v001/sparks.1002.exr").is_file()
    return {"plate": pattern, "element": str(element), "track": track}


@pytest.fixture
def script(tmp_path, shot, monkeypatch):
    from gvfx.camera_io import matrix_to_euler_zxy

    nuke.reset()
    monkeypatch.setenv("GVFX_EXECUTABLE", f"{sys.executable} -m gvfx")
    # Nuke's embedded Python sets these; a gvfx subprocess that inherited them would not start
    monkeypatch.setenv("PYTHONHOME", str(tmp_path / "Nuke15.1v1" / "python"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "Nuke15.1v1" / "plugins"))
    G.RUNS.clear()
    nuke.root().script_name = str(tmp_path / "sh020_comp_v003.nk")
    plate = nuke.nodes.Read(file=shot["plate"], first=FIRST, last=LAST)
    element = nuke.nodes.Read(file=shot["element"], first=FIRST, last=LAST)
    track = shot["track"]
    frames = list(track.frames)
    cam = nuke.nodes.Camera2()
    cam["translate"].curve = lambda f: list(map(float, track.cam_to_world[frames.index(f)][:3, 3]))
    cam["rotate"].curve = lambda f: list(map(float, matrix_to_euler_zxy(track.cam_to_world[frames.index(f)][:3, :3])))
    cam["focal"].setValue(float(track.camera_at(FIRST).focal_mm))
    cam["haperture"].setValue(float(track.camera.haperture_mm))
    nuke.addKnobChanged(N.knob_changed, nodeClass="Group")
    yield {"plate": plate, "element": element, "cam": cam, "dir": tmp_path, "plate_pattern": shot["plate"]}
    G.RUNS.clear()


def make_match(s):
    node = N.create_match()
    node.setInput(N.input_index(J.MATCH, "plate"), s["plate"])
    node.setInput(N.input_index(J.MATCH, "element"), s["element"])
    node.setInput(N.input_index(J.MATCH, "depth"), s["plate"])  # the plate's Z as the depth input
    node.setInput(N.input_index(J.MATCH, "camera"), s["cam"])
    node[P.match_knob_name("grain")].setValue(True)
    node[P.match_knob_name("shadow_strength")].setValue(0.9)
    node[P.given_knob_name("focus_m")].setValue(True)
    node[P.match_knob_name("focus_m")].setValue(2.5)
    return node


def run_to_end(run, timeout=50):
    assert run is not None, (nuke.MESSAGES,)
    assert nuke.process_events(lambda: run.done, timeout), f"no end of gvfx match (status {run.status})"
    return run


def knob_estimates(node) -> dict:
    out = {}
    for line in node["estimates"].value().splitlines():
        key, _, value = line.partition(": ")
        out[key] = json.loads(value)
    return out


def test_match_generate_writes_layers_comp_estimates_and_versions(script):
    from gvfx.exr import read_exr

    node = make_match(script)
    run = run_to_end(G.generate(node))
    assert run.status == "done", (nuke.MESSAGES, node["status"].value())
    root = script["dir"] / "gvfx" / "sh020_comp" / node.name()
    v1 = root / "match" / "v001"

    # the inputs went through Writes over the frame range (plate, depth, element), then were deleted
    written = sorted(c[4] for c in nuke.CALLS if c[0] == "execute")
    # File_Knob.value() is the %04d form
    assert written == sorted(str(root / "inputs" / f"{n}.%04d.exr") for n in ("plate", "depth", "element"))
    assert all(c[2:4] == (FIRST, LAST) and c[5] == "ACEScg" for c in nuke.CALLS if c[0] == "execute")
    assert not any(n.Class() == "Write" for n in nuke.allNodes())
    assert len((root / "inputs/camera.chan").read_text().splitlines()) == LAST - FIRST + 1
    settings = json.loads((v1 / "settings.json").read_text())
    assert settings == {"shadow_strength": 0.9, "focus_m": 2.5}  # grain on is the default: not written

    # the matched element: every frame, with the match layers
    for f in range(FIRST, LAST + 1):
        assert (v1 / f"element.{f}.exr").is_file() and (v1 / f"comp.{f}.exr").is_file()
    mid = FIRST + 1
    el = read_exr(v1 / f"element.{mid}.exr")
    chans = set(el.channels)
    assert MATCHED_LAYERS <= chans, sorted(chans)
    for prefix in MATCHED_PREFIXES:
        assert any(c.startswith(prefix) for c in chans), f"no {prefix}* layer in {sorted(chans)}"
    assert el.channels["A"].max() > 0.05  # the sparks are there
    assert np.abs(el.layer("grain")).max() > 0  # grain on

    # the comp differs from the plate where the element is
    comp = read_exr(v1 / f"comp.{mid}.exr").rgba()
    plate = read_exr(script["plate_pattern"].replace("####", str(mid))).rgba()
    where = el.channels["A"] > 0.05
    assert np.isfinite(comp).all()
    assert np.abs(comp[where, :3] - plate[where, :3]).max() > 0.05

    # the estimates knob holds what gvfx match printed, equal to the gvfx:match:* metadata it wrote
    est = knob_estimates(node)
    md = {k.split(":", 2)[2]: json.loads(v) if isinstance(v, str) else v for k, v in el.metadata.items()
          if k.startswith("gvfx:match:") and k not in ("gvfx:match:settings", "gvfx:match:overscan_px")}
    assert set(est) == set(md), (sorted(est), sorted(md))
    for key, value in md.items():
        assert est[key] == pytest.approx(value) if isinstance(value, (int, float)) else est[key] == value, key
    assert est["focus_m"] == pytest.approx(2.5) and est["sources"]["focus"] == "given"
    assert est["grain"] is not None and est["sources"]["grain"] != "off"
    assert json.loads((v1 / "estimates.json").read_text()) == est

    # the Read inside the group shows v001's comp (the "show" knob: element shows the matched layer)
    read = N.read_node(node)
    assert node["output"].value() == "comp"
    assert read["file"].value() == str(v1 / "comp.%04d.exr")
    assert (read.width(), read.height()) == (96, 54)  # fromUserText set the format too
    nuke.user_set(node["output"], "element")
    assert read["file"].value() == str(v1 / "element.%04d.exr")
    nuke.user_set(node["output"], "comp")
    assert (read["first"].value(), read["last"].value()) == (FIRST, LAST)
    assert [v.split()[:2] for v in node["version"].values] == [["v001", "complete"]]
    assert node["status"].value() == "v001 done"
    assert G.RUNS == {}

    # a second Generate: v002 beside v001, v001 untouched; the Read follows the new version
    before = {p.name: p.stat().st_mtime_ns for p in v1.iterdir()}
    node[P.match_knob_name("shadow_strength")].setValue(0.3)
    run_to_end(G.generate(node))
    v2 = root / "match" / "v002"
    assert {p.name: p.stat().st_mtime_ns for p in v1.iterdir()} == before
    assert (v2 / f"element.{mid}.exr").is_file() and (v2 / f"comp.{mid}.exr").is_file()
    assert json.loads((v2 / "settings.json").read_text())["shadow_strength"] == pytest.approx(0.3)
    assert read["file"].value() == str(v2 / "comp.%04d.exr")
    assert [v.split()[0] for v in node["version"].values] == ["v001", "v002"]
    assert node["version"].value().startswith("v002")

    # choosing v001 in the version knob switches the Read back
    nuke.user_set(node["version"], node["version"].values[0])
    assert read["file"].value() == str(v1 / "comp.%04d.exr")
    assert node["version"].values[0] == f"v001  complete  {FIRST}-{LAST}"


def test_match_without_element_writes_nothing(script):
    node = make_match(script)
    node.setInput(N.input_index(J.MATCH, "element"), None)
    assert G.generate(node) is None
    assert "element: connect an element" in node["status"].value()
    assert not [c for c in nuke.CALLS if c[0] == "execute"]  # no input written before the knobs were checked
    assert not (script["dir"] / "gvfx").exists() and G.RUNS == {}
