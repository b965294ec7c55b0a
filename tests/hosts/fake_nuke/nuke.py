"""A small fake of ONLY the ``nuke`` calls gvfx_nuke makes, for tests (Nuke cannot be installed here).

Nodes hold knobs; Groups are contexts (``begin``/``end``/``with``); ``Read`` nodes read EXRs and a
``Write`` executed with :func:`execute` writes real EXRs through gvfx's writer (this fake may use
gvfx and numpy; the adapter may not). ``executeInMainThread`` queues calls that the test runs with
:func:`process_events` (the "main thread").

Where real Nuke surprises, the fake does the same (each with Foundry's page cited at the code):
array knobs return one float when all components are equal; ``File_Knob.value()`` returns the ``%04d``
form; ``setValue`` on a Read's file sets neither range nor format (``fromUserText`` does);
``nuke.nodes.X()`` neither connects nor selects (``createNode`` does); ``knobChanged`` callbacks fire
only for changes the artist makes (:func:`user_set`, :func:`user_select`), never for ``setValue`` from
code.
"""

from __future__ import annotations

import math
import queue
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

GUI = False
CALLS: list[tuple] = []          # (function name, args) of interesting calls, for assertions
MESSAGES: list[str] = []
TASKS: list["ProgressTask"] = []
_main_queue: "queue.Queue[tuple]" = queue.Queue()
_knob_changed: list[tuple[Callable, str]] = []
_this: dict[str, Any] = {"node": None, "knob": None}
_root: "Node | None" = None
_stack: list["Node"] = []


def reset() -> None:
    global _root
    CALLS.clear()
    MESSAGES.clear()
    TASKS.clear()
    _knob_changed.clear()
    _stack.clear()
    while not _main_queue.empty():
        _main_queue.get_nowait()
    _root = Node("Root", name="Root")
    _root._children = []


# ------------------------------------------------------------------------------------- knobs

class Knob:
    _default: Any = ""

    def __init__(self, name: str, label: str | None = None, *args: Any) -> None:
        self._name = name
        self.label = label or name
        self._value = self._default() if callable(self._default) else self._default
        self.node: Node | None = None
        self.visible = True
        self.enabled = True
        self.tooltip = ""
        self.range: tuple | None = None
        self.curve: Callable[[int], Any] | None = None  # animation: frame -> value

    def name(self) -> str:
        return self._name

    def value(self) -> Any:
        return self._value

    def setValue(self, value: Any) -> None:
        # knobChanged is for changes the user makes, not for setValue from scripts: Foundry's Python
        # developer guide, "Callbacks" > knobChanged
        # (https://learn.foundry.com/nuke/developers/latest/pythondevguide/callbacks.html). See user_set().
        self._value = self._coerce(value)

    def _coerce(self, value: Any) -> Any:
        return value

    def getValueAt(self, frame: int, index: int | None = None) -> Any:
        v = self.curve(frame) if self.curve is not None else self._value
        if index is not None and isinstance(v, (list, tuple)):
            return v[index]
        return v

    def setVisible(self, visible: bool) -> None:
        self.visible = bool(visible)

    def setEnabled(self, enabled: bool) -> None:
        self.enabled = bool(enabled)

    def setTooltip(self, text: str) -> None:
        self.tooltip = text

    def setRange(self, lo: float, hi: float) -> None:
        self.range = (lo, hi)


class Tab_Knob(Knob):
    pass


class Text_Knob(Knob):
    def __init__(self, name: str, label: str | None = None, text: str = "") -> None:
        super().__init__(name, label)
        self._value = text


class String_Knob(Knob):
    def _coerce(self, value: Any) -> Any:
        return str(value)


class File_Knob(String_Knob):
    """``value()`` gives the printf form of a ``####`` pattern; ``fromUserText`` also sets a Read's range and
    format (Foundry, nuke.File_Knob: "fromUserText: Assign string to knob, parses frame range off the end and
    opens file to get set the format",
    https://learn.foundry.com/nuke/developers/latest/pythondevguide/_autosummary/nuke.File_Knob.html)."""

    def value(self) -> Any:
        return re.sub(r"#+", lambda m: f"%0{len(m.group(0))}d", self._value)

    def fromUserText(self, text: str) -> None:
        m = re.fullmatch(r"(.*\S)\s+(-?\d+)-(-?\d+)", text.strip())
        path, rng = (m.group(1), (int(m.group(2)), int(m.group(3)))) if m else (text.strip(), None)
        self._value = path
        node = self.node
        if node is None or node.Class() != "Read":
            return
        if rng is not None:
            for k in ("first", "origfirst"):
                node[k]._value = rng[0]
            for k in ("last", "origlast"):
                node[k]._value = rng[1]
        img = node._read_file(rng[0] if rng else node.firstFrame())
        node["format"]._value = f"{img.width} {img.height}"


