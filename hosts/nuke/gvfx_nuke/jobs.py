"""Knob values -> a gvfx job (docs/jobs.md), and every check on the way. Pure Python, no ``nuke``.

The adapter gathers a node's knob values into a dict (:data:`knobs`) and what it learnt from the
node's inputs into an :class:`InputContext`; :func:`build_job` validates both and returns the job
mapping the worker renders. Every bad value is a :class:`~gvfx_nuke.params.KnobError` naming the knob.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from gvfx_nuke.params import KnobError, effect_names, effect_values, has_prompt, match_values

ELEMENT, INSERT, MATCH = "element", "insert", "match"
KINDS = (ELEMENT, INSERT, MATCH)
PLACEMENTS = {ELEMENT: ("default", "screen", "point", "axis"), INSERT: ("default", "screen", "point", "axis", "mask")}
FRAME_RANGE_MODES = ("input", "custom")
DEPTH_CONVENTIONS = ("z", "distance", "inverse_z", "normalized")
OUTPUTS = ("element", "comp")

#: Nuke's (non-OCIO and nuke-default) names for scene-linear spaces -> gvfx/OCIO names
_COLORSPACE_ALIASES = {"linear": "lin_rec709", "acescg": "ACEScg", "aces - acescg (ap1)": "ACEScg",
                       "aces - acescg": "ACEScg", "acescg (ap1)": "ACEScg", "lin_ap1": "ACEScg",
                       "linear rec.709 (srgb)": "Linear Rec.709 (sRGB)", "lin_srgb": "lin_srgb",
                       "lin_rec709": "lin_rec709", "utility - linear - srgb": "lin_rec709"}
_NOT_LINEAR = ("srgb", "rec709", "rec.709", "gamma", "log", "cineon", "acescc", "acescct", "rec1886", "display")


@dataclass(frozen=True)
class InputContext:
    """What the adapter found on the node's inputs and in the script.

    ``input_range``: the plate input's frame range. ``width``/``height``: its format (pixels).
    ``axis_point``: the Axis input's world position on the placement frame (metres), if connected.
    ``mask_centroid``: the mask input's centroid on the placement frame, gvfx pixels (origin top-left).
    ``has_depth_input`` / ``has_camera``: those inputs are connected (their files are written to
    :class:`ShotPaths`). ``element_pattern``: a Match node's element input, written as a sequence.
    """

    script_path: str
    input_range: tuple[int, int] | None
    width: int
    height: int
    colorspace: str = "ACEScg"
    fps: float = 24.0
    has_depth_input: bool = False
    has_camera: bool = False
    haperture_mm: float | None = None
    axis_point: tuple[float, float, float] | None = None
    mask_centroid: tuple[float, float] | None = None
    has_element_input: bool = False


@dataclass(frozen=True)
class ShotPaths:
    """Where a node's inputs, job and outputs go (all absolute)."""

    root: Path
    shot: str
    name: str
    plate: str
    depth: str
    camera: str
    element_input: str
    job_file: Path
    timeline: Path
    match_root: Path
    farm_job: Path
    farm_template: Path
    extra: dict = field(default_factory=dict)


def element_name(node_name: str) -> str:
    """A node name as a gvfx element name (a letter first, then letters, digits, _ or -)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", node_name or "").strip("_-")
    if not name or not name[0].isalpha():
        name = f"el_{name}" if name else "element"
    return name


def shot_name(script_path: str) -> str:
    """The shot a script belongs to: its file name without extension and without a version suffix
    (``sh010_comp_v003.nk`` -> ``sh010_comp``), so script versions share their gvfx outputs."""
    stem = Path(script_path).stem
    return re.sub(r"[_.-]v\d+$", "", stem) or stem


def shot_paths(script_path: str, node_name: str, output_dir: str = "") -> ShotPaths:
    """Paths of a node's work. Default root: ``SCRIPT_DIR/gvfx/SHOT/NODE``; ``output_dir`` overrides it."""
    if not script_path:
        raise KnobError("script", "save the Nuke script first: gvfx writes its inputs and outputs next to it")
    script = Path(script_path).resolve()
    shot = shot_name(str(script))
    name = element_name(node_name)
    root = Path(output_dir).expanduser() if output_dir else script.parent / "gvfx" / shot / name
    if not root.is_absolute():
        root = script.parent / root
    inputs = root / "inputs"
    farm_stem = f"{script.stem}_{name}"
    return ShotPaths(root=root, shot=shot, name=name, plate=str(inputs / "plate.####.exr"),
                     depth=str(inputs / "depth.####.exr"), camera=str(inputs / "camera.chan"),
                     element_input=str(inputs / "element.####.exr"), job_file=root / f"{name}.gvfx.json",
                     timeline=root / f"{shot}.otio", match_root=root / "match",
                     farm_job=script.parent / f"{farm_stem}.gvfx.json",
                     farm_template=script.parent / f"{farm_stem}.openjd.yaml")


