"""The viewer: plate / element / comp with an A/B wipe, channel, exposure and a frame slider with
playback. Pixels come from the worker's ``preview`` request (display-ready PNGs), so the viewer needs
only Qt (gvfx.ui.qt: PySide6 or PySide2) and works inside Nuke's Python too."""

from __future__ import annotations

from typing import Any, Callable

from gvfx.ui.qt import QtCore, QtGui, QtWidgets

from gvfx.ui.model import CHANNELS

NONE = "(none)"
WIPE_LINE = QtGui.QColor(255, 210, 0)


def wipe_images(a: QtGui.QImage, b: QtGui.QImage | None, wipe: float, *, line: bool = True) -> QtGui.QImage:
    """A on the left of ``wipe`` (0..1 of the width), B on the right (B scaled to A's size); a one-pixel
    yellow line marks the boundary column. Without B, A alone."""
    out = a.convertToFormat(QtGui.QImage.Format.Format_RGB32)
    if b is None or b.isNull():
        return out
    if b.size() != a.size():
        b = b.scaled(a.size(), QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
                     QtCore.Qt.TransformationMode.FastTransformation)
    x = wipe_column(a.width(), wipe)
    p = QtGui.QPainter(out)
    try:
        p.drawImage(QtCore.QRect(x, 0, a.width() - x, a.height()), b, QtCore.QRect(x, 0, a.width() - x, a.height()))
        if line and 0 < x < a.width():
            p.setPen(WIPE_LINE)
            p.drawLine(x, 0, x, a.height() - 1)
    finally:
        p.end()
    return out


def wipe_column(width: int, wipe: float) -> int:
    """The first column showing B."""
    return max(0, min(width, int(round(width * max(0.0, min(1.0, wipe))))))


