"""Job files: what to render, read from YAML or JSON and validated with errors that name the field.

A job names a plate (pattern, frames, view, colour space), its depth (a layer of the plate or a
separate sequence, with its convention), its camera (USD, Nuke .chan, or a lens), the elements to
generate, and an output root. Paths are relative to the job file. See docs/jobs.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from gvfx.element import ElementSpec, Placement
from gvfx.errors import JobError
from gvfx.limits import MAX_FPS, MAX_MOTION_SAMPLES, MAX_SEED, MAX_SIDE_PX, check_frame_range
from gvfx.names import NAME_RE, check_name as _check_name  # noqa: F401 - NAME_RE: re-exported
from gvfx.params import check_keys as _check_keys, num as _num, validate_params, vec as _vec  # noqa: F401


JOB_VERSION = 1
_TOP_KEYS = {"version", "plate", "depth", "camera", "elements", "output", "fps", "name", "comp", "match", "confine"}
_PLATE_KEYS = {"path", "frames", "view", "colorspace"}
_DEPTH_KEYS = {"path", "layer", "convention", "near", "far", "scale", "far_clip", "near_is_one", "source", "model",
               "height_m", "horizon"}
_CAMERA_KEYS = {"file", "focal_mm", "haperture_mm", "vaperture_mm", "prim", "pixel_aspect", "solve", "height_m",
                "proxy_width"}
DEPTH_SOURCES = ("sfm", "estimator", "user", "ground")
_ELEMENT_KEYS = {"name", "engine", "effect", "placement", "size_m", "start_frame", "seed", "reference",
                 "params", "shutter", "motion_samples", "match"}
_PLACEMENT_KEYS = {"screen", "screen_norm", "frame", "point"}


@dataclass(frozen=True)
class PlateSpec:
    path: str
    frames: tuple[int, int] | None = None
    view: str | None = None
    colorspace: str = "ACEScg"


@dataclass(frozen=True)
class DepthSpec:
    """Where the plate's depth comes from: ``path`` None means a layer of the plate itself."""

    path: str | None = None
    layer: str | None = None
    convention: str = "z"
    near: float | None = None
    far: float | None = None
    scale: float = 1.0
    far_clip: float | None = None
    near_is_one: bool = True
    #: ``sfm`` / ``estimator``: depth solved by ``gvfx analyze``; ``user``: the pass at ``path``
    source: str | None = None
    model: str | None = None  # estimator model folder
    height_m: float | None = None  # ground: the camera's height above the ground plane
    horizon: float | None = None   # ground: the horizon's row, a fraction of the frame height from the top


@dataclass(frozen=True)
class CameraSpec:
    file: str | None = None
    focal_mm: float | None = None
    haperture_mm: float = 36.0
    vaperture_mm: float | None = None
    prim: str | None = None
    pixel_aspect: float = 1.0
    #: solve the camera from the plate (``gvfx analyze``) before rendering
    solve: bool = False
    height_m: float | None = None  # solve: camera height above the ground on the first frame
    proxy_width: int = 960         # solve: proxy width


@dataclass(frozen=True)
class Job:
    plate: PlateSpec
    depth: DepthSpec
    camera: CameraSpec
    elements: tuple[ElementSpec, ...]
    output: Path
    fps: float = 24.0
    name: str = "shot"
    comp: bool = True
    source: Path | None = field(default=None, compare=False)
    #: the match stage's settings (``match:``, gvfx.match.stage.MatchSettings); None = defaults
    match: Any = None
    #: per element name, its settings with the element's own ``match:`` overrides applied
    element_match: dict = field(default_factory=dict)
    #: ``confine: true``: every path of the job stays inside the job file's folder (the shot root)
    confine: bool = False
    #: the shot root: the job file's folder (or the worker's ``base_dir``)
    root: Path | None = field(default=None, compare=False)

    def match_settings(self, element: str | None = None) -> Any:
        """The MatchSettings of the shot, or of one element (its ``match:`` overrides applied)."""
        from gvfx.match.stage import MatchSettings

        if element is not None and element in self.element_match:
            return self.element_match[element]
        return self.match if self.match is not None else MatchSettings()

    def with_frames(self, first: int, last: int) -> "Job":
        return replace(self, plate=replace(self.plate, frames=(first, last)))


