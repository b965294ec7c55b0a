"""The adapter against Nuke 15 and 16 as Foundry documents them (the fake ``nuke`` now behaves the same,
each behaviour cited in tests/hosts/fake_nuke): array knobs that return one float, ``%04d`` from
File_Knob, ``fromUserText`` for Reads, ``createNode`` for toolbar nodes, knobChanged only from the
artist, ``restorePanel`` building a new panel per call, role names as working spaces, PySide6 or PySide2
(PySide2 has no wheel for Python 3.11: its selection and the panel's code path are tested with a
``PySide2`` stand-in module over PySide6, not real PySide2), and a start-up that never raises."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fake_nuke.paths import FAKE, HOSTS_NUKE, REPO, add_fake_nuke

add_fake_nuke()

import nuke  # noqa: E402  (the fake)
from gvfx_nuke import colorspace as CS  # noqa: E402
from gvfx_nuke import generate as G  # noqa: E402
from gvfx_nuke import jobs as J  # noqa: E402
from gvfx_nuke import nodes as N  # noqa: E402
from gvfx_nuke import params as P  # noqa: E402

FIRST, LAST = 1001, 1003


@pytest.fixture
def fresh():
    nuke.reset()
    nuke.addKnobChanged(N.knob_changed, nodeClass="Group")
    yield
    nuke.GUI = False


# ---------------------------------------------------------------- knobs

def test_equal_array_knobs_are_read_by_index(fresh):
    node = N.create_element()
    point = node["point"]
    assert point.value() == 0.0  # Nuke: one float when all components are equal
    knobs = G.gather_knobs(node)
    assert knobs["point"] == [0.0, 0.0, 0.0] and knobs["position"] == [0.0, 0.0]
    point.setValue(2.5, 1)
    assert G.gather_knobs(node)["point"] == [0.0, 2.5, 0.0]
    # the job builds from them (it said "expected 3 numbers" when value() gave 0.0)
    k = {name: v for name, v in knobs.items() if name in ("point", "position")}
    from test_nuke_jobs import build, knobs as job_knobs
    job = build(k=job_knobs(placement="point", **k))
    assert job["elements"][0]["placement"]["point"] == [0.0, 0.0, 0.0]


def test_knob_changed_fires_for_the_artist_not_for_set_value(fresh):
    node = N.create_element()
    sparks = node[P.param_knob_name("sim", "sparks", "count")]
    assert not sparks.visible
    node["effect"].setValue("sparks")  # from code: Nuke runs no knobChanged
    assert not sparks.visible
    nuke.user_set(node["effect"], "sparks")  # the artist: knobChanged updates the knobs shown
    assert sparks.visible


def test_toolbar_node_connects_to_the_selected_read(fresh, tmp_path):
    from gvfx.demo.scene import write_demo_plate

    pattern, _, _ = write_demo_plate(tmp_path / "plate", 32, 18, [FIRST])
    read = nuke.nodes.Read(file=pattern, first=FIRST, last=FIRST)
    assert read.input(0) is None and not read.isSelected()  # nuke.nodes: not connected, not selected
    nuke.user_select(read)
    node = N.create_element()
    assert any(c[:2] == ("createNode", "Group") for c in nuke.CALLS)
    assert node.input(0) is read and node.name() == "GVFX_Element"
    assert node.isSelected() and not read.isSelected() and node.ypos() > read.ypos()
    with node:  # the group's inside is wired explicitly
        (out,) = nuke.allNodes("Output")
        assert out.input(0) is nuke.toNode(N.READ)


def test_read_follows_file_range_and_format(fresh, tmp_path):
    from gvfx.demo.scene import write_demo_plate

    small, _, _ = write_demo_plate(tmp_path / "small", 32, 18, [FIRST, FIRST + 1])
    big, _, _ = write_demo_plate(tmp_path / "big", 48, 24, list(range(FIRST, LAST + 1)))
    node = N.create_element()
    N.set_read(node, small, [FIRST, FIRST + 1])
    read = N.read_node(node)
    assert read["file"].value() == small.replace("####", "%04d")
    assert (read.width(), read.height(), read.firstFrame(), read.lastFrame()) == (32, 18, FIRST, FIRST + 1)
    N.set_read(node, big, [FIRST, LAST])
    assert (read.width(), read.height(), read.firstFrame(), read.lastFrame()) == (48, 24, FIRST, LAST)
    read["file"].setValue(small)  # what set_read used to do: the format and range stay the old ones
    assert (read.width(), read.lastFrame()) == (48, LAST)


# ---------------------------------------------------------------- colour

NUKE_DEFAULT_LIKE = """ocio_profile_version: 1
search_path: luts
roles:
  color_picking: sRGB
  # a comment inside the roles
  data: raw
  reference: linear
  scene_linear: linear
  compositing_linear: linear