class Viewer(QtWidgets.QWidget):
    """Sources by name (``plate``, ``element``, ``comp`` -> frame pattern); ``fetch(pattern, frame,
    channel, exposure)`` returns a PNG path (the worker's preview) or raises with a one-line message."""

    frameChanged = QtCore.Signal(int)

    def __init__(self, fetch: Callable[..., str] | None = None, parent: QtWidgets.QWidget | None = None,
                 max_size: int = 512) -> None:
        super().__init__(parent)
        self.fetch = fetch
        self.max_size = max_size
        self.sources: dict[str, str] = {}
        self.image = QtGui.QImage()
        self._cache: dict[tuple, QtGui.QImage] = {}
        self.error = ""

        self.a_box = QtWidgets.QComboBox()
        self.b_box = QtWidgets.QComboBox()
        self.channel = QtWidgets.QComboBox()
        self.channel.setEditable(True)  # any layer of the file
        self.channel.addItems(list(CHANNELS))
        self.exposure = QtWidgets.QDoubleSpinBox()
        self.exposure.setRange(-16.0, 16.0)
        self.exposure.setSingleStep(0.5)
        self.exposure.setSuffix(" stops")
        self.wipe = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.wipe.setRange(0, 1000)
        self.wipe.setValue(500)
        self.frame = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.frame_label = QtWidgets.QLabel("")
        self.play = QtWidgets.QPushButton("Play")
        self.play.setCheckable(True)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(1000 // 24)
        self.view = QtWidgets.QLabel()
        self.view.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.view.setMinimumSize(160, 90)
        self.view.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)
        self.status = QtWidgets.QLabel("")

        top = QtWidgets.QHBoxLayout()
        for label, w in (("A", self.a_box), ("B", self.b_box), ("channel", self.channel),
                         ("exposure", self.exposure)):
            top.addWidget(QtWidgets.QLabel(label))
            top.addWidget(w)
        wipe_row = QtWidgets.QHBoxLayout()
        wipe_row.addWidget(QtWidgets.QLabel("wipe"))
        wipe_row.addWidget(self.wipe)
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.play)
        bottom.addWidget(self.frame)
        bottom.addWidget(self.frame_label)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(wipe_row)
        lay.addWidget(self.view, 1)
        lay.addLayout(bottom)
        lay.addWidget(self.status)

        for sig in (self.a_box.currentTextChanged, self.b_box.currentTextChanged, self.channel.currentTextChanged):
            sig.connect(lambda *_: self.refresh())
        self.exposure.valueChanged.connect(lambda *_: self.refresh())
        self.wipe.valueChanged.connect(lambda *_: self.refresh())
        self.frame.valueChanged.connect(self._frame_moved)
        self.play.toggled.connect(self._toggle_play)
        self.timer.timeout.connect(self._step)

    # ------------------------------------------------------------------ state
    def set_sources(self, sources: dict[str, str], frames: tuple[int, int] | None = None) -> None:
        """Replace the sources; keeps the A/B choice when the names still exist."""
        self.sources = dict(sources)
        a, b = self.a_box.currentText(), self.b_box.currentText()
        names = list(self.sources)
        for box, keep, extra in ((self.a_box, a, []), (self.b_box, b, [NONE])):
            box.blockSignals(True)
            box.clear()
            box.addItems(extra + names)
            if keep in extra + names:
                box.setCurrentText(keep)
            box.blockSignals(False)
        if not a and names:
            self.a_box.setCurrentText("plate" if "plate" in names else names[0])
        if frames is not None:
            self.frame.blockSignals(True)
            self.frame.setRange(int(frames[0]), int(frames[1]))
            self.frame.blockSignals(False)
        self.refresh()

    def set_source(self, name: str, pattern: str) -> None:
        self.set_sources({**self.sources, name: pattern})

    def set_ab(self, a: str, b: str | None = None, wipe: float | None = None) -> None:
        self.a_box.setCurrentText(a)
        self.b_box.setCurrentText(b or NONE)
        if wipe is not None:
            self.wipe.setValue(int(round(wipe * 1000)))
        self.refresh()

    def set_channel(self, channel: str) -> None:
        self.channel.setCurrentText(channel)
        self.refresh()

    def current_frame(self) -> int:
        return int(self.frame.value())

    # ------------------------------------------------------------------ pixels
    def _load(self, name: str) -> QtGui.QImage | None:
        pattern = self.sources.get(name)
        if not pattern or self.fetch is None:
            return None
        key = (pattern, self.current_frame(), self.channel.currentText(), float(self.exposure.value()))
        if key not in self._cache:
            path = self.fetch(pattern, key[1], key[2], key[3], self.max_size)
            img = QtGui.QImage(path)
            if img.isNull():
                raise RuntimeError(f"cannot read preview {path}")
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = img
        return self._cache[key]

    def refresh(self) -> None:
        self.frame_label.setText(str(self.current_frame()))
        try:
            a = self._load(self.a_box.currentText())
            b_name = self.b_box.currentText()
            b = self._load(b_name) if b_name and b_name != NONE else None
            self.error = ""
        except Exception as exc:  # a missing layer, a missing frame: say so, keep the panel alive
            a, b = None, None
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if a is None:
            self.image = QtGui.QImage()
            self.view.clear()
            self.status.setText(self.error or "no source")
            return
        self.image = wipe_images(a, b, self.wipe.value() / 1000.0)
        self._show()
        self.status.setText(f"{self.a_box.currentText()}" + (f" | {b_name}" if b is not None else "")
                            + f"  {self.channel.currentText()}  frame {self.current_frame()}")

    def _show(self) -> None:
        """The image fitted to the view (pixels of ``self.image`` stay at preview size)."""
        if self.image.isNull():
            return
        pix = QtGui.QPixmap.fromImage(self.image)
        size = self.view.size()
        if size.width() > 8 and size.height() > 8:
            pix = pix.scaled(size, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                             QtCore.Qt.TransformationMode.FastTransformation)
        self.view.setPixmap(pix)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self._show()

    def _frame_moved(self, value: int) -> None:
        self.refresh()
        self.frameChanged.emit(value)

    def _toggle_play(self, on: bool) -> None:
        self.play.setText("Stop" if on else "Play")
        (self.timer.start if on else self.timer.stop)()

    def _step(self) -> None:
        f = self.frame.value() + 1
        self.frame.setValue(self.frame.minimum() if f > self.frame.maximum() else f)


def worker_fetch(request: Callable[..., Any]) -> Callable[..., str]:
    """A viewer ``fetch`` from a backend's ``request(type, **fields)`` (the worker's ``preview``)."""
    def fetch(pattern: str, frame: int, channel: str, exposure: float, max_size: int) -> str:
        ev = request("preview", path=pattern, frame=int(frame), channel=channel, exposure=float(exposure),
                     max_size=int(max_size))
        if ev.get("type") != "result":
            raise RuntimeError(ev.get("message") or "preview failed")
        return ev["data"]["path"]
    return fetch