def parse_frame_range(text: Any, field_name: str = "frames") -> tuple[int, int]:
    """'1001-1048', '1001', [1001, 1048] or (a, b) -> (first, last) inclusive."""
    if isinstance(text, bool) or (isinstance(text, (list, tuple)) and any(isinstance(x, bool) for x in text)):
        raise JobError(f"{field_name}: {text!r} is not a frame range", hint="write it as FIRST-LAST, e.g. 1001-1048")
    if isinstance(text, (list, tuple)) and len(text) == 2:
        a, b = text
        if not all(isinstance(x, int) or (isinstance(x, float) and x.is_integer()) for x in (a, b)):
            raise JobError(f"{field_name}: {text!r} is not a frame range", hint="give two whole frame numbers")
    elif isinstance(text, int):
        a = b = text
    elif isinstance(text, str) and (m := re.fullmatch(r"\s*(-?\d+)\s*(?:[-:]\s*(-?\d+))?\s*", text)):
        a, b = m.group(1), m.group(2) if m.group(2) is not None else m.group(1)
    else:
        raise JobError(f"{field_name}: {text!r} is not a frame range", hint="write it as FIRST-LAST, e.g. 1001-1048")
    try:
        a, b = int(a), int(b)
    except (TypeError, ValueError):
        raise JobError(f"{field_name}: {text!r} is not a frame range", hint="write it as FIRST-LAST") from None
    if b < a:
        raise JobError(f"{field_name}: last frame {b} is before first frame {a}")
    check_frame_range(a, b, field_name, JobError)
    return a, b


def _str(v: Any, where: str, *, default: str | None = None, allowed: tuple[str, ...] | None = None) -> str | None:
    """Text (or ``default`` when absent/None); ``allowed`` lists the only values accepted."""
    if v is None:
        return default
    if not isinstance(v, str):
        raise JobError(f"{where}: expected text, got {v!r}"
                       + (f" (one of {', '.join(allowed)})" if allowed else ""))
    if allowed is not None and v not in allowed:
        raise JobError(f"{where}: unknown value {v!r}", hint=f"one of {', '.join(allowed)}")
    return v


def _bool(d: dict, key: str, where: str, default: bool) -> bool:
    """A true/false field: text such as ``"no"`` is an error, not a true value."""
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise JobError(f"{where}: expected true or false, got {v!r}")
    return v


def check_name(name: Any, where: str) -> str:
    """A name that becomes a file or folder name (gvfx.names): a letter, then letters, digits, ``_``, ``-``."""
    return _check_name(name, where, JobError)


def _colorspace(v: Any, where: str) -> str:
    """A colour space of the active OCIO config (name, alias or role)."""
    from gvfx.color import resolve
    from gvfx.errors import ColorError

    name = _str(v, where, default="ACEScg")
    try:
        resolve(name)
    except ColorError as exc:
        raise JobError(f"{where}: {exc.message}", hint=_colorspace_hint(name)) from None
    return name


def _colorspace_hint(name: str) -> str:
    """The allowed values of a colour-space field: the close matches first, then every space."""
    import difflib

    from gvfx.color import colorspaces

    try:
        names = list(colorspaces())
    except Exception:  # noqa: BLE001 - no OCIO config: the error itself says so
        return "run `gvfx doctor` to see the OCIO config"
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    return (f"did you mean {', '.join(close)}? " if close else "") + f"one of {', '.join(names)} (or an alias or role)"


def _resolve_path(p: Any, base: Path, where: str) -> str:
    if not isinstance(p, str) or not p:
        raise JobError(f"{where}: expected a path, got {p!r}")
    if "\0" in p or len(p) > 4096:
        raise JobError(f"{where}: {p[:80]!r} is not a usable path")
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q))


def _parse_placement(d: Any, where: str) -> Placement:
    if d is None:
        return Placement()
    _check_keys(d, _PLACEMENT_KEYS, where)
    screen = _vec(d["screen"], 2, f"{where}.screen") if "screen" in d else None
    screen_norm = _vec(d["screen_norm"], 2, f"{where}.screen_norm") if "screen_norm" in d else None
    point = _vec(d["point"], 3, f"{where}.point") if "point" in d else None
    if sum(x is not None for x in (screen, screen_norm, point)) > 1:
        raise JobError(f"{where}: give only one of screen, screen_norm, point")
    if screen_norm is not None and not all(0.0 <= c <= 1.0 for c in screen_norm):
        raise JobError(f"{where}.screen_norm: {screen_norm} is outside 0..1")
    frame = _num(d["frame"], f"{where}.frame", integer=True) if "frame" in d else None
    if frame is not None:
        check_frame_range(frame, frame, f"{where}.frame", JobError)
    return Placement(screen=screen, frame=frame, point=point, screen_norm=screen_norm)


