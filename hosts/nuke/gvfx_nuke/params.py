"""Knobs described as data: effect and match parameters from ``params.json`` (made by
``tools/export_params.py`` from gvfx's engines), turned into knob specs, visibility and validated values.

Pure Python (no ``nuke``): the adapter builds knobs from :func:`effect_knob_specs` /
:func:`match_knob_specs` and the callbacks call :func:`visible_knobs`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

PARAMS_FILE = Path(__file__).resolve().parent / "params.json"

_COLOUR_NAMES = ("albedo", "colour", "color", "tint")


class KnobError(ValueError):
    """A knob holds a value gvfx cannot use; ``knob`` names it, the message says why and how to fix it."""

    def __init__(self, knob: str, message: str) -> None:
        super().__init__(f"{knob}: {message}")
        self.knob = knob
        self.message = message


_cache: dict[str, dict] = {}


def load_params(path: str | Path | None = None) -> dict:
    """The snapshot ``{"engines": {ENGINE: {EFFECT: {"help", "params"}}}, "match": [...]}`` (cached)."""
    p = str(path or PARAMS_FILE)
    if p not in _cache:
        with open(p, encoding="utf-8") as f:
            _cache[p] = json.load(f)
    return _cache[p]


def engine_names(params: dict) -> list[str]:
    return sorted(params["engines"])


def effect_names(params: dict, engine: str, *, kind: str = "element") -> list[str]:
    """Effects of ``engine`` a node of ``kind`` offers: an Insert only the effects that take a reference
    object (named ``insert*``), an Element the rest."""
    names = sorted(params["engines"].get(engine, {}))
    inserts = [n for n in names if n.startswith("insert")]
    if kind == "insert":
        return inserts
    return [n for n in names if n not in inserts] or names


def effect_params(params: dict, engine: str, effect: str) -> list[dict]:
    try:
        return params["engines"][engine][effect]["params"]
    except KeyError:
        raise KnobError("effect", f"engine {engine!r} has no effect {effect!r}") from None


def has_prompt(params: dict, engine: str, effect: str) -> bool:
    return any(p["name"] == "prompt" for p in params["engines"].get(engine, {}).get(effect, {}).get("params", []))


def param_knob_name(engine: str, effect: str, name: str) -> str:
    return f"fx__{engine}__{effect}__{name}"


def match_knob_name(name: str) -> str:
    return f"m__{name}"


def given_knob_name(name: str) -> str:
    """The checkbox of a match control whose default is 'estimated': on = use the knob's value."""
    return f"m__{name}__given"


def estimate_knob_name(name: str) -> str:
    return f"est__{name}"


def knob_class(param: dict) -> str:
    """The Nuke knob class for a parameter."""
    t = param["type"]
    if param.get("choices"):
        return "Enumeration_Knob"
    if t == "tuple":
        size = param.get("size", 3)
        if size == 3 and any(c in param["name"] for c in _COLOUR_NAMES):
            return "Color_Knob"
        return {2: "UV_Knob", 3: "XYZ_Knob"}.get(size, "String_Knob")
    if t == "dict":
        return "Multiline_Eval_String_Knob"
    return {"int": "Int_Knob", "float": "Double_Knob", "bool": "Boolean_Knob"}.get(t, "String_Knob")


def _default_for_knob(param: dict) -> Any:
    d = param["default"]
    t = param["type"]
    if d is None:
        return {"int": 0, "float": 0.0, "bool": False, "tuple": [0.0] * param.get("size", 3), "dict": ""}.get(t, "")
    if t == "tuple":
        return [float(x) for x in d]
    if param.get("choices"):
        return str(d)
    return d


def _spec(name: str, label: str, src: dict, **extra: Any) -> dict:
    return {"name": name, "label": label, "class": knob_class(src), "default": _default_for_knob(src),
            "min": src.get("min"), "max": src.get("max"),
            "choices": [str(c) for c in src["choices"]] if src.get("choices") else None,
            "tooltip": src["help"], **extra}


def effect_knob_specs(params: dict) -> list[dict]:
    """One knob spec per parameter of every effect of every engine (``prompt`` has its own knob)."""
    specs = []
    for engine in engine_names(params):
        for effect in sorted(params["engines"][engine]):
            for p in effect_params(params, engine, effect):
                if p["name"] == "prompt":
                    continue
                specs.append(_spec(param_knob_name(engine, effect, p["name"]), p["name"], p,
                                   engine=engine, effect=effect, param=p["name"]))
    return specs


