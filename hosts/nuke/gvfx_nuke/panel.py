"""The gvfx panel (gvfx.ui, PySide6 in Nuke 16, PySide2 in Nuke 15) as a dockable Nuke panel that follows
the selected GVFX node.

Foundry's ``nukescripts.panels.restorePanel(id)`` builds a **new** panel on every call (and returns what
``addToPane()`` returns: the panel), so :func:`show` keeps the one it made while it is valid. Each widget
adds one listener to the worker session and removes it when Qt destroys the widget. ``knobChanged`` fires
only for changes the artist makes, so the widget follows the selection with a timer that polls
``nuke.selectedNodes()`` (:func:`follow_selection`), not with a callback.
"""

from __future__ import annotations

import nuke

from gvfx_nuke import jobs as J
from gvfx_nuke import nodes as N
from gvfx_nuke.connect import import_gvfx

PANEL_ID = "uk.co.gvfx.panel"
#: how often the panel looks at the selection (ms)
SELECTION_POLL_MS = 400
_widgets: list = []
_panel = None


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


def selected_gvfx_node():
    """The selected GVFX node (the last one selected), or None."""
    for node in reversed(nuke.selectedNodes()):
        if N.kind_of(node) is not None:
            return node
    return None


def follow_selection(widget) -> bool:
    """Point ``widget`` at the selected GVFX node's shot and element when the selection changed; True then."""
    node = selected_gvfx_node()
    key = node.name() if node is not None else None
    if key is None or key == getattr(widget, "_gvfx_following", None):
        return False
    try:
        paths = J.shot_paths(nuke.root().name(), node.name(), node["output_dir"].value())
    except Exception:  # an unsaved script: nothing to show yet
        return False
    widget._gvfx_following = key
    widget.load_timeline(str(paths.timeline), element=paths.name)
    return True


def _attach(widget, backend: NukeBackend) -> None:
    """One listener and one selection timer per widget, both gone with the widget."""
    qt = import_gvfx("gvfx.ui.qt")
    session, handler = backend.session, widget.handle_event
    session.listeners.append(handler)
    _widgets.append(widget)
    timer = qt.QtCore.QTimer(widget)
    timer.setInterval(SELECTION_POLL_MS)
    timer.timeout.connect(lambda: follow_selection(widget))
    timer.start()
    widget._gvfx_timer = timer

    def gone(*_args) -> None:
        if handler in session.listeners:
            session.listeners.remove(handler)
        if widget in _widgets:
            _widgets.remove(widget)

    widget.destroyed.connect(gone)


def make_panel():
    """A widget with the worker session and the selection follower attached (outside a Nuke pane)."""
    ui = import_gvfx("gvfx.ui.panel")
    backend = NukeBackend()
    widget = ui.GvfxPanel(backend)
    _attach(widget, backend)
    return widget


def register() -> None:
    if not nuke.GUI:
        return
    from nukescripts import panels

    import_gvfx("gvfx.ui.panel")  # fails here (with the reason) rather than when the pane opens
    panels.registerWidgetAsPanel("gvfx_nuke.panel.PanelWidget", "gvfx", PANEL_ID)


def show():
    """Dock the gvfx panel in the Properties pane: the same panel while it is open, a new one otherwise."""
    global _panel
    from nukescripts import panels

    pane = nuke.getPaneFor("Properties.1")
    if _panel is not None and _panel.isValid():
        if pane is not None:
            pane.add(_panel)
        return _panel
    panel = panels.restorePanel(PANEL_ID)  # a new panel, already added to the current pane
    if panel is None:  # registration failed at start-up: try again, raising its reason (e.g. no Qt binding)
        register()
        panel = panels.restorePanel(PANEL_ID)
    if panel is None:
        raise RuntimeError("the gvfx panel is not registered (GVFX menu set-up failed: see the terminal)")
    _panel = panel.addToPane(pane) if pane is not None else panel
    return _panel


def __getattr__(name: str):
    if name == "PanelWidget":  # registerWidgetAsPanel instantiates "gvfx_nuke.panel.PanelWidget"
        ui = import_gvfx("gvfx.ui.panel")

        class PanelWidget(ui.GvfxPanel):
            def __init__(self, parent=None):
                backend = NukeBackend()
                super().__init__(backend, parent=parent)
                _attach(self, backend)

        globals()["PanelWidget"] = PanelWidget
        return PanelWidget
    raise AttributeError(name)
