"""The gvfx panel: job queue, version browser and viewer in one widget, over a *backend*.

A backend has ``request(type, **fields) -> event`` (the worker's final event), ``cancel(id)`` and
``submit(**kwargs) -> id``, and delivers every worker event to :meth:`GvfxPanel.handle_event`.
:class:`ClientBackend` is the standalone one (a ``WorkerClient`` polled by a Qt timer); in Nuke the
adapter's session is the backend, so jobs started from nodes show in the queue.
"""

from __future__ import annotations

import os
from typing import Any

from gvfx.ui.qt import QtCore, QtWidgets

from gvfx.ui import model
from gvfx.ui.viewer import Viewer, worker_fetch
from gvfx.ui.widgets import JobQueue, VersionBrowser


class ClientBackend(QtCore.QObject):
    """A ``gvfx.client.WorkerClient`` for the standalone panel: its events are polled every 50 ms on the
    GUI thread and passed to ``listeners``."""

    def __init__(self, client: Any, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.listeners: list = []
        self.error = ""
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(50)
        self.timer.timeout.connect(self.pump)
        self.timer.start()

    def pump(self) -> None:
        try:
            events = self.client.poll()
        except Exception as exc:  # the worker died: stop polling, say why once
            self.timer.stop()
            self.error = str(exc)
            for fn in self.listeners:
                fn({"type": "worker_error", "message": self.error})
            return
        for ev in events:
            for fn in self.listeners:
                fn(ev)

    def request(self, type: str, **fields: Any) -> dict:
        return self.client.request(type, **fields)

    def cancel(self, job_id: str) -> None:
        self.client.cancel(job_id)

    def submit(self, **kwargs: Any) -> str:
        return self.client.submit(**kwargs)


class GvfxPanel(QtWidgets.QWidget):
    """Job queue + version browser + viewer. :meth:`load_timeline` shows a shot."""

    def __init__(self, backend: Any, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gvfxPanel")
        self.backend = backend
        self.timeline: str | None = None
        self.data: dict = {}
        self.element: str | None = None
        self.queue = JobQueue()
        self.browser = VersionBrowser()
        self.viewer = Viewer(worker_fetch(backend.request))
        self.message = QtWidgets.QLabel("")
        self.reload_button = QtWidgets.QPushButton("Reload")
        self.submit_button = QtWidgets.QPushButton("Submit job file...")

        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.reload_button)
        buttons.addWidget(self.submit_button)
        ll.addLayout(buttons)
        ll.addWidget(QtWidgets.QLabel("versions"))
        ll.addWidget(self.browser, 2)
        ll.addWidget(QtWidgets.QLabel("jobs"))
        ll.addWidget(self.queue, 1)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.viewer)
        split.setStretchFactor(1, 3)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.message)

        self.queue.cancelRequested.connect(self.backend.cancel)
        self.queue.jobFinished.connect(self._job_finished)
        self.browser.versionSelected.connect(self._version_selected)
        self.reload_button.clicked.connect(lambda *_: self.reload())
        self.submit_button.clicked.connect(lambda *_: self._ask_submit())

    # ------------------------------------------------------------------ shot
    def load_timeline(self, path: str, element: str | None = None) -> bool:
        """Show the shot of an ``.otio`` file (via the worker's ``versions`` request)."""
        self.timeline = os.fspath(path)
        if element:
            self.element = element
        return self.reload()

    def reload(self) -> bool:
        if not self.timeline:
            return False
        if not os.path.isfile(self.timeline):
            self.message.setText(f"no timeline yet: {self.timeline}")
            return False
        try:
            ev = self.backend.request("versions", timeline=self.timeline)
        except Exception as exc:
            self.message.setText(f"worker: {exc}".splitlines()[0])
            return False
        if ev.get("type") != "result":
            self.message.setText(ev.get("message", "versions request failed"))
            return False
        self.data = ev.get("data") or {}
        names = model.element_names(self.data)
        if self.element not in names:
            self.element = names[0] if names else None
        self.browser.set_data(self.data)
        self.viewer.set_sources(model.sources(self.data, self.element), model.frame_range(self.data, self.element))
        self.message.setText(f"{self.data.get('name', '')}: {len(names)} element(s) from {self.timeline}")
        return True

    def select_version(self, name: str, version: str) -> bool:
        return self.browser.select(name, version)

    def _version_selected(self, name: str, version: str, pattern: str) -> None:
        if not pattern:
            return
        if name == "comp":
            self.viewer.set_source("comp", pattern)
        else:
            self.element = name
            self.viewer.set_source("element", pattern)
        self.message.setText(f"{name} {version}: {pattern}")

    # ------------------------------------------------------------------ jobs
    def handle_event(self, ev: dict) -> None:
        if ev.get("type") == "worker_error":
            self.message.setText(f"worker stopped: {ev.get('message', '')}".splitlines()[0])
            return
        self.queue.handle_event(ev)

    def submit_job(self, job_file: str, **kwargs: Any) -> str:
        job_id = self.backend.submit(job_file=job_file, **kwargs)
        self.queue.add_job(job_id, os.path.basename(job_file))
        return job_id

    def _ask_submit(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "gvfx job file", "", "jobs (*.yaml *.yml *.json)")
        if path:
            self.submit_job(path)

    def _job_finished(self, ev: dict) -> None:
        timeline = ((ev.get("outputs") or {}).get("timeline")) if ev.get("type") == "result" else None
        if timeline and (self.timeline is None or os.path.abspath(timeline) == os.path.abspath(self.timeline)):
            self.load_timeline(timeline)


def find_timelines(root: str) -> list[str]:
    """``.otio`` files of a shot folder (the folder itself, then one level down), or the file itself."""
    if os.path.isfile(root):
        return [root]
    found = []
    for base, dirs, files in os.walk(root):
        depth = os.path.relpath(base, root).count(os.sep) + (0 if base == root else 1)
        if depth > 2:
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if d not in ("elements", "comp", "cache", "inputs", "plate")]
        found += [os.path.join(base, f) for f in files if f.endswith(".otio")]
    return sorted(found)
