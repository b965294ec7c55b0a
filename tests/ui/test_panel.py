"""The gvfx panel offscreen (pytest-qt) against a real worker and a tiny rendered demo shot: versions,
switching them, the A/B wipe, channels, the job queue (progress, cancel), playback and ``gvfx studio``.
Screenshots of the panel and viewer are saved as test artefacts ($GVFX_TEST_ARTIFACTS or pytest's tmp)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import yaml  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6 import QtGui  # noqa: E402

from gvfx.client import WorkerClient  # noqa: E402
from gvfx.ui.panel import ClientBackend, GvfxPanel, find_timelines  # noqa: E402
from gvfx.ui.viewer import WIPE_LINE, wipe_column  # noqa: E402

FIRST, N_FRAMES = 1001, 6


def _job_dict(scene, seed: int) -> dict:
    from gvfx.demo.run import demo_job_dict, reference_image

    job = demo_job_dict(scene, "plate/plate.####.exr", "plate/camera.usda", list(range(FIRST, FIRST + N_FRAMES)),
                        str(reference_image()))
    (sparks,) = [e for e in job["elements"] if e["name"] == "sparks"]
    sparks.update(seed=seed, shutter=0.0, motion_samples=1)
    sparks["params"].update(count=400, emit_frames=6)
    sparks["match"]["grain"] = False
    job["elements"] = [sparks]
    return job


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """A demo shot (96x54, 6 frames, sparks) rendered twice: sparks v001 (seed 11) and v002 (seed 12)."""
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.scene import write_demo_plate
    from gvfx.job import load_job
    from gvfx.render import render_job

    root = tmp_path_factory.mktemp("ui_shot")
    _, track, scene = write_demo_plate(root / "plate", 96, 54, list(range(FIRST, FIRST + N_FRAMES)))
    write_usd_camera(root / "plate" / "camera.usda", track, fps=24.0)
    for seed in (11, 12):
        (root / "job.yaml").write_text(yaml.safe_dump(_job_dict(scene, seed), sort_keys=False))
        result = render_job(load_job(root / "job.yaml"))
    (root / "job_more.yaml").write_text(yaml.safe_dump(_job_dict(scene, 13), sort_keys=False))
    return {"root": root, "timeline": result.timeline, "scene": scene}


@pytest.fixture(scope="module")
def client():
    c = WorkerClient([sys.executable, "-m", "gvfx", "worker"])
    c.start()
    yield c
    c.shutdown()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    out = Path(os.environ.get("GVFX_TEST_ARTIFACTS") or tmp_path) / "ui"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def panel(qtbot, client, shot):
    backend = ClientBackend(client)
    p = GvfxPanel(backend)
    backend.listeners.append(p.handle_event)
    qtbot.addWidget(p)
    p.resize(1100, 600)
    p.show()
    assert p.load_timeline(str(shot["timeline"])), p.message.text()
    yield p
    backend.timer.stop()


def _preview(client, pattern: str, channel: str = "rgb", frame: int = FIRST) -> QtGui.QImage:
    ev = client.request("preview", path=pattern, frame=frame, channel=channel, exposure=0.0, max_size=512)
    assert ev["type"] == "result", ev
    return QtGui.QImage(ev["data"]["path"]).convertToFormat(QtGui.QImage.Format.Format_RGB32)


def test_versions_switch_and_wipe(panel, client, shot, artifacts):
    browser, viewer = panel.browser, panel.viewer
    names = [browser.topLevelItem(i).text(0) for i in range(browser.topLevelItemCount())]
    assert names == ["sparks", "comp"]
    sparks = browser.topLevelItem(0)
    assert [sparks.child(i).text(0) for i in range(sparks.childCount())] == ["v001", "v002"]
    assert sparks.child(1).text(1) == "complete" and sparks.child(1).text(2) == "1001-1006"
    assert set(viewer.sources) == {"plate", "element", "comp"} and "/v002/" in viewer.sources["element"]
    assert (viewer.frame.minimum(), viewer.frame.maximum()) == (FIRST, FIRST + N_FRAMES - 1)

    # switching versions changes the element the viewer shows
    assert panel.select_version("sparks", "v001")
    assert "/sparks/v001/" in viewer.sources["element"]
    viewer.frame.setValue(FIRST + 3)
    viewer.set_ab("element")
    v1 = QtGui.QImage(viewer.image)
    panel.select_version("sparks", "v002")
    v2 = QtGui.QImage(viewer.image)
    assert v1.size().width() == 96 and v1 != v2

    # A/B wipe: plate left of the boundary, element right of it, a yellow line on it
    viewer.set_ab("plate", "element", 0.5)
    img = viewer.image
    x = wipe_column(96, 0.5)
    plate = _preview(client, viewer.sources["plate"], frame=FIRST + 3)
    element = _preview(client, viewer.sources["element"], frame=FIRST + 3)
    assert plate != element
    for y in (5, 27, 50):
        assert img.pixel(x - 3, y) == plate.pixel(x - 3, y)
        assert img.pixel(x + 3, y) == element.pixel(x + 3, y)
        assert QtGui.QColor(img.pixel(x, y)) == WIPE_LINE
    viewer.set_ab("plate", "element", 0.25)
    assert viewer.image.pixel(30, 20) == element.pixel(30, 20)  # the boundary moved left of x=30
    viewer.grab().save(str(artifacts / "viewer_wipe.png"))
    panel.grab().save(str(artifacts / "panel.png"))
    shot_img = QtGui.QImage(str(artifacts / "panel.png"))
    assert shot_img.width() >= 1000 and not shot_img.isNull()


def test_channels_alpha_z_and_layers(panel, shot, artifacts):
    from gvfx.exr import read_exr

    viewer = panel.viewer
    viewer.frame.setValue(FIRST + 4)
    viewer.set_ab("element")
    viewer.set_channel("alpha")
    img = viewer.image
    el = read_exr(viewer.sources["element"].replace("####", str(FIRST + 4)))
    alpha = el.rgba()[..., 3]
    y, x = divmod(int(alpha.argmax()), alpha.shape[1])
    c = QtGui.QColor(img.pixel(x, y))
    assert c.red() == c.green() == c.blue() == min(255, int(alpha[y, x] * 255 + 0.5))
    y0, x0 = divmod(int(alpha.argmin()), alpha.shape[1])
    assert alpha[y0, x0] == 0 and QtGui.QColor(img.pixel(x0, y0)).red() == 0
    viewer.grab().save(str(artifacts / "viewer_alpha.png"))

    viewer.set_ab("plate")
    viewer.set_channel("Z")  # near = white: the bottom of the demo plate (floor) is nearer than the top
    z = viewer.image
    assert QtGui.QColor(z.pixel(48, 52)).red() > QtGui.QColor(z.pixel(48, 2)).red()
    viewer.set_ab("element")
    viewer.set_channel("holdout")
    assert not viewer.image.isNull() and viewer.error == ""
    viewer.set_channel("nosuchlayer")
    assert viewer.image.isNull() and "nosuchlayer" in viewer.error
    viewer.set_channel("rgb")
    viewer.exposure.setValue(2.0)
    assert not viewer.image.isNull()

    # playback steps through the frames and wraps
    viewer.frame.setValue(FIRST + N_FRAMES - 1)
    viewer._step()
    assert viewer.current_frame() == FIRST
    viewer.play.setChecked(True)
    assert viewer.timer.isActive()
    viewer.play.setChecked(False)


def test_job_queue_progress_cancel_and_reload(panel, qtbot, shot):
    queue = panel.queue
    job = str(shot["root"] / "job_more.yaml")
    first = panel.submit_job(job)
    second = panel.submit_job(job)
    qtbot.mouseClick(queue.buttons[second], __import__("PySide6.QtCore", fromlist=["Qt"]).Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: queue.status.get(second) == "cancelled", timeout=60000)
    qtbot.waitUntil(lambda: queue.status.get(first) in ("done", "failed"), timeout=120000)
    assert queue.status[first] == "done", queue.rows[first].toolTip(3)
    assert queue.bars[first].value() == 100 and not queue.buttons[first].isEnabled()
    # the finished job's timeline was reloaded: a third sparks version
    qtbot.waitUntil(lambda: panel.browser.topLevelItem(0).childCount() == 3, timeout=10000)
    assert "/v003/" in panel.viewer.sources["element"]


def test_studio_window_opens_a_shot_root(qtbot, client, shot):
    from gvfx.ui.studio import make_window

    assert find_timelines(str(shot["root"])) == [str(shot["timeline"])]
    win = make_window(str(shot["root"]), client=client)
    qtbot.addWidget(win)
    assert win.panel.timeline == str(shot["timeline"]) and not win.panel.viewer.image.isNull()
    win.backend.timer.stop()