def resolve_frame_range(mode: str, first: Any, last: Any, input_range: tuple[int, int] | None) -> tuple[int, int]:
    """The frames to generate: the input's range (``input``) or ``first``-``last`` inside it (``custom``)."""
    if mode not in FRAME_RANGE_MODES:
        raise KnobError("frame_range", f"{mode!r} is not one of {', '.join(FRAME_RANGE_MODES)}")
    if input_range is None:
        raise KnobError("plate", "connect a plate to input 0 (plate)")
    in_first, in_last = int(input_range[0]), int(input_range[1])
    if mode == "input":
        return in_first, in_last
    try:
        a, b = int(first), int(last)
        if a != float(first) or b != float(last):
            raise ValueError
    except (TypeError, ValueError):
        raise KnobError("first", f"frames {first!r}-{last!r} are not whole numbers") from None
    if a > b:
        raise KnobError("first", f"first frame {a} is after last frame {b}")
    if a < in_first or b > in_last:
        raise KnobError("first", f"frames {a}-{b} are outside the plate's range {in_first}-{in_last}")
    return a, b


def colorspace_for_job(working_space: str) -> str:
    """The script's working (scene-linear) colour space as a gvfx/OCIO name; a display or log space is
    an error (plates must be written scene-linear)."""
    name = (working_space or "").strip()
    if not name:
        return "ACEScg"
    key = name.lower()
    from gvfx_nuke.colorspace import ROLES

    if key in ROLES:  # roles mean what the script's config says: resolve them first (gvfx_nuke.colorspace)
        raise KnobError("colorspace", f"the working space {name!r} is an OCIO role: resolve it through the "
                                      "script's OCIO config first")
    if key in _COLORSPACE_ALIASES:
        return _COLORSPACE_ALIASES[key]
    if "lin" not in key and any(t in key for t in _NOT_LINEAR):
        raise KnobError("colorspace", f"the working space {name!r} is not scene-linear: set Project Settings > "
                                      "Color > working space to a linear space (e.g. ACEScg)")
    return name


def _frame_knob(knobs: dict, frames: tuple[int, int]) -> int:
    f = knobs.get("placement_frame")
    if f in (None, "", 0):
        return frames[0]
    f = int(f)
    if not frames[0] <= f <= frames[1]:
        raise KnobError("placement_frame", f"frame {f} is outside the frames to generate {frames[0]}-{frames[1]}")
    return f


def placement(kind: str, knobs: dict, ctx: InputContext, frames: tuple[int, int]) -> dict | None:
    """The element's ``placement:`` (None = gvfx's default, the bottom-centre third of the frame).

    Nuke's 2D position knob has its origin bottom-left; gvfx pixels are top-left: ``v = height - y``.
    """
    mode = knobs.get("placement", "default")
    if mode not in PLACEMENTS[kind]:
        raise KnobError("placement", f"{mode!r} is not one of {', '.join(PLACEMENTS[kind])}")
    if mode == "default":
        return None
    if mode == "point":
        x, y, z = _vec(knobs.get("point"), 3, "point")
        return {"point": [x, y, z]}
    frame = _frame_knob(knobs, frames)
    if mode == "axis":
        if ctx.axis_point is None:
            raise KnobError("placement", "placement 'axis' needs an Axis (or Camera/Light) node on the axis input")
        return {"point": [float(c) for c in ctx.axis_point]}
    if mode == "mask":
        if ctx.mask_centroid is None:
            raise KnobError("placement", f"placement 'mask' needs a mask on the mask input with some alpha on frame {frame}")
        u, v = ctx.mask_centroid
        return {"screen": [round(float(u), 3), round(float(v), 3)], "frame": frame}
    x, y = _vec(knobs.get("position"), 2, "position")
    if not (0 <= x <= ctx.width and 0 <= y <= ctx.height):
        raise KnobError("position", f"({x:g}, {y:g}) is outside the plate ({ctx.width}x{ctx.height})")
    return {"screen": [round(x, 3), round(ctx.height - y, 3)], "frame": frame}


