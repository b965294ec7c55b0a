"""``gvfx studio [SHOT_ROOT]``: the gvfx panel in its own window, talking to a ``gvfx worker``."""

from __future__ import annotations

import sys
from typing import Sequence


def worker_argv() -> list[str]:
    """This Python's gvfx as the worker (the same installation as the ``gvfx`` command)."""
    return [sys.executable, "-m", "gvfx", "worker"]


def make_window(shot_root: str | None = None, *, client=None):
    """The studio window (a QMainWindow holding a GvfxPanel); starts a worker unless ``client`` is given."""
    from gvfx.ui.qt import QtWidgets

    from gvfx.client import WorkerClient
    from gvfx.ui.panel import ClientBackend, GvfxPanel, find_timelines

    if client is None:
        client = WorkerClient(worker_argv())
        client.start()
    backend = ClientBackend(client)
    win = QtWidgets.QMainWindow()
    win.setWindowTitle("gvfx studio")
    panel = GvfxPanel(backend)
    backend.listeners.append(panel.handle_event)
    win.setCentralWidget(panel)
    win.panel = panel
    win.backend = backend
    if shot_root:
        timelines = find_timelines(shot_root)
        if timelines:
            panel.load_timeline(timelines[0])
        else:
            panel.message.setText(f"no .otio timeline under {shot_root}")
    win.resize(1200, 700)
    return win


def run(shot_root: str | None = None, argv: Sequence[str] | None = None) -> int:
    from gvfx.ui.qt import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(list(argv or sys.argv[:1]))
    win = make_window(shot_root)
    win.show()
    try:
        return int(app.exec())
    finally:
        win.backend.client.shutdown()