class Multiline_Eval_String_Knob(String_Knob):
    pass


class Int_Knob(Knob):
    _default = 0

    def arraySize(self) -> int:  # an Array_Knob of one value
        return 1

    def _coerce(self, value: Any) -> Any:
        return int(value)


class Double_Knob(Knob):
    _default = 0.0

    def arraySize(self) -> int:  # an Array_Knob of one value
        return 1

    def value(self, index: int = 0) -> Any:
        return self._value

    def _coerce(self, value: Any) -> Any:
        return float(value)


class Boolean_Knob(Knob):
    _default = False

    def _coerce(self, value: Any) -> Any:
        return bool(value)


class _Array(Knob):
    """XY/XYZ/Color knobs. ``value()`` is "Floating point or List of floating point values (in case some are
    different)" -- one float when every component is equal (Foundry, nuke.Array_Knob / IArray_Knob.value,
    https://learn.foundry.com/nuke/developers/120/pythonreference/nuke.Array_Knob-class.html); read
    ``value(i)`` for ``i in range(arraySize())``."""
    size = 2

    def __init__(self, name: str, label: str | None = None) -> None:
        super().__init__(name, label)
        self._value = [0.0] * self.size

    def arraySize(self) -> int:
        return self.size

    def value(self, index: int | None = None) -> Any:
        if index is not None:
            return self._value[index]
        if all(v == self._value[0] for v in self._value):
            return self._value[0]
        return list(self._value)

    def setValue(self, value: Any, index: int | None = None) -> None:
        if index is not None:
            self._value = list(self._value)
            self._value[index] = float(value)
        else:
            super().setValue(value)

    def _coerce(self, value: Any) -> Any:
        if isinstance(value, (int, float)):  # setValue(x) sets every component
            return [float(value)] * self.size
        vals = [float(v) for v in value]
        assert len(vals) == self.size, f"{self._name}: {vals}"
        return vals


class XY_Knob(_Array):
    size = 2


class UV_Knob(_Array):
    size = 2


class XYZ_Knob(_Array):
    size = 3


class Color_Knob(_Array):
    size = 3