def _vec(value: Any, n: int, knob: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise KnobError(knob, f"expected {n} numbers, got {value!r}") from None
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise KnobError(knob, f"expected {n} finite numbers, got {value!r}")
    return vals


def _number(knobs: dict, name: str, default: float, *, lo: float | None = None, hi: float | None = None,
            integer: bool = False, positive: bool = False) -> float | int:
    v = knobs.get(name, default)
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise KnobError(name, f"{v!r} is not a number") from None
    if not math.isfinite(f):
        raise KnobError(name, f"{v!r} is not a finite number")
    if integer and f != int(f):
        raise KnobError(name, f"{v} is not a whole number")
    if positive and f <= 0:
        raise KnobError(name, f"{v} must be greater than 0")
    if lo is not None and f < lo:
        raise KnobError(name, f"{v} is below the minimum {lo}")
    if hi is not None and f > hi:
        raise KnobError(name, f"{v} is above the maximum {hi}")
    return int(f) if integer else f


def _depth_section(knobs: dict, ctx: InputContext, paths: ShotPaths) -> dict:
    conv = knobs.get("depth_convention", "z")
    if conv not in DEPTH_CONVENTIONS:
        raise KnobError("depth_convention", f"{conv!r} is not one of {', '.join(DEPTH_CONVENTIONS)}")
    depth: dict[str, Any] = {"convention": conv}
    layer = str(knobs.get("depth_channel", "") or "").strip()
    if ctx.has_depth_input:
        depth["path"] = paths.depth
    if layer:
        depth["layer"] = layer
    if conv == "normalized":
        near = _number(knobs, "depth_near", 0.0, positive=True)
        far = _number(knobs, "depth_far", 0.0, positive=True)
        if far <= near:
            raise KnobError("depth_far", f"far {far} must be beyond near {near}")
        depth.update(near=near, far=far)
    return depth


def _camera_section(knobs: dict, ctx: InputContext, paths: ShotPaths) -> dict:
    if ctx.has_camera:
        cam: dict[str, Any] = {"file": paths.camera}
        if ctx.haperture_mm:
            cam["haperture_mm"] = float(ctx.haperture_mm)
        return cam
    focal = _number(knobs, "focal_mm", 0.0, lo=0.0)
    if focal > 0:  # a lens on a locked-off camera
        return {"focal_mm": focal, "haperture_mm": _number(knobs, "haperture_mm", 36.0, positive=True)}
    return {}


def build_job(kind: str, knobs: dict[str, Any], ctx: InputContext, paths: ShotPaths, params: dict) -> dict:
    """The job mapping (docs/jobs.md) for an Element or Insert node; paths absolute.

    ``knobs``: the node's knob values by knob name; ``params``: the snapshot of gvfx's parameters.
    """
    if kind not in (ELEMENT, INSERT):
        raise KnobError("kind", f"{kind!r} nodes do not render jobs (use build_match_command)")
    frames = resolve_frame_range(knobs.get("frame_range", "input"), knobs.get("first"), knobs.get("last"),
                                 ctx.input_range)
    if ctx.width < 1 or ctx.height < 1:
        raise KnobError("plate", f"the plate's format {ctx.width}x{ctx.height} is empty")
    engine = str(knobs.get("engine", "sim"))
    if engine not in params["engines"]:
        raise KnobError("engine", f"unknown engine {engine!r}; installed: {', '.join(sorted(params['engines']))}")
    effect = str(knobs.get("effect", ""))
    allowed = effect_names(params, engine, kind=kind)
    if effect not in allowed:
        raise KnobError("effect", f"{effect!r} is not an effect of engine {engine!r} for this node; "
                                  f"choose one of {', '.join(allowed) or '(none)'}")
    prompt = str(knobs.get("prompt", "") or "").strip()
    if prompt and not has_prompt(params, engine, effect):
        raise KnobError("prompt", f"{engine}/{effect} takes no prompt: choose an engine whose effect has one")
    el: dict[str, Any] = {"name": paths.name, "engine": engine, "effect": effect,
                          "size_m": _number(knobs, "size_m", 1.0, positive=True),
                          "start_frame": frames[0],
                          "seed": _number(knobs, "seed", 0, integer=True, lo=0),
                          "shutter": _number(knobs, "shutter", 0.5, lo=0.0, hi=2.0),
                          "motion_samples": _number(knobs, "motion_samples", 5, integer=True, lo=1, hi=64)}
    place = placement(kind, knobs, ctx, frames)
    if place is not None:
        el["placement"] = place
    reference = str(knobs.get("reference", "") or "").strip()
    if reference:
        if not os.path.isfile(reference):
            raise KnobError("reference", f"file not found: {reference}")
        el["reference"] = os.path.abspath(reference)
    elif kind == INSERT:
        raise KnobError("reference", "an Insert needs a reference image of the object (PNG/JPG/EXR)")
    values = effect_values(params, engine, effect, knobs)
    if values:
        el["params"] = values
    job: dict[str, Any] = {
        "version": 1, "name": paths.shot,
        "plate": {"path": paths.plate, "frames": f"{frames[0]}-{frames[1]}",
                  "colorspace": colorspace_for_job(ctx.colorspace)},
        "depth": _depth_section(knobs, ctx, paths),
        "output": str(paths.root), "fps": float(ctx.fps), "comp": True,
        "elements": [el],
    }
    camera = _camera_section(knobs, ctx, paths)
    if camera:
        job["camera"] = camera
    match = match_values(params, knobs)
    if match:
        job["match"] = match
    return job


def build_match_command(executable: Sequence[str], knobs: dict[str, Any], ctx: InputContext, paths: ShotPaths,
                        params: dict, out_dir: Path) -> tuple[list[str], dict]:
    """A Match node's ``gvfx match`` command line and its settings (written to ``out_dir/settings.json``)."""
    if ctx.input_range is None:
        raise KnobError("plate", "connect a plate to input 0 (plate)")
    if not ctx.has_element_input:
        raise KnobError("element", "connect an element (premultiplied RGBA) to input 1 (element)")
    settings = match_values(params, knobs)
    argv = [*executable, "match", "--plate", paths.plate, "--element", paths.element_input,
            "-o", str(out_dir), "--settings", str(out_dir / "settings.json"), "--quiet"]
    depth = _depth_section(knobs, ctx, paths)
    if "path" in depth:
        argv += ["--depth", depth["path"]]
    elif "layer" in depth:
        argv += ["--depth-layer", depth["layer"]]
    if ctx.has_camera:
        argv += ["--camera", paths.camera]
    return argv, settings


def parse_match_estimates(stdout: str) -> dict[str, Any]:
    """The estimates ``gvfx match``/``gvfx render`` print (``  key: JSON`` lines after
    ``match estimates for NAME (sources: {...}):``) as a dict; ``sources`` included when printed."""
    import ast
    import json

    out: dict[str, Any] = {}
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"match estimates for \S+ \(sources: (.*)\):\s*$", line)
        if not m:
            continue
        try:
            out["sources"] = ast.literal_eval(m.group(1))
        except (ValueError, SyntaxError):
            out["sources"] = m.group(1)
        for body in lines[i + 1:]:
            km = re.match(r"^  (\w+): (.*)$", body)
            if not km:
                break
            try:
                out[km.group(1)] = json.loads(km.group(2))
            except json.JSONDecodeError:
                out[km.group(1)] = km.group(2)
        break
    return out


