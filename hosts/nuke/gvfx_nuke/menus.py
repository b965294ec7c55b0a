"""The GVFX menu, toolbar and callbacks, installed once from ``menu.py``."""

from __future__ import annotations

import nuke

_installed = False


def _call(module: str, func: str):
    """A menu command that imports lazily; a failure (an import, a missing Qt binding) is a message."""
    def run():
        import importlib

        try:
            mod = importlib.import_module(f"gvfx_nuke.{module}")
            return getattr(mod, func)()
        except ImportError as exc:
            nuke.message(f"GVFX could not load: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - a menu entry shows one line, never a traceback
            nuke.message(f"GVFX: {exc}")
            return None

    run.__name__ = f"gvfx_{func}"
    return run


def _optional(what: str, fn) -> None:
    """Run one optional part of start-up; a failure is one line in the terminal, never an exception."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - Nuke's start-up must go on whatever this part does
        print(f"GVFX: {what} not available: {type(exc).__name__}: {exc}")


ENTRIES = (("GVFX Element", "nodes", "create_element"), ("GVFX Insert", "nodes", "create_insert"),
           ("GVFX Match", "nodes", "create_match"))


def build() -> None:
    """GVFX menu (Nuke menu bar) and toolbar, the knobChanged callback and the panel (GUI only)."""
    global _installed
    if _installed:
        return
    _installed = True
    from gvfx_nuke import nodes

    nuke.addKnobChanged(nodes.knob_changed, nodeClass="Group")
    if not nuke.GUI:
        return
    menu = nuke.menu("Nuke").addMenu("GVFX")
    toolbar = nuke.toolbar("Nodes").addMenu("GVFX")
    for label, module, func in ENTRIES:
        menu.addCommand(label, _call(module, func))
        toolbar.addCommand(label, _call(module, func))
    menu.addSeparator()
    menu.addCommand("gvfx panel", _call("panel", "show"))

    def register_panel():
        from gvfx_nuke import panel

        panel.register()

    _optional("the gvfx panel", register_panel)
