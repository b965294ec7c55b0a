"""The GVFX Group nodes: inputs, knobs built from data (params.json), an internal Read for the result,
and the tiny knobChanged callback. Logic lives in :mod:`gvfx_nuke.params` / :mod:`gvfx_nuke.jobs`."""

from __future__ import annotations

import json

import nuke

from gvfx_nuke import jobs as J
from gvfx_nuke import params as P

INPUTS = {J.ELEMENT: ("plate", "depth", "camera", "axis"),
          J.INSERT: ("plate", "depth", "camera", "axis", "mask"),
          J.MATCH: ("plate", "element", "depth", "camera")}
TITLES = {J.ELEMENT: "GVFX_Element", J.INSERT: "GVFX_Insert", J.MATCH: "GVFX_Match"}
READ = "gvfx_read"
_CMD = "import gvfx_nuke.generate as _g; _g.{}(nuke.thisNode())"


def input_index(kind: str, name: str) -> int | None:
    names = INPUTS[kind]
    return names.index(name) if name in names else None


def make_knob(spec: dict):
    """A knob from a spec of :mod:`gvfx_nuke.params` (name, label, class, default, range, choices)."""
    cls = getattr(nuke, spec["class"])
    if spec["class"] == "Enumeration_Knob":
        knob = cls(spec["name"], spec["label"], list(spec["choices"] or []))
    else:
        knob = cls(spec["name"], spec["label"])
    if spec.get("default") not in (None, ""):
        knob.setValue(spec["default"])
    if spec.get("min") is not None and spec.get("max") is not None and hasattr(knob, "setRange"):
        knob.setRange(spec["min"], spec["max"])
    if spec.get("tooltip"):
        knob.setTooltip(spec["tooltip"])
    return knob


def _button(name: str, label: str, func: str):
    return nuke.PyScript_Knob(name, label, _CMD.format(func))


def _add(node, knob) -> None:
    node.addKnob(knob)


def create(kind: str, params: dict | None = None):
    """Create a GVFX node of ``kind`` (element / insert / match) with its inputs, knobs and Read.

    ``nuke.createNode`` (as a toolbar command must: it connects input 0 -- the plate -- to the selected
    node, places the node and runs knob defaults, which ``nuke.nodes.Group()`` does not); the nodes inside
    the group are wired explicitly."""
    params = params or P.load_params()
    node = nuke.createNode("Group", inpanel=False)
    node.setName(TITLES[kind])
    node.begin()
    try:
        for i, name in enumerate(INPUTS[kind]):
            nuke.nodes.Input(name=name, number=i)
        read = nuke.nodes.Read(name=READ)
        read["on_error"].setValue("black")
        out = nuke.nodes.Output()
        out.setInput(0, read)
    finally:
        node.end()
    _add(node, nuke.Tab_Knob("gvfx_tab", "GVFX"))
    kind_knob = nuke.String_Knob("gvfx_kind", "kind")
    kind_knob.setValue(kind)
    kind_knob.setVisible(False)
    _add(node, kind_knob)
    state = nuke.String_Knob("gvfx_versions", "versions data")  # the worker's last `versions` answer (JSON)
    state.setVisible(False)
    _add(node, state)
    if kind != J.MATCH:
        engines = P.engine_names(params)
        engine = nuke.Enumeration_Knob("engine", "engine", engines)
        first = "sim" if "sim" in engines else engines[0]  # the engine that needs no model weights
        engine.setValue(first)
        _add(node, engine)
        _add(node, nuke.Enumeration_Knob("effect", "effect", P.effect_names(params, first, kind=kind)))
        _add(node, nuke.String_Knob("prompt", "prompt"))
        _add(node, nuke.File_Knob("reference", "reference"))
        _add(node, nuke.Enumeration_Knob("placement", "placement", list(J.PLACEMENTS[kind])))
        _add(node, nuke.XY_Knob("position", "position"))
        _add(node, nuke.XYZ_Knob("point", "point (m)"))
        _add(node, nuke.Int_Knob("placement_frame", "placement frame"))
        for name, label, cls, default in (("size_m", "size (m)", "Double_Knob", 1.0), ("seed", "seed", "Int_Knob", 0),
                                          ("shutter", "shutter (frames)", "Double_Knob", 0.5),
                                          ("motion_samples", "motion samples", "Int_Knob", 5)):
            k = getattr(nuke, cls)(name, label)
            k.setValue(default)
            _add(node, k)
    _add(node, nuke.Enumeration_Knob("frame_range", "frame range", list(J.FRAME_RANGE_MODES)))
    _add(node, nuke.Int_Knob("first", "first"))
    _add(node, nuke.Int_Knob("last", "last"))
    _add(node, nuke.String_Knob("depth_channel", "depth channel"))
    _add(node, nuke.Enumeration_Knob("depth_convention", "depth convention", list(J.DEPTH_CONVENTIONS)))
    _add(node, nuke.Double_Knob("focal_mm", "lens (mm, no camera)"))
    _add(node, nuke.File_Knob("output_dir", "output folder"))
    show = nuke.Enumeration_Knob("output", "show", list(J.OUTPUTS))
    if kind == J.MATCH:  # the Match node shows its comp (docs/nuke.md); "element" shows the matched layer
        show.setValue("comp")
    _add(node, show)
    _add(node, nuke.Enumeration_Knob("version", "version", ["(none)"]))
    for name, label, func in (("generate", "Generate", "generate"), ("cancel", "Cancel", "cancel"),
                              ("refresh", "Refresh versions", "refresh_versions"),
                              ("farm", "Submit to farm", "submit_to_farm")):
        _add(node, _button(name, label, func))
    _add(node, nuke.Text_Knob("status", "status", ""))
    if kind != J.MATCH:
        _add(node, nuke.Tab_Knob("params_tab", "Effect"))
        for spec in P.effect_knob_specs(params):
            _add(node, make_knob(spec))
    _add(node, nuke.Tab_Knob("match_tab", "Match"))
    for spec in P.match_knob_specs(params):
        _add(node, make_knob(spec))
    est = nuke.Multiline_Eval_String_Knob("estimates", "estimates")
    est.setValue(J.format_estimates({}))
    est.setEnabled(False)
    _add(node, est)
    _add(node, _button("lock_estimates", "Lock estimates", "lock_estimates"))
    update_visibility(node, params)
    return node