def estimates_from_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The match estimates in an element EXR's header, from a Nuke Read's ``metadata()``
    (keys ``exr/gvfx:match:NAME``; values JSON text or numbers)."""
    import json

    out: dict[str, Any] = {}
    for key, value in metadata.items():
        m = re.match(r"^(?:exr/)?gvfx:match:(\w+)$", key)
        if not m or m.group(1) == "settings":
            continue
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[m.group(1)] = value
    return out


def lock_estimates(estimates: dict[str, Any], params: dict) -> dict[str, Any]:
    """Knob values that pin a node's match controls to its estimates (the 'Lock estimates' button)."""
    import json

    from gvfx_nuke.params import given_knob_name, match_knob_name

    names = {p["name"]: p for p in params["match"]}
    keys = {"grain": "grain_profile", "colour": "colour_match", "haze": "haze_density_per_m"}
    out: dict[str, Any] = {}
    for key, value in estimates.items():
        if key == "sources" or value is None:
            continue
        pname = keys.get(key, key)
        if key == "haze" and isinstance(value, dict):
            if "density_per_m" in value:
                out[given_knob_name("haze_density_per_m")] = True
                out[match_knob_name("haze_density_per_m")] = float(value["density_per_m"])
            if value.get("colour") is not None:
                out[given_knob_name("haze_colour")] = True
                out[match_knob_name("haze_colour")] = [float(c) for c in value["colour"]]
            continue
        p = names.get(pname)
        if p is None:
            continue
        if p["type"] == "dict":
            out[match_knob_name(pname)] = json.dumps(value, sort_keys=True)
        else:
            out[given_knob_name(pname)] = True
            out[match_knob_name(pname)] = [float(v) for v in value] if isinstance(value, list) else value
    return out