class Enumeration_Knob(Knob):
    def __init__(self, name: str, label: str | None = None, values: list | None = None) -> None:
        super().__init__(name, label)
        self.values = [str(v) for v in (values or [])]
        self._value = self.values[0] if self.values else ""

    def setValues(self, values: list) -> None:
        self.values = [str(v) for v in values]
        if self._value not in self.values:
            self._value = self.values[0] if self.values else ""

    def _coerce(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return self.values[value]
        if str(value) not in self.values:
            raise ValueError(f"{self._name}: {value!r} not in {self.values}")
        return str(value)


class PyScript_Knob(Knob):
    def __init__(self, name: str, label: str | None = None, command: str = "") -> None:
        super().__init__(name, label)
        self._value = command

    def execute(self) -> None:
        node = self.node
        _this["node"] = node
        try:
            exec(self._value, {"nuke": _module()})
        finally:
            _this["node"] = None


def _module():
    import sys

    return sys.modules[__name__]


# ------------------------------------------------------------------------------------- nodes

class Node:
    def __init__(self, cls: str, **knobs: Any) -> None:
        self._class = cls
        self._knobs: dict[str, Knob] = {}
        self._inputs: dict[int, Node] = {}
        self._children: list[Node] | None = [] if cls == "Group" else None
        self.parent = _stack[-1] if _stack else _root
        name = knobs.pop("name", None) or cls
        self._add_builtin_knobs()
        self._knobs["name"] = String_Knob("name")
        self._knobs["name"]._value = self._unique(name)
        for k, v in knobs.items():
            if k not in self._knobs:
                self._knobs[k] = Knob(k)
                self._knobs[k].node = self
            self._knobs[k]._value = self._knobs[k]._coerce(v)
        if self.parent is not None and self.parent._children is not None:
            self.parent._children.append(self)

    def _unique(self, base: str) -> str:
        siblings = {n.name() for n in (self.parent._children if self.parent is not None and
                                       self.parent._children is not None else [])}
        if base not in siblings:
            return base
        stem = re.sub(r"\d+$", "", base)
        i = 1
        while f"{stem}{i}" in siblings:
            i += 1
        return f"{stem}{i}"

    def _add_builtin_knobs(self) -> None:
        builtin: dict[str, Knob] = {}
        if self._class == "Read":
            builtin = {"file": File_Knob("file"), "first": Int_Knob("first"), "last": Int_Knob("last"),
                       "origfirst": Int_Knob("origfirst"), "origlast": Int_Knob("origlast"),
                       "on_error": Enumeration_Knob("on_error", values=["error", "black", "checkerboard"]),
                       "colorspace": String_Knob("colorspace"), "reload": PyScript_Knob("reload"),
                       "format": String_Knob("format")}
        elif self._class == "Write":
            builtin = {"file": File_Knob("file"), "file_type": String_Knob("file_type"),
                       "channels": String_Knob("channels"), "datatype": String_Knob("datatype"),
                       "colorspace": String_Knob("colorspace"), "create_directories": Boolean_Knob("create_directories")}
        elif self._class in ("Camera", "Camera2", "Camera3"):
            builtin = {"translate": XYZ_Knob("translate"), "rotate": XYZ_Knob("rotate"),
                       "focal": Double_Knob("focal"), "haperture": Double_Knob("haperture"),
                       "rot_order": Enumeration_Knob("rot_order", values=["ZXY", "XYZ", "XZY", "YXZ", "YZX", "ZYX"])}
            builtin["focal"]._value, builtin["haperture"]._value = 35.0, 36.0
        elif self._class == "Axis":
            builtin = {"translate": XYZ_Knob("translate")}
        elif self._class == "Root":
            # Project Settings > Color: colorManagement Nuke/OCIO, OCIO_config (built-in name or "custom"),
            # customOCIOConfigPath; workingSpaceLUT may hold an OCIO role
            builtin = {"fps": Double_Knob("fps"), "workingSpaceLUT": String_Knob("workingSpaceLUT"),
                       "colorManagement": String_Knob("colorManagement"), "OCIO_config": String_Knob("OCIO_config"),
                       "customOCIOConfigPath": File_Knob("customOCIOConfigPath"),
                       "first_frame": Int_Knob("first_frame"), "last_frame": Int_Knob("last_frame")}
            builtin["fps"]._value, builtin["workingSpaceLUT"]._value = 24.0, "ACEScg"
            builtin["colorManagement"]._value, builtin["OCIO_config"]._value = "OCIO", "aces_1.2"
            self.script_name = ""
        elif self._class == "Group":
            builtin = {"knobChanged": String_Knob("knobChanged")}
        builtin["selected"] = Boolean_Knob("selected")
        builtin["xpos"], builtin["ypos"] = Int_Knob("xpos"), Int_Knob("ypos")
        for k in builtin.values():
            k.node = self
        self._knobs.update(builtin)

    # -- API used by the adapter
    def Class(self) -> str:
        return self._class

    def name(self) -> str:
        return self._knobs["name"].value() if self._class != "Root" else (self.script_name or "Root")

    def knob(self, name: str) -> Knob | None:
        return self._knobs.get(name)

    def setName(self, name: str) -> None:
        self._knobs["name"]._value = self._unique(name)

    def setSelected(self, selected: bool) -> None:  # from code: no knobChanged
        self._knobs["selected"]._value = bool(selected)

    def isSelected(self) -> bool:
        return bool(self._knobs["selected"]._value)

    def xpos(self) -> int:
        return int(self._knobs["xpos"]._value)

    def ypos(self) -> int:
        return int(self._knobs["ypos"]._value)

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    def __getitem__(self, name: str) -> Knob:
        return self._knobs[name]

    def addKnob(self, knob: Knob) -> None:
        knob.node = self
        self._knobs[knob.name()] = knob

    def input(self, i: int) -> "Node | None":
        if self._class == "Group":  # a Group's inputs are its Input nodes' sources
            return self._inputs.get(i)
        return self._inputs.get(i)

    def setInput(self, i: int, node: "Node | None") -> bool:
        if node is None:
            self._inputs.pop(i, None)
        else:
            self._inputs[i] = node
        return True

    def begin(self) -> "Node":
        _stack.append(self)
        return self

    def end(self) -> None:
        assert _stack and _stack[-1] is self
        _stack.pop()

    def __enter__(self) -> "Node":
        return self.begin()

    def __exit__(self, *exc: Any) -> None:
        self.end()

    # -- image side (Read / source nodes)
    def firstFrame(self) -> int:
        return int(self._knobs["first"].value()) if "first" in self._knobs else 1

    def lastFrame(self) -> int:
        return int(self._knobs["last"].value()) if "last" in self._knobs else 1

    def _image(self, frame: int):
        from gvfx.exr import read_exr
        from gvfx.ui.model import frame_file

        if self._class == "Read":
            return self._read_file(frame)
        src = self.input(0)
        if src is None:
            raise RuntimeError(f"{self.name()}: no input")
        return src._image(frame)

    def _read_file(self, frame: int):
        from gvfx.exr import read_exr
        from gvfx.ui.model import frame_file

        return read_exr(frame_file(self._knobs["file"].value(), frame))

    def _format(self) -> tuple[int, int] | None:
        fmt = self._knobs["format"]._value if self._class == "Read" else ""
        return tuple(int(v) for v in fmt.split()) if fmt else None  # type: ignore[return-value]

    def width(self) -> int:  # a Read's format is what fromUserText (or creation with file=) set
        fmt = self._format()
        return fmt[0] if fmt else self._image(self.firstFrame()).width

    def height(self) -> int:
        fmt = self._format()
        return fmt[1] if fmt else self._image(self.firstFrame()).height

    def sample(self, channel: str, x: float, y: float, dx: float = 1, dy: float = 1, frame: int | None = None) -> float:
        img = self._image(int(frame if frame is not None else self.firstFrame()))
        name = {"rgba.alpha": "A", "rgba.red": "R", "rgba.green": "G", "rgba.blue": "B"}.get(channel, channel)
        row = img.height - 1 - int(math.floor(y))  # Nuke y is up
        col = int(math.floor(x))
        if not (0 <= row < img.height and 0 <= col < img.width) or name not in img.channels:
            return 0.0
        return float(img.channels[name][row, col])

    def metadata(self) -> dict:
        img = self._image(self.firstFrame())
        return {f"exr/{k}": v for k, v in img.metadata.items()}


class _Nodes:
    def __getattr__(self, cls: str) -> Callable[..., Node]:
        def make(**knobs: Any) -> Node:
            node = Node(cls, **knobs)
            CALLS.append(("nodes." + cls, node.name()))
            return node
        return make


nodes = _Nodes()


def createNode(cls: str, args: str = "", inpanel: bool = True) -> Node:
    """As from a menu or toolbar: "hooks it up to any user-selected nodes in the Node Graph ... any knob
    defaults are also set" (Foundry, Python developer guide, Getting Started > Creating a Node in the User
    Interface, https://learn.foundry.com/nuke/developers/151/pythondevguide/basics.html); the new node is
    placed below the selection and becomes the selection. ``nuke.nodes.X()`` does none of this."""
    context = _stack[-1] if _stack else _root
    selected = [n for n in context._children or [] if n.isSelected()]
    node = Node(cls)
    CALLS.append(("createNode", cls, node.name()))
    if selected:
        node.setInput(0, selected[-1])
        node["xpos"]._value, node["ypos"]._value = selected[-1].xpos(), selected[-1].ypos() + 60
    for n in selected:
        n.setSelected(False)
    node.setSelected(True)
    return node


def selectedNodes(cls: str | None = None) -> list[Node]:
    context = _stack[-1] if _stack else _root
    return [n for n in context._children or [] if n.isSelected() and (cls is None or n.Class() == cls)]


def selectedNode() -> Node:
    sel = selectedNodes()
    if not sel:
        raise ValueError("no node selected")
    return sel[-1]


def user_set(knob: Knob, value: Any) -> None:
    """The artist changes a knob in the properties panel: the value is set and knobChanged fires."""
    knob.setValue(value)
    if knob.node is not None:
        _fire(knob.node, knob)


def user_select(node: Node) -> None:
    """The artist clicks a node in the Node Graph: it alone is selected (knobChanged fires on 'selected')."""
    for n in (node.parent._children or []) if node.parent is not None else []:
        n.setSelected(False)
    node.setSelected(True)
    _fire(node, node["selected"])


def root() -> Node:
    return _root


def toNode(name: str) -> Node | None:
    context = _stack[-1] if _stack else _root
    for n in context._children or []:
        if n.name() == name:
            return n
    return None


def allNodes(cls: str | None = None) -> list[Node]:
    context = _stack[-1] if _stack else _root
    return [n for n in context._children or [] if cls is None or n.Class() == cls]


def delete(node: Node) -> None:
    parent = node.parent
    if parent is not None and parent._children is not None and node in parent._children:
        parent._children.remove(node)
    CALLS.append(("delete", node.name()))


def thisNode() -> Node | None:
    return _this["node"]


def thisKnob() -> Knob | None:
    return _this["knob"]


def message(text: str) -> None:
    MESSAGES.append(text)


def addKnobChanged(call: Callable, args: tuple = (), kwargs: dict | None = None, nodeClass: str = "*",
                   node: Node | None = None) -> None:
    _knob_changed.append((call, nodeClass))


def _fire(node: Node, knob: Knob) -> None:
    for call, cls in list(_knob_changed):
        if cls in ("*", node.Class()):
            old = dict(_this)
            _this.update(node=node, knob=knob)
            try:
                call()
            finally:
                _this.update(old)


def execute(node: Node, first: int, last: int, incr: int = 1) -> None:
    """Execute a Write: read its input per frame and write every channel to an EXR (gvfx's writer)."""
    from gvfx.exr import write_exr
    from gvfx.ui.model import frame_file

    assert node.Class() == "Write", f"execute() of a {node.Class()}"
    CALLS.append(("execute", node.name(), first, last, node["file"].value(), node["colorspace"].value()))
    for f in range(first, last + 1, incr):
        img = node.input(0)._image(f)
        out = Path(frame_file(node["file"].value(), f))
        out.parent.mkdir(parents=True, exist_ok=True)
        write_exr(out, dict(img.channels), half=False, colorspace=node["colorspace"].value() or "ACEScg",
                  metadata={"nuke:frame": f}, frame=f)


class ProgressTask:
    def __init__(self, name: str) -> None:
        self.name = name
        self.progress: list[int] = []
        self.messages: list[str] = []
        self.cancelled = False
        TASKS.append(self)

    def setProgress(self, i: int) -> None:
        assert threading.current_thread() is threading.main_thread(), "ProgressTask used off the main thread"
        self.progress.append(int(i))

    def setMessage(self, text: str) -> None:
        self.messages.append(text)

    def isCancelled(self) -> bool:
        return self.cancelled


def executeInMainThread(call: Callable, args: tuple = (), kwargs: dict | None = None) -> None:
    if not isinstance(args, tuple):
        args = (args,)
    _main_queue.put((call, args, kwargs or {}))


def process_events(until: Callable[[], bool] | None = None, timeout: float = 60.0) -> bool:
    """Run queued main-thread calls (on the calling thread) until ``until()`` or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            call, args, kwargs = _main_queue.get(timeout=0.02)
            call(*args, **kwargs)
        except queue.Empty:
            pass
        if until is not None and until():
            return True
        if time.monotonic() > deadline:
            return False


class _Menu:
    def __init__(self, name: str) -> None:
        self.name = name
        self.items: dict[str, Any] = {}

    def addMenu(self, name: str) -> "_Menu":
        return self.items.setdefault(name, _Menu(name))

    def addCommand(self, name: str, command: Any = None, *args: Any, **kw: Any) -> None:
        self.items[name] = command

    def addSeparator(self) -> None:
        pass


_menus: dict[str, _Menu] = {}


def menu(name: str) -> _Menu:
    return _menus.setdefault(name, _Menu(name))


def toolbar(name: str) -> _Menu:
    return _menus.setdefault(f"toolbar:{name}", _Menu(name))


_panes: dict = {}


def getPaneFor(name: str):
    from nukescripts.panels import Pane

    return _panes.setdefault(name, Pane(name))


PLUGIN_PATHS: list[str] = []


def pluginAddPath(path: str) -> None:
    PLUGIN_PATHS.append(path)


reset()