def parse_element(d: Any, index: int, base: Path) -> ElementSpec:
    """One element of the job, validated against its engine's effect description."""
    from gvfx.engines import get_engine

    where = f"elements[{index}]"
    _check_keys(d, _ELEMENT_KEYS, where)
    name = check_name(d.get("name", f"element{index + 1}"), f"{where}.name")
    where = f"elements[{name}]"
    engine_name = _str(d.get("engine"), f"{where}.engine", default="sim")
    if "effect" not in d:
        raise JobError(f"{where}.effect: missing", hint="e.g. effect: fire (see `gvfx effects`)")
    engine = get_engine(engine_name)
    effects = engine.effects()
    effect = _str(d["effect"], f"{where}.effect")
    if effect not in effects:
        raise JobError(f"{where}.effect: unknown effect {effect!r} for engine {engine_name!r}",
                       hint=f"known effects: {', '.join(sorted(effects))}")
    params = validate_params(d.get("params", {}) or {}, effects[effect].params, f"{where}.params")
    size = _num(d.get("size_m", 1.0), f"{where}.size_m", positive=True)
    seed = _num(d.get("seed", 0), f"{where}.seed", integer=True, lo=0, hi=MAX_SEED)
    start = _num(d["start_frame"], f"{where}.start_frame", integer=True) if "start_frame" in d else None
    if start is not None:
        check_frame_range(start, start, f"{where}.start_frame", JobError)
    shutter = _num(d.get("shutter", 0.5), f"{where}.shutter")
    if not 0.0 <= shutter <= 2.0:
        raise JobError(f"{where}.shutter: {shutter} must be between 0 and 2 frames")
    samples = _num(d.get("motion_samples", 5), f"{where}.motion_samples", integer=True, lo=1,
                   hi=MAX_MOTION_SAMPLES)
    reference = None
    if d.get("reference") is not None:
        reference = Path(_resolve_path(d["reference"], base, f"{where}.reference"))
        if not reference.is_file():
            raise JobError(f"{where}.reference: file not found: {reference}",
                           hint="give a PNG/JPG/EXR path relative to the job file")
    return ElementSpec(name=name, effect=effect, engine=engine_name,
                       placement=_parse_placement(d.get("placement"), f"{where}.placement"),
                       size_m=size, start_frame=start, seed=seed, reference=reference, params=params,
                       shutter_frames=shutter, motion_samples=samples)


