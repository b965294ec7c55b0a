"""The Nuke adapter's ``nuke`` calls against a fake ``nuke`` (tests/hosts/fake_nuke): a whole Generate with
a real worker -- knobs set, plate and camera written, job rendered, Read pointed at the new version,
versions listed, a queued job cancelled, and the farm files written next to the script."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_nuke.paths import add_fake_nuke

add_fake_nuke()

import nuke  # noqa: E402  (the fake)
from gvfx_nuke import generate as G  # noqa: E402
from gvfx_nuke import nodes as N  # noqa: E402
from gvfx_nuke import params as P  # noqa: E402
from gvfx_nuke.session import Session  # noqa: E402

from gvfx.client import WorkerClient  # noqa: E402

FIRST, LAST = 1001, 1006


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    from gvfx.demo.scene import write_demo_plate

    out = tmp_path_factory.mktemp("nuke_plate")
    pattern, track, scene = write_demo_plate(out / "plate", 96, 54, list(range(FIRST, LAST + 1)))
    return pattern, track, scene


@pytest.fixture(scope="module")
def worker_session():
    s = Session(lambda: WorkerClient([sys.executable, "-m", "gvfx", "worker"]), nuke.executeInMainThread)
    yield s
    s.shutdown()


@pytest.fixture
def script(tmp_path, plate, worker_session, monkeypatch):
    from gvfx.camera_io import matrix_to_euler_zxy

    nuke.reset()
    monkeypatch.setenv("GVFX_EXECUTABLE", f"{sys.executable} -m gvfx")
    G.set_session(worker_session)
    G.RUNS.clear()
    pattern, track, scene = plate
    nuke.root().script_name = str(tmp_path / "sh010_comp_v001.nk")
    read = nuke.nodes.Read(file=pattern.replace("####", "####"), first=FIRST, last=LAST)
    cam = nuke.nodes.Camera2()
    frames = list(track.frames)

    def at(f):
        return track.cam_to_world[frames.index(f)]
    cam["translate"].curve = lambda f: list(map(float, at(f)[:3, 3]))
    cam["rotate"].curve = lambda f: list(map(float, matrix_to_euler_zxy(at(f)[:3, :3])))
    cam["focal"].setValue(float(track.camera_at(FIRST).focal_mm))
    cam["haperture"].setValue(float(track.camera.haperture_mm))
    nuke.addKnobChanged(N.knob_changed, nodeClass="Group")
    yield {"read": read, "cam": cam, "scene": scene, "dir": tmp_path, "pattern": pattern}
    G.set_session(None)


def make_sparks(s, name_seed=11):
    node = N.create_element()
    node.setInput(0, s["read"])
    node.setInput(2, s["cam"])
    nuke.user_set(node["effect"], "sparks")  # the artist picks sparks: knobChanged shows its knobs only
    assert node[P.param_knob_name("sim", "sparks", "count")].visible
    assert not node[P.param_knob_name("sim", "fire", "buoyancy")].visible
    nuke.user_set(node["placement"], "point")
    assert node["point"].visible and not node["position"].visible
    node["point"].setValue([round(float(c), 4) for c in s["scene"].table_edge_point])
    node["size_m"].setValue(0.5)
    node["seed"].setValue(name_seed)
    node["shutter"].setValue(0.0)
    node["motion_samples"].setValue(1)
    node[P.param_knob_name("sim", "sparks", "count")].setValue(300)
    node[P.param_knob_name("sim", "sparks", "intensity")].setValue(20.0)
    node[P.match_knob_name("grain")].setValue(False)
    return node


def run_to_end(run, timeout=150):
    assert run is not None, nuke.MESSAGES
    assert nuke.process_events(lambda: run.done, timeout), f"no end of job (status {run.status})"
    return run


def test_generate_renders_and_switches_the_read(script):
    from gvfx.exr import read_exr

    node = make_sparks(script)
    run = run_to_end(G.generate(node))
    assert run.status == "done", (nuke.MESSAGES, node["status"].value())
    root = script["dir"] / "gvfx" / "sh010_comp" / node.name()

    # the plate went through a Write executed over the frame range, scene-linear in the working space
    (call,) = [c for c in nuke.CALLS if c[0] == "execute"]
    assert call[2:4] == (FIRST, LAST) and call[5] == "ACEScg"
    src, written = read_exr(script["pattern"].replace("####", "1003")), read_exr(root / "inputs/plate.1003.exr")
    assert np.allclose(written.rgba(), src.rgba()) and np.allclose(written.depth(), src.depth())
    assert not any(n.Class() == "Write" for n in nuke.allNodes())  # the temporary Write is gone
    chan = (root / "inputs/camera.chan").read_text().splitlines()
    assert len(chan) == 6 and chan[0].startswith("1001 ")

    job = json.loads((root / f"{node.name()}.gvfx.json").read_text())
    assert job["camera"]["file"].endswith("inputs/camera.chan")
    assert job["elements"][0]["params"] == {"count": 300, "intensity": 20.0}
    assert job["match"] == {"grain": False}

    # progress reached the ProgressTask on the main thread
    task = nuke.TASKS[-1]
    assert task.progress and max(task.progress) == 100 and any("render" in m for m in task.messages)

    # the Read inside the group shows the new version; the version knob lists it
    read = N.read_node(node)
    # File_Knob.value() is the %04d form; fromUserText set the range (and the format) with the file
    assert read["file"].value() == str(root / "elements" / node.name() / "v001" / f"{node.name()}.%04d.exr")
    assert (read["first"].value(), read["last"].value()) == (FIRST, LAST)
    el = read_exr(read["file"].value() % 1004)
    assert el.rgba()[..., 3].max() > 0.05  # sparks are there
    assert node["version"].values == ["v001  complete  1001-1006"]
    assert "focus_m" in node["estimates"].value()

    # a second Generate makes v002; choosing v001 in the version knob switches the Read back
    node["seed"].setValue(12)
    run_to_end(G.generate(node))
    assert [v.split()[0] for v in node["version"].values] == ["v001", "v002"]
    assert "/v002/" in read["file"].value()
    nuke.user_set(node["version"], node["version"].values[0])
    assert "/v001/" in read["file"].value()
    nuke.user_set(node["output"], "comp")
    assert "/comp/v002/comp.%04d.exr" in read["file"].value()


def test_cancel_a_queued_generate_and_report_errors(script):
    a, b = make_sparks(script), make_sparks(script, 5)
    run_a = G.generate(a)
    run_b = G.generate(b)
    assert run_a is not None and run_b is not None, nuke.MESSAGES
    run_b.task.cancelled = True  # the artist presses Cancel on the progress bar
    run_to_end(run_b)
    assert run_b.status == "cancelled" and b["status"].value() == "cancelled"
    run_to_end(run_a)
    assert run_a.status == "done"

    # a bad knob never reaches the worker: one message naming it
    a["size_m"].setValue(-1.0)
    assert G.generate(a) is None
    assert nuke.MESSAGES == [] and "size_m: -1.0 must be greater than 0" in a["status"].value()
    for n in nuke.selectedNodes():  # nothing selected: createNode connects nothing
        n.setSelected(False)
    c = N.create_element()
    assert G.generate(c) is None and "connect a plate" in c["status"].value()


def test_submit_to_farm_writes_job_and_template_next_to_the_script(script):
    node = make_sparks(script)
    template = G.submit_to_farm(node)
    assert template is not None, node["status"].value()
    assert template == script["dir"] / f"sh010_comp_v001_{node.name()}.openjd.yaml"
    text = template.read_text()
    assert "specificationVersion" in text and "Render" in text
    job = json.loads((script["dir"] / f"sh010_comp_v001_{node.name()}.gvfx.json").read_text())
    assert job["elements"][0]["effect"] == "sparks"
    assert Path(job["plate"]["path"].replace("####", "1001")).is_file()
