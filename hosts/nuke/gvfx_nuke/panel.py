"""The gvfx panel (gvfx.ui, PySide6) as a dockable Nuke panel that follows the selected GVFX node."""

from __future__ import annotations

import nuke

from gvfx_nuke import jobs as J
from gvfx_nuke import nodes as N
from gvfx_nuke.connect import import_gvfx

PANEL_ID = "uk.co.gvfx.panel"
_widgets: list = []


class NukeBackend:
    """The panel's backend in Nuke: the session the nodes use, so their jobs appear in the queue."""

    def __init__(self) -> None:
        from gvfx_nuke.generate import session

        self.session = session()

    def request(self, type: str, **fields):
        return self.session.request(type, **fields)

    def cancel(self, job_id: str) -> None:
        self.session.cancel(job_id)

    def submit(self, **kwargs) -> str:
        return self.session.submit(lambda ev: None, **kwargs)


def make_panel():
    """The widget Nuke instantiates for the pane (registered by class path)."""
    ui = import_gvfx("gvfx.ui.panel")
    backend = NukeBackend()
    widget = ui.GvfxPanel(backend)
    backend.session.listeners.append(widget.handle_event)
    _widgets.append(widget)
    return widget


def follow_selection() -> None:
    """knobChanged on 'selected': point the panel at the selected GVFX node's shot and element."""
    node, knob = nuke.thisNode(), nuke.thisKnob()
    if knob is None or knob.name() != "selected" or not knob.value() or N.kind_of(node) is None or not _widgets:
        return
    try:
        paths = J.shot_paths(nuke.root().name(), node.name(), node["output_dir"].value())
    except Exception:
        return
    for w in _widgets:
        w.load_timeline(str(paths.timeline), element=paths.name)


def register() -> None:
    if not nuke.GUI:
        return
    from nukescripts import panels

    import_gvfx("gvfx.ui.panel")
    panels.registerWidgetAsPanel("gvfx_nuke.panel.PanelWidget", "gvfx", PANEL_ID)
    nuke.addKnobChanged(follow_selection, nodeClass="Group")


def show() -> None:
    from nukescripts import panels

    pane = nuke.getPaneFor("Properties.1")
    panels.restorePanel(PANEL_ID).addToPane(pane)


def __getattr__(name: str):
    if name == "PanelWidget":  # registerWidgetAsPanel instantiates "gvfx_nuke.panel.PanelWidget"
        ui = import_gvfx("gvfx.ui.panel")

        class PanelWidget(ui.GvfxPanel):
            def __init__(self, parent=None):
                backend = NukeBackend()
                super().__init__(backend, parent=parent)
                backend.session.listeners.append(self.handle_event)
                _widgets.append(self)

        globals()["PanelWidget"] = PanelWidget
        return PanelWidget
    raise AttributeError(name)