def parse_job(data: Any, base_dir: str | Path = ".", source: Path | None = None) -> Job:
    """Validate a job mapping (a job file's, or one built in code); relative paths resolve against
    ``base_dir``."""
    base_dir = Path(base_dir)
    _check_keys(data, _TOP_KEYS, "job")
    version = data.get("version", JOB_VERSION)
    if isinstance(version, bool) or version != JOB_VERSION:
        raise JobError(f"version: job format {version!r} is not supported", hint=f"this gvfx reads version {JOB_VERSION}")
    if "plate" not in data:
        raise JobError("plate: missing", hint="give plate: {path: plates/shot.####.exr}")
    pd = _check_keys(data["plate"], _PLATE_KEYS, "plate")
    if "path" not in pd:
        raise JobError("plate.path: missing")
    plate = PlateSpec(path=_resolve_path(pd["path"], base_dir, "plate.path"),
                      frames=parse_frame_range(pd["frames"], "plate.frames") if "frames" in pd else None,
                      view=_str(pd.get("view"), "plate.view"),
                      colorspace=_colorspace(pd.get("colorspace"), "plate.colorspace"))
    dd = _check_keys(data.get("depth") or {}, _DEPTH_KEYS, "depth")
    depth = DepthSpec(path=_resolve_path(dd["path"], base_dir, "depth.path") if "path" in dd else None,
                      layer=_str(dd.get("layer"), "depth.layer"),
                      convention=_str(dd.get("convention"), "depth.convention", default="z",
                                      allowed=("z", "distance", "inverse_z", "normalized")),
                      near=_num(dd["near"], "depth.near") if "near" in dd else None,
                      far=_num(dd["far"], "depth.far") if "far" in dd else None,
                      scale=_num(dd.get("scale", 1.0), "depth.scale", positive=True),
                      far_clip=_num(dd["far_clip"], "depth.far_clip", positive=True) if "far_clip" in dd else None,
                      near_is_one=_bool(dd, "near_is_one", "depth.near_is_one", True),
                      source=_str(dd.get("source"), "depth.source", allowed=DEPTH_SOURCES),
                      model=_resolve_path(dd["model"], base_dir, "depth.model") if "model" in dd else None,
                      height_m=_num(dd["height_m"], "depth.height_m", positive=True) if "height_m" in dd else None,
                      horizon=_num(dd["horizon"], "depth.horizon") if "horizon" in dd else None)
    if depth.source is not None and depth.source not in DEPTH_SOURCES:
        raise JobError(f"depth.source: unknown source {depth.source!r}", hint="one of sfm, estimator, user, ground")
    if depth.source == "ground" and (depth.height_m is None or depth.horizon is None):
        raise JobError("depth.source: ground needs depth.height_m and depth.horizon",
                       hint="e.g. depth: {source: ground, height_m: 1.6, horizon: 0.45} (horizon: its row as a "
                            "fraction of the frame height from the top)")
    if depth.source == "user" and not depth.path:
        raise JobError("depth.source: user needs depth.path", hint="give depth: {source: user, path: depth.####.exr}")
    if depth.convention not in ("z", "distance", "inverse_z", "normalized"):
        raise JobError(f"depth.convention: unknown convention {depth.convention!r}",
                       hint="one of z, distance, inverse_z, normalized")
    cd = data.get("camera") or {}
    if cd == "solve":  # camera: solve
        cd = {"solve": True}
    cd = _check_keys(cd, _CAMERA_KEYS, "camera")
    if "solve" in cd and not isinstance(cd["solve"], bool):
        raise JobError(f"camera.solve: expected true or false, got {cd['solve']!r}")
    if cd.get("solve") and "file" in cd:
        raise JobError("camera: give either file or solve: true, not both")
    camera = CameraSpec(file=_resolve_path(cd["file"], base_dir, "camera.file") if "file" in cd else None,
                        focal_mm=_num(cd["focal_mm"], "camera.focal_mm", positive=True) if "focal_mm" in cd else None,
                        haperture_mm=_num(cd.get("haperture_mm", 36.0), "camera.haperture_mm", positive=True),
                        vaperture_mm=_num(cd["vaperture_mm"], "camera.vaperture_mm", positive=True)
                        if "vaperture_mm" in cd else None,
                        prim=_str(cd.get("prim"), "camera.prim"),
                        pixel_aspect=_num(cd.get("pixel_aspect", 1.0), "camera.pixel_aspect", positive=True),
                        solve=_bool(cd, "solve", "camera.solve", False),
                        height_m=_num(cd["height_m"], "camera.height_m", positive=True) if "height_m" in cd else None,
                        proxy_width=_num(cd.get("proxy_width", 960), "camera.proxy_width", integer=True, lo=16,
                                         hi=MAX_SIDE_PX))
    if camera.file and not Path(camera.file).is_file():
        raise JobError(f"camera.file: file not found: {camera.file}", hint="give a .usda/.usd or .chan path")
    if camera.prim is not None:
        if not camera.file or Path(camera.file).suffix.lower() not in (".usd", ".usda", ".usdc", ".usdz"):
            raise JobError("camera.prim: names a camera in a USD camera.file", hint="give camera.file: shot.usda")
        if not camera.prim.startswith("/"):
            raise JobError(f"camera.prim: {camera.prim!r} is not an absolute prim path", hint="e.g. /World/Camera")
    els = data.get("elements")
    if not isinstance(els, list) or not els:
        raise JobError("elements: expected a list with at least one element")
    elements = tuple(parse_element(e, i, base_dir) for i, e in enumerate(els))
    names = [e.name for e in elements]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise JobError(f"elements: duplicate name(s) {', '.join(dupes)}", hint="give each element its own name")
    output = Path(_resolve_path(data.get("output", "gvfx-out"), base_dir, "output"))
    if "name" in data:
        name = check_name(data["name"], "name")
    else:  # the job file's name, made safe
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", source.stem if source else "shot").strip("_")[:90]
        name = stem if stem[:1].isalpha() else f"shot_{stem}".rstrip("_")
    for key in ("comp", "confine"):
        _bool(data, key, key, True)
    match, element_match = _parse_match(data, els, base_dir)
    job = Job(plate=plate, depth=depth, camera=camera, elements=elements, output=output,
               fps=_num(data.get("fps", 24.0), "fps", positive=True, hi=MAX_FPS), name=name,
               comp=bool(data.get("comp", True)), source=source, match=match, element_match=element_match,
               confine=bool(data.get("confine", False)), root=Path(base_dir))
    if job.confine:
        check_confined(job, base_dir)
    return job


def write_paths(job: Job) -> list[tuple[str, Path]]:
    """Every file or folder a render of ``job`` creates directly under its output root."""
    out = job.output
    paths = [("name", out / f"{job.name}.otio"), ("name", out / f"{job.name}.otio.lock"),
             ("output", out / ".gvfx.lock"), ("output", out / "layout.usda"), ("output", out / "cache"),
             ("output", out / "comp"), ("output", out / "analysis")]
    paths += [(f"elements[{e.name}].name", out / "elements" / e.name) for e in job.elements]
    return paths


