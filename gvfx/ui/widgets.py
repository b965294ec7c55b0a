"""The job queue (per-job progress and cancel) and the version browser (versions of a shot's elements
from the worker's ``versions`` answer). Qt (gvfx.ui.qt) and the standard library only."""

from __future__ import annotations

from gvfx.ui.qt import QtCore, QtWidgets

from gvfx.ui import model

FINAL = ("result", "error", "cancelled")


class JobQueue(QtWidgets.QTreeWidget):
    """One row per job: name, stage, a progress bar, status and a Cancel button; fed by worker events
    (:meth:`handle_event`). Jobs submitted elsewhere (a Nuke node) appear on their ``accepted`` event."""

    cancelRequested = QtCore.Signal(str)
    jobFinished = QtCore.Signal(dict)

    COLUMNS = ("job", "stage", "progress", "status", "")

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(self.COLUMNS))
        self.setHeaderLabels(list(self.COLUMNS))
        self.setRootIsDecorated(False)
        self.rows: dict[str, QtWidgets.QTreeWidgetItem] = {}
        self.bars: dict[str, QtWidgets.QProgressBar] = {}
        self.buttons: dict[str, QtWidgets.QPushButton] = {}
        self.status: dict[str, str] = {}

    def add_job(self, job_id: str, label: str = "") -> None:
        if job_id in self.rows:
            return
        item = QtWidgets.QTreeWidgetItem([label or job_id, "", "", "queued", ""])
        self.addTopLevelItem(item)
        bar = QtWidgets.QProgressBar()
        bar.setRange(0, 100)
        bar.setValue(0)
        button = QtWidgets.QPushButton("Cancel")
        button.clicked.connect(lambda *_: self.cancelRequested.emit(job_id))
        self.setItemWidget(item, 2, bar)
        self.setItemWidget(item, 4, button)
        self.rows[job_id], self.bars[job_id], self.buttons[job_id] = item, bar, button
        self.status[job_id] = "queued"

    def handle_event(self, ev: dict) -> None:
        job_id, kind = ev.get("id"), ev.get("type")
        if job_id is None:
            return
        if kind == "accepted":
            self.add_job(job_id, ev.get("name") or job_id)
        if job_id not in self.rows:
            return
        item = self.rows[job_id]
        if kind == "accepted":
            self._set_status(job_id, "running" if ev.get("position", 0) == 0 else "queued")
        elif kind == "progress":
            total = max(1, int(ev.get("total") or 1))
            done = int(ev.get("done") or 0)
            item.setText(1, str(ev.get("stage", "")))
            self.bars[job_id].setValue(int(100 * done / total))
            self._set_status(job_id, "running")
        elif kind in FINAL:
            status = {"result": "done", "error": "failed", "cancelled": "cancelled"}[kind]
            if kind == "result":
                self.bars[job_id].setValue(100)
            if kind == "error":
                item.setToolTip(3, ev.get("message", ""))
                item.setText(1, ev.get("message", "")[:60])
            self._set_status(job_id, status)
            self.buttons[job_id].setEnabled(False)
            self.jobFinished.emit(ev)

    def _set_status(self, job_id: str, status: str) -> None:
        self.status[job_id] = status
        self.rows[job_id].setText(3, status)


class VersionBrowser(QtWidgets.QTreeWidget):
    """Elements (and the comp) of a shot, each with its versions; picking one emits
    ``versionSelected(name, version, pattern)``."""

    versionSelected = QtCore.Signal(str, str, str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(3)
        self.setHeaderLabels(["element / version", "status", "frames"])
        self.data: dict = {}
        self.itemSelectionChanged.connect(self._selected)

    def set_data(self, data: dict) -> None:
        self.data = data or {}
        self.blockSignals(True)
        self.clear()
        for name in [*model.element_names(self.data), "comp"]:
            versions = model.versions_of(self.data, name)
            if not versions:
                continue
            top = QtWidgets.QTreeWidgetItem([name, "", ""])
            self.addTopLevelItem(top)
            current = model.current_version(self.data, name)
            for v in versions:
                frames = v.get("frames") or []
                child = QtWidgets.QTreeWidgetItem([str(v.get("version")), str(v.get("status") or ""),
                                                   "-".join(map(str, frames))])
                child.setData(0, QtCore.Qt.ItemDataRole.UserRole, (name, v.get("version"), v.get("pattern") or ""))
                if v.get("version") == current:
                    f = child.font(0)
                    f.setBold(True)
                    child.setFont(0, f)
                top.addChild(child)
            top.setExpanded(True)
        self.blockSignals(False)

    def select(self, name: str, version: str) -> bool:
        """Select ``version`` of ``name`` (emits versionSelected); False when it is not listed."""
        for i in range(self.topLevelItemCount()):
            top = self.topLevelItem(i)
            if top.text(0) != name:
                continue
            for j in range(top.childCount()):
                child = top.child(j)
                if child.text(0) == version:
                    self.setCurrentItem(child)
                    child.setSelected(True)
                    return True
        return False

    def _selected(self) -> None:
        items = self.selectedItems()
        if not items:
            return
        payload = items[0].data(0, QtCore.Qt.ItemDataRole.UserRole)
        if payload:
            self.versionSelected.emit(*payload)