def match_knob_specs(params: dict) -> list[dict]:
    """Knob specs of the match controls; controls that default to 'estimated' (None) get a 'given'
    checkbox first and a read-only estimate knob after."""
    specs = []
    for p in params["match"]:
        if p["default"] is None and p["type"] not in ("dict", "str"):
            specs.append({"name": given_knob_name(p["name"]), "label": f"set {p['name']}", "class": "Boolean_Knob",
                          "default": False, "min": None, "max": None, "choices": None,
                          "tooltip": f"use the value below instead of the estimate ({p['help']})", "param": p["name"],
                          "role": "given"})
        specs.append(_spec(match_knob_name(p["name"]), p["name"], p, param=p["name"], role="value"))
    return specs


def visible_knobs(params: dict, *, engine: str, effect: str, placement: str, proxy: str = "") -> dict[str, bool]:
    """Which knobs to show for an engine/effect/placement (and insert ``proxy``) choice (the knobChanged
    callback applies it): the mesh file only for ``proxy: mesh``."""
    show = {s["name"]: (s["engine"] == engine and s["effect"] == effect) for s in effect_knob_specs(params)}
    show["mesh_file"] = effect == "insert" and proxy == "mesh"
    show["prompt"] = has_prompt(params, engine, effect)
    show["position"] = placement == "screen"
    show["point"] = placement == "point"
    show["placement_frame"] = placement in ("screen", "axis", "mask")
    return show


# ---------------------------------------------------------------- values

def _num(value: Any, knob: str, param: dict) -> float | int:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise KnobError(knob, f"{value!r} is not a number") from None
    if not math.isfinite(v):
        raise KnobError(knob, f"{value!r} is not a finite number")
    if param.get("min") is not None and v < param["min"]:
        raise KnobError(knob, f"{value} is below the minimum {param['min']}")
    if param.get("max") is not None and v > param["max"]:
        raise KnobError(knob, f"{value} is above the maximum {param['max']}")
    if param["type"] == "int":
        if v != int(v):
            raise KnobError(knob, f"{value} is not a whole number")
        return int(v)
    return v


def param_value(param: dict, value: Any, knob: str) -> Any:
    """A knob value converted to the parameter's job value, or KnobError naming the knob."""
    t = param["type"]
    if param.get("choices"):
        choices = [str(c) for c in param["choices"]]
        if str(value) not in choices:
            raise KnobError(knob, f"{value!r} is not one of {', '.join(choices)}")
        return param["choices"][choices.index(str(value))]
    if t in ("int", "float"):
        return _num(value, knob, param)
    if t == "bool":
        return bool(value)
    if t == "tuple":
        vals = list(value) if isinstance(value, (list, tuple)) else [value]
        size = param.get("size", 3)
        if len(vals) != size:
            raise KnobError(knob, f"expected {size} numbers, got {vals}")
        out = []
        for v in vals:
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise KnobError(knob, f"{v!r} is not a number") from None
            if not math.isfinite(f):
                raise KnobError(knob, f"{v!r} is not a finite number")
            out.append(f)
        return out
    if t == "dict":
        text = str(value or "").strip()
        if not text:
            return None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KnobError(knob, f"not JSON ({exc.msg}): paste the mapping printed by `gvfx match`") from None
        if not isinstance(d, dict):
            raise KnobError(knob, "expected a JSON mapping as printed by `gvfx match`")
        return d
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
        except (TypeError, ValueError):
            return False
    return a == b


def effect_values(params: dict, engine: str, effect: str, knobs: dict[str, Any]) -> dict[str, Any]:
    """The job's ``params:`` for an effect: validated knob values that differ from the defaults."""
    out: dict[str, Any] = {}
    for p in effect_params(params, engine, effect):
        if p["name"] == "prompt":
            prompt = str(knobs.get("prompt", "") or "").strip()
            if prompt:
                out["prompt"] = prompt
            continue
        name = param_knob_name(engine, effect, p["name"])
        if name not in knobs:
            continue
        v = param_value(p, knobs[name], name)
        if p["default"] is None or not _same(v, p["default"]):
            out[p["name"]] = v
    return out


def match_values(params: dict, knobs: dict[str, Any]) -> dict[str, Any]:
    """The job's ``match:`` section: given controls and controls changed from their defaults."""
    out: dict[str, Any] = {}
    for p in params["match"]:
        name = match_knob_name(p["name"])
        if name not in knobs:
            continue
        if p["default"] is None:
            if p["type"] == "dict":
                v = param_value(p, knobs[name], name)
                if v is not None:
                    out[p["name"]] = v
            elif p["type"] == "str":
                if str(knobs[name] or "").strip():
                    out[p["name"]] = str(knobs[name]).strip()
            elif knobs.get(given_knob_name(p["name"])):
                out[p["name"]] = param_value(p, knobs[name], name)
            continue
        v = param_value(p, knobs[name], name)
        if not _same(v, p["default"]):
            out[p["name"]] = v
    return out