def create_element():
    return create(J.ELEMENT)


def create_insert():
    return create(J.INSERT)


def create_match():
    return create(J.MATCH)


def kind_of(node) -> str | None:
    knob = node.knob("gvfx_kind") if node is not None else None
    return knob.value() if knob is not None else None


def update_visibility(node, params: dict | None = None) -> None:
    """Show the knobs of the chosen engine/effect/placement only."""
    params = params or P.load_params()
    knobs = [node.knob(n) for n in ("engine", "effect", "placement", "frame_range")]
    if kind_of(node) == J.MATCH or any(k is None for k in knobs):
        return
    engine, effect, place, frame_range = (k.value() for k in knobs)
    show = P.visible_knobs(params, engine=engine, effect=effect, placement=place)
    custom = frame_range == "custom"
    show.update(first=custom, last=custom)
    for name, visible in show.items():
        knob = node.knob(name)
        if knob is not None:
            knob.setVisible(visible)


def knob_changed() -> None:
    """Registered once with ``nuke.addKnobChanged(knob_changed, nodeClass="Group")``; tiny by design."""
    node, knob = nuke.thisNode(), nuke.thisKnob()
    kind = kind_of(node)
    if kind is None or knob is None:
        return
    name = knob.name()
    if name == "engine":
        params = P.load_params()
        node["effect"].setValues(P.effect_names(params, knob.value(), kind=kind))
        update_visibility(node, params)
    elif name in ("effect", "placement", "frame_range", "showPanel"):
        update_visibility(node)
    elif name in ("version", "output"):
        show_version(node)


def read_node(node):
    node.begin()
    try:
        return nuke.toNode(READ)
    finally:
        node.end()


def versions_data(node) -> dict:
    text = node["gvfx_versions"].value()
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}


def show_version(node) -> None:
    """Point the internal Read at the version (and output: element or comp) the knobs select."""
    from gvfx_nuke.connect import import_gvfx

    model = import_gvfx("gvfx.ui.model")
    data = versions_data(node)
    name = "match" if kind_of(node) == J.MATCH else J.element_name(node.name())  # as refresh_versions stores it
    label = node["version"].value()
    version = label.split()[0] if label and label != "(none)" else None
    which = node["output"].value() if node.knob("output") is not None else "element"
    if kind_of(node) == J.MATCH:  # a match version holds both element.####.exr and comp.####.exr
        v = model.find_version(data, name, version)
        pattern = (v or {}).get("comp_pattern" if which == "comp" else "pattern")
        if v is None or not pattern:
            return
        set_read(node, pattern, v.get("frames"))
        return
    v = model.find_version(data, "comp" if which == "comp" else name, version if which != "comp" else
                           model.current_version(data, "comp"))
    if v is None or not v.get("pattern"):
        return
    set_read(node, v["pattern"], v.get("frames"))


def set_read(node, pattern: str, frames) -> None:
    from gvfx_nuke.connect import import_gvfx

    model = import_gvfx("gvfx.ui.model")
    read = read_node(node)
    # fromUserText sets file, frame range and format together; setValue would keep the old range and
    # format (Foundry, nuke.File_Knob.fromUserText)
    text = model.nuke_pattern(pattern)
    read["file"].fromUserText(f"{text} {int(frames[0])}-{int(frames[1])}" if frames else text)
    if read.knob("reload") is not None:
        read["reload"].execute()