displays:
  default:
    - !<View> {name: None, colorspace: raw}
colorspaces:
  - !<ColorSpace>
    name: linear
    family: ""
    bitdepth: 32f
    isdata: false
  - !<ColorSpace>
    name: sRGB
    bitdepth: 32f
  - !<ColorSpace>
    name: raw
    bitdepth: 32f
    isdata: true
"""


def test_roles_resolve_through_the_scripts_own_config(tmp_path):
    import OpenImageIO as oiio

    cfg = tmp_path / "config.ocio"
    cfg.write_text(NUKE_DEFAULT_LIKE)
    oiio_cfg = oiio.ColorConfig(str(cfg))  # OCIO itself (inside OIIO) reads the same roles
    roles = CS.config_roles(cfg)
    for role in ("scene_linear", "compositing_linear", "data", "color_picking"):
        assert roles[role] == oiio_cfg.getColorSpaceNameByRole(role)
    ws = CS.resolve_working_space("scene_linear", ocio_config="custom", config_path=str(cfg))
    assert ws == "linear" and J.colorspace_for_job(ws) == "lin_rec709"  # linear Rec.709, not ACEScg
    # Nuke's own configs
    assert CS.resolve_working_space("scene_linear", color_management="Nuke") == "linear"
    assert CS.resolve_working_space("scene_linear", ocio_config="nuke-default") == "linear"
    assert J.colorspace_for_job(CS.resolve_working_space("scene_linear", ocio_config="aces_1.2")) == "ACEScg"
    assert CS.resolve_working_space("scene_linear",
                                    ocio_config="fn-nuke_cg-config-v1.0.0_aces-v1.3_ocio-v2.1") == "ACEScg"
    assert CS.resolve_working_space("ACES - ACEScg", ocio_config="aces_1.2") == "ACES - ACEScg"  # a name stays
    with pytest.raises(P.KnobError, match="role 'scene_linear' of the config 'studio_x'"):
        CS.resolve_working_space("scene_linear", ocio_config="studio_x")
    with pytest.raises(P.KnobError, match="has no role 'rendering'"):
        CS.resolve_working_space("rendering", ocio_config="custom", config_path=str(cfg))
    with pytest.raises(P.KnobError, match="cannot read the OCIO config"):
        CS.resolve_working_space("scene_linear", ocio_config="custom", config_path=str(tmp_path / "none.ocio"))


def test_working_space_role_in_the_script_goes_through_its_config(fresh, tmp_path):
    cfg = tmp_path / "config.ocio"
    cfg.write_text(NUKE_DEFAULT_LIKE)
    root = nuke.root()
    root["workingSpaceLUT"].setValue("scene_linear")
    root["OCIO_config"].setValue("custom")
    root["customOCIOConfigPath"].setValue(str(cfg))
    assert G._working_space(root) == "linear"
    root["colorManagement"].setValue("Nuke")
    root["OCIO_config"].setValue("")
    assert G._working_space(root) == "linear"


# ---------------------------------------------------------------- panel

@pytest.fixture
def gui(fresh, monkeypatch, tmp_path, qapp):
    from gvfx_nuke import panel as PN
    from nukescripts import panels

    class FakeSession:
        def __init__(self):
            self.listeners = []

    sess = FakeSession()
    monkeypatch.setattr(PN.NukeBackend, "__init__", lambda self: setattr(self, "session", sess))
    monkeypatch.setattr(PN, "_panel", None)
    monkeypatch.setattr(PN, "_widgets", [])
    panels.PANELS.clear()
    nuke.GUI = True
    nuke.root().script_name = str(tmp_path / "sh030_comp_v002.nk")
    PN.register()
    return {"panel": PN, "session": sess, "panels": panels}


def test_panel_is_made_once_and_its_listener_goes_with_it(gui):
    PN, sess, panels = gui["panel"], gui["session"], gui["panels"]
    first = PN.show()
    assert PN.show() is first and len(panels.PANELS) == 1  # restorePanel builds a new panel per call
    assert first.pane is nuke.getPaneFor("Properties.1") and first.widget is not None
    assert sess.listeners == [first.widget.handle_event] and PN._widgets == [first.widget]
    first.close()  # the artist closes it: Qt destroys the widget
    assert sess.listeners == [] and PN._widgets == []
    second = PN.show()
    assert second is not first and len(panels.PANELS) == 2 and len(sess.listeners) == 1


def test_panel_follows_the_selection_without_knob_changed(gui, qtbot):
    PN = gui["panel"]
    panel = PN.show()
    seen = []
    panel.widget.load_timeline = lambda path, element=None: seen.append((Path(path).name, element)) or True
    a = N.create_element()
    b = N.create_element()
    a.setSelected(False)
    b.setSelected(False)
    b.setSelected(True)  # selected from code: no knobChanged fires, the panel's poll sees it
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)
    assert seen == [("sh030_comp.otio", J.element_name(b.name()))]
    nuke.user_select(a)
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=3000)
    assert seen[1][1] == J.element_name(a.name())


# ---------------------------------------------------------------- Qt bindings and start-up

def test_qt_binding_selection():
    from gvfx.ui import qt

    assert qt.select_binding(lambda n: True, forced=None) == "PySide6"
    assert qt.select_binding(lambda n: n == "PySide2", forced=None) == "PySide2"  # Nuke 15
    assert qt.select_binding(lambda n: True, forced="PySide2") == "PySide2"
    with pytest.raises(qt.QtBindingError, match="neither can be imported"):
        qt.select_binding(lambda n: False, forced=None)
    with pytest.raises(qt.QtBindingError, match="GVFX_QT='Qt4'"):
        qt.select_binding(lambda n: True, forced="Qt4")
    assert qt.BINDING == "PySide6"  # this venv


def _run(code: str, extra_path: list[str] | None = None, **env) -> subprocess.CompletedProcess:
    prelude = f"import sys\nsys.path[:0] = {[*(extra_path or []), str(HOSTS_NUKE), str(FAKE), str(REPO)]!r}\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env={"QT_QPA_PLATFORM": "offscreen", "PATH": os.environ.get("PATH", ""), **env})


def _pyside2_stand_in(root: Path) -> Path:
    """A ``PySide2`` package re-exporting PySide6 (PySide2 has no Python 3.11 wheel) and ``shiboken2``."""
    pkg = root / "PySide2"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for mod in ("QtCore", "QtGui", "QtWidgets"):
        (pkg / f"{mod}.py").write_text(f"from PySide6 import {mod} as _m\n\n\n"
                                       "def __getattr__(name):  # PySide6 loads its classes lazily\n"
                                       "    return getattr(_m, name)\n")
    (root / "shiboken2.py").write_text("from shiboken6 import *  # noqa\n")
    return root


def test_panel_under_the_pyside2_code_path(tmp_path):
    stand_in = _pyside2_stand_in(tmp_path / "qt5")
    proc = _run("""
        import nuke
        nuke.GUI = True
        from gvfx.ui import qt
        assert qt.BINDING == "PySide2" and qt.QtWidgets.__name__ == "PySide2.QtWidgets"
        from PySide2 import QtWidgets
        app = QtWidgets.QApplication([])
        import gvfx_nuke.panel as PN
        class S:
            listeners = []
        PN.NukeBackend.__init__ = lambda self: setattr(self, "session", S())
        PN.register()
        p = PN.show()
        assert type(p.widget).__mro__[1].__name__ == "GvfxPanel"
        assert S.listeners == [p.widget.handle_event]
        p.close()  # shiboken2.delete through gvfx.ui.qt
        assert S.listeners == [] and PN._widgets == []
        print("ok")
    """, [str(stand_in)], GVFX_QT="PySide2")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_startup_never_raises_and_names_the_missing_qt(tmp_path):
    """menu.py with no usable Qt binding: menus are built, the panel is reported in one line, no exception;
    the error says Qt is missing, not that gvfx is."""
    proc = _run(f"""
        import nuke
        nuke.GUI = True
        exec(open({str(HOSTS_NUKE / "menu.py")!r}).read(), {{"__name__": "__main__"}})
        assert list(nuke.menu("Nuke").items["GVFX"].items)[:3] == ["GVFX Element", "GVFX Insert", "GVFX Match"]
        from gvfx_nuke.connect import import_gvfx, FIX
        try:
            import_gvfx("gvfx.ui.panel")
        except ImportError as exc:
            assert str(exc) != FIX and "PySide6 or PySide2" in str(exc), exc
        nuke.menu("Nuke").items["GVFX"].items["gvfx panel"]()  # the menu entry: a message, no traceback
        assert nuke.MESSAGES and "PySide6 or PySide2" in nuke.MESSAGES[-1], nuke.MESSAGES
        print("ok")
    """, GVFX_QT="PySide2")  # forced to a binding that is not installed
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
    assert "GVFX: the gvfx panel not available: QtBindingError: GVFX_QT=PySide2" in proc.stdout