def check_write_paths(job: Job) -> None:
    """Before anything is created: every path a render writes, resolved (symlinks followed), lies inside
    the resolved output root; with ``confine: true`` the output root also lies inside the shot root."""
    import os

    if job.confine and job.root is not None:
        check_confined(job, job.root)
    top = os.path.realpath(job.output)
    if job.confine and job.root is not None:
        root = os.path.realpath(job.root)
        if os.path.commonpath([top, root]) != root:
            raise JobError(f"output: {job.output} resolves to {top}, outside the shot root {root} (confine: true)",
                           hint="the output folder (or a link on its way) leads out of the shot")
    for where, p in write_paths(job):
        full = os.path.realpath(p)
        if os.path.commonpath([full, top]) != top:
            raise JobError(f"{where}: {p} resolves to {full}, outside the output root {top}",
                           hint="a name is a file name inside the output root; remove the link that leads out")


def check_confined(job: Job, root: Path) -> None:
    """With ``confine: true``, every path of the job (plate, depth, camera, references, ST-maps, output)
    must lie inside ``root`` (the job file's folder, the shot root). The check is lexical (``..`` is
    resolved, symlinks are not followed), so a ``plates/`` link to a file server stays allowed."""
    import os

    top = os.path.normpath(os.path.abspath(root))
    paths: list[tuple[str, Any]] = [("plate.path", job.plate.path), ("depth.path", job.depth.path),
                                    ("depth.model", job.depth.model), ("camera.file", job.camera.file),
                                    ("output", job.output)]
    paths += [(f"elements[{e.name}].reference", e.reference) for e in job.elements]
    paths += [("match.stmap", getattr(job.match, "stmap", None))]
    paths += [(f"elements[{n}].match.stmap", getattr(m, "stmap", None)) for n, m in job.element_match.items()]
    for where, p in paths:
        if not p:
            continue
        full = os.path.normpath(os.path.abspath(str(p)))
        if os.path.commonpath([full, top]) != top:
            raise JobError(f"{where}: {full} is outside the shot root {top} (confine: true)",
                           hint="keep every path inside the job file's folder, or set confine: false")


def _parse_match(data: dict, els: list, base_dir: Path) -> tuple[Any, dict]:
    """The job's ``match:`` section and each element's ``match:`` overrides, validated by field name."""
    from gvfx.match.stage import MatchSettings

    def fix_paths(d: Any, where: str) -> Any:
        if isinstance(d, dict) and isinstance(d.get("stmap"), str):
            d = {**d, "stmap": _resolve_path(d["stmap"], base_dir, f"{where}.stmap")}
        return d

    shot = _check_grade(MatchSettings.from_dict(fix_paths(data.get("match") or {}, "match"), "match"), "match")
    per: dict[str, Any] = {}
    for i, e in enumerate(els):
        if isinstance(e, dict) and e.get("match"):
            name = e.get("name", f"element{i + 1}")
            where = f"elements[{name}].match"
            per[name] = _check_grade(MatchSettings.from_dict(fix_paths(e["match"], where), where, base=shot), where)
    return shot, per


def _check_grade(settings: Any, where: str) -> Any:
    """A given ``colour_match`` grade obeys the bounds a measured one does (gvfx.match.stage)."""
    if settings.colour_match is None:
        return settings
    from gvfx.match.colour import ColourMatch
    from gvfx.match.stage import colour_out_of_range

    try:
        reason = colour_out_of_range(ColourMatch.from_dict(settings.colour_match))
    except (TypeError, ValueError):
        import dataclasses

        allowed = ", ".join(f.name for f in dataclasses.fields(ColourMatch))
        raise JobError(f"{where}.colour_match: {settings.colour_match!r} is not a colour grade",
                       hint=f"a mapping of {allowed}") from None
    if reason:
        raise JobError(f"{where}.colour_match: {reason}", hint="give a grade within those bounds, or remove it")
    return settings


def load_job(path: str | Path) -> Job:
    """Read and validate a YAML or JSON job file."""
    p = Path(path)
    if not p.is_file():
        raise JobError("job file not found", path=p)
    try:
        text = p.read_text()
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, yaml.YAMLError) as exc:
        raise JobError(f"cannot parse job file: {str(exc).splitlines()[0]}", path=p) from None
    try:
        return parse_job(data, p.resolve().parent, source=p.resolve())
    except JobError as exc:
        raise JobError(exc.message, path=p, hint=exc.hint) from None
