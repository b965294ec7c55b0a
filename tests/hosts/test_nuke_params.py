"""The knob snapshot (hosts/nuke/gvfx_nuke/params.json) matches gvfx's engines and match stage, and
neither the Nuke adapter nor the gvfx panel imports torch, diffusers, numpy or OpenImageIO."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from fake_nuke.paths import FAKE, HOSTS_NUKE, REPO, add_adapter

add_adapter()

SNAPSHOT = HOSTS_NUKE / "gvfx_nuke" / "params.json"


def _export():
    sys.path.insert(0, str(HOSTS_NUKE / "tools"))
    try:
        import export_params
    finally:
        sys.path.remove(str(HOSTS_NUKE / "tools"))
    return export_params


def test_snapshot_is_up_to_date():
    from gvfx.engines import get_engine
    from gvfx.match.stage import MATCH_PARAMS

    export = _export()
    data = json.loads(SNAPSHOT.read_text())
    live = get_engine("sim").effects()
    assert sorted(data["engines"]["sim"]) == sorted(live)
    for name, info in live.items():
        assert data["engines"]["sim"][name]["params"] == [export.param_dict(p) for p in info.params], name
    assert data["match"] == [export.param_dict(p) for p in MATCH_PARAMS]
    assert SNAPSHOT.read_text() == export.render(export.snapshot()), \
        "params.json is stale: run python hosts/nuke/tools/export_params.py"


BLOCK = textwrap.dedent("""
    import sys, importlib.abc
    BLOCKED = ("torch", "diffusers", "numpy", "OpenImageIO", "scipy", "transformers", "PIL", "pxr")
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked heavy import: {name}")
    sys.meta_path.insert(0, Block())
""")


def test_adapter_and_panel_import_without_heavy_modules():
    code = BLOCK + textwrap.dedent(f"""
        sys.path[:0] = [{str(HOSTS_NUKE)!r}, {str(FAKE)!r}, {str(REPO)!r}]
        import gvfx_nuke.params, gvfx_nuke.jobs, gvfx_nuke.connect, gvfx_nuke.session
        import gvfx_nuke.nodes, gvfx_nuke.generate, gvfx_nuke.menus, gvfx_nuke.panel
        import gvfx.client, gvfx.ui.model, gvfx.ui.viewer, gvfx.ui.widgets, gvfx.ui.panel, gvfx.ui.studio
        from gvfx_nuke.connect import import_gvfx
        assert import_gvfx("gvfx.client").WorkerClient
        import nuke
        nuke.GUI = True
        import gvfx_nuke.menus as m
        m.build()
        assert list(nuke.menu("Nuke").items["GVFX"].items)[:3] == ["GVFX Element", "GVFX Insert", "GVFX Match"]
        from nukescripts import panels
        assert panels.REGISTERED["uk.co.gvfx.panel"] == ("gvfx_nuke.panel.PanelWidget", "gvfx")
        n = gvfx_nuke.nodes.create_element()
        assert n["effect"].value() == "debris" and n.knob("fx__sim__fire__buoyancy").visible is False
        heavy = sorted(k for k in sys.modules if k.split(".")[0] in ("torch", "numpy", "OpenImageIO", "diffusers"))
        assert not heavy, heavy
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_init_and_menu_only_extend_the_path_and_build_menus():
    init = (HOSTS_NUKE / "init.py").read_text()
    menu = (HOSTS_NUKE / "menu.py").read_text()
    code_lines = [ln for ln in init.splitlines() if ln.strip() and not ln.startswith("#")]
    assert code_lines == ["import nuke", 'nuke.pluginAddPath("icons")']
    assert [ln.strip() for ln in menu.splitlines() if ln.strip() and not ln.startswith("#")][:3] == \
        ["try:", "import gvfx_nuke.menus", "gvfx_nuke.menus.build()"]