def format_estimates(estimates: dict[str, Any]) -> str:
    """One line per estimate, for the node's read-only estimates knob."""
    import json

    if not estimates:
        return "(no estimates yet: Generate first)"
    return "\n".join(f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(estimates.items()))


def chan_text(samples: Sequence[tuple[int, Sequence[float], Sequence[float], float, float]], width: int,
              height: int, rot_order: str = "ZXY") -> str:
    """A Nuke ``.chan`` (``frame tx ty tz rx ry rz vfov``) from a Camera node's per-frame values
    ``(frame, translate, rotate_deg, focal_mm, haperture_mm)``; the vertical fov assumes a horizontal
    fit of the film back to the plate (gvfx.camera_io.read_chan)."""
    if rot_order != "ZXY":
        raise KnobError("camera", f"the camera's rotation order is {rot_order}; gvfx reads .chan files in ZXY: "
                                  "set the Camera's rot_order to ZXY (or bake it with an Axis)")
    if not samples:
        raise KnobError("camera", "the camera has no frames in the range")
    lines = []
    for frame, t, r, focal, hap in samples:
        if focal <= 0 or hap <= 0:
            raise KnobError("camera", f"frame {frame}: focal {focal} and horizontal aperture {hap} must be positive")
        vap = hap * height / width
        vfov = math.degrees(2 * math.atan(vap / (2 * focal)))
        vals = [*map(float, t), *map(float, r)]
        if not all(math.isfinite(v) for v in vals):
            raise KnobError("camera", f"frame {frame}: non-finite transform {vals}")
        lines.append(f"{int(frame)} " + " ".join(f"{v:.9g}" for v in vals) + f" {vfov:.9g}")
    return "\n".join(lines) + "\n"


def mask_centroid(samples: Sequence[tuple[float, float, float]], height: int) -> tuple[float, float] | None:
    """Alpha-weighted centroid of mask samples ``(x, y, alpha)`` in Nuke pixels (origin bottom-left),
    returned in gvfx pixels (origin top-left); None when the mask is empty."""
    total = sum(max(0.0, a) for _, _, a in samples)
    if total <= 1e-9:
        return None
    x = sum(x * max(0.0, a) for x, _, a in samples) / total
    y = sum(y * max(0.0, a) for _, y, a in samples) / total
    return x, height - y


def farm_command(executable: Sequence[str], job_file: Path, template: Path) -> list[str]:
    """``gvfx farm openjd JOB -o TEMPLATE`` (the scale-out CLI) as an argv."""
    return [*executable, "farm", "openjd", str(job_file), "-o", str(template)]
