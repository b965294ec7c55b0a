"""The gvfx job (docs/jobs.md) built from the Blender scene and the add-on's settings.

Frame numbers: the scene's frame range is the job's, and scene frame N is plate file frame N (set the
scene to 1001-1048 for a plate numbered 1001-1048). fps is the scene's.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

import bpy

from . import camera as camera_mod

_DIGITS_RE = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")


class SetupError(ValueError):
    """A setting the artist has to fix before a job can run (shown as a Blender report)."""


def addon_prefs(context=None):
    ctx = context or bpy.context
    addon = ctx.preferences.addons.get(__package__)
    return addon.preferences if addon else None


def sequence_pattern(path: str) -> str:
    """``/p/plate.1001.exr`` -> ``/p/plate.####.exr`` (the last number before the extension)."""
    if "#" in path or "%0" in path:
        return path
    m = _DIGITS_RE.match(path)
    if not m:
        return path
    return f"{m.group(1)}{'#' * len(m.group(2))}{m.group(3)}"


def output_root(context=None) -> str:
    """The output root: the preference, else ``//gvfx`` next to the saved .blend, else a temp folder."""
    prefs = addon_prefs(context)
    root = (prefs.output_root if prefs else "").strip()
    if not root:
        root = "//gvfx" if bpy.data.filepath else os.path.join(tempfile.gettempdir(), "gvfx")
    return os.path.abspath(bpy.path.abspath(root))


def plate_path(settings) -> str:
    if settings.plate_source == "IMAGE":
        if settings.plate_image is None:
            raise SetupError("Plate: choose an image sequence (or switch Plate to Path)")
        return sequence_pattern(os.path.abspath(bpy.path.abspath(settings.plate_image.filepath)))
    if settings.plate_source == "CLIP":
        if settings.plate_clip is None:
            raise SetupError("Plate: choose a movie clip (or switch Plate to Path)")
        return sequence_pattern(os.path.abspath(bpy.path.abspath(settings.plate_clip.filepath)))
    if not settings.plate_path.strip():
        raise SetupError("Plate: give the plate's path (e.g. /shots/sh010/plate.####.exr)")
    return sequence_pattern(os.path.abspath(bpy.path.abspath(settings.plate_path.strip())))


def _element(el, scene, index: int) -> dict:
    name = el.name.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name or ""):
        raise SetupError(f"Element {index + 1}: name {name!r} may only have letters, digits, _ and -")
    d: dict = {"name": name, "engine": el.engine, "effect": el.effect, "size_m": round(el.size_m, 6),
               "seed": int(el.seed), "start_frame": scene.frame_start}
    unit = scene.unit_settings.scale_length or 1.0
    if el.placement == "CURSOR":
        d["placement"] = {"point": [round(v, 6) for v in camera_mod.point_to_gvfx(scene.cursor.location, unit)]}
    elif el.placement == "OBJECT":
        if el.placement_object is None:
            raise SetupError(f"Element {name}: Placement is Object but no object is chosen (add an Empty and pick it)")
        loc = el.placement_object.matrix_world.translation
        d["placement"] = {"point": [round(v, 6) for v in camera_mod.point_to_gvfx(loc, unit)]}
    elif el.placement == "SCREEN":
        d["placement"] = {"screen_norm": [round(el.screen_norm[0], 6), round(el.screen_norm[1], 6)]}
    params: dict = {}
    reference = el.reference.strip()
    if el.effect == "insert" and el.engine == "sim":
        if el.proxy != "auto":
            params["proxy"] = el.proxy
        if el.collider != "auto":
            params["collider"] = el.collider
        if el.proxy == "mesh":
            reference = _mesh_file(el, name)
    if reference:
        ref = os.path.abspath(bpy.path.abspath(reference))
        if not os.path.isfile(ref):
            raise SetupError(f"Element {name}: reference image not found: {ref}")
        d["reference"] = ref
    if el.engine != "sim" and el.prompt.strip():
        params["prompt"] = el.prompt.strip()
    if params:
        d["params"] = params
    return d


def _mesh_file(el, name: str) -> str:
    """The mesh an insert with Proxy: Mesh reads (the job's reference)."""
    from .props import MESH_SUFFIXES

    mesh = el.mesh_file.strip()
    if not mesh:
        raise SetupError(f"Element {name}: Proxy is Mesh: choose the object's mesh file (OBJ, GLB or USD)")
    path = os.path.abspath(bpy.path.abspath(mesh))
    if not path.lower().endswith(MESH_SUFFIXES):
        raise SetupError(f"Element {name}: {os.path.basename(path)} is not a mesh gvfx reads "
                         f"({', '.join(MESH_SUFFIXES)})")
    if not os.path.isfile(path):
        raise SetupError(f"Element {name}: mesh file not found: {path}")
    return path


def build_job(context) -> tuple[dict, str]:
    """(job mapping, output root). Raises SetupError with the fix when something is missing."""
    scene = context.scene
    s = scene.gvfx
    elements = [e for e in s.elements if e.enabled]
    if not elements:
        raise SetupError("No elements: add one with + in the gvfx panel's element list")
    root = output_root(context)
    os.makedirs(root, exist_ok=True)
    first, last = scene.frame_start, scene.frame_end
    job: dict = {"version": 1, "name": re.sub(r"[^A-Za-z0-9_-]+", "_", scene.name) or "shot",
                 "plate": {"path": plate_path(s), "frames": f"{first}-{last}",
                           "colorspace": s.plate_colorspace or "ACEScg"},
                 "output": root, "fps": round(scene.render.fps / (scene.render.fps_base or 1.0), 6),
                 "comp": True}
    if s.depth_source == "LAYER":
        job["depth"] = {"layer": s.depth_layer or "Z", "convention": s.depth_convention}
    elif s.depth_source == "PATH":
        if not s.depth_path.strip():
            raise SetupError("Depth: give the depth sequence's path, or switch Depth to Plate layer")
        job["depth"] = {"path": sequence_pattern(os.path.abspath(bpy.path.abspath(s.depth_path.strip()))),
                        "convention": s.depth_convention}
    if s.camera_source == "SCENE":
        try:
            job["camera"] = camera_mod.write_scene_camera(scene, os.path.join(root, f"{job['name']}_camera.chan"),
                                                          first, last)
        except ValueError as exc:
            raise SetupError(str(exc)) from None
    elif s.camera_source == "FILE":
        path = os.path.abspath(bpy.path.abspath(s.camera_file.strip()))
        if not os.path.isfile(path):
            raise SetupError(f"Camera: file not found: {path}")
        job["camera"] = {"file": path}
    job["elements"] = [_element(e, scene, i) for i, e in enumerate(elements)]
    return job, root


def _complete(folder: str) -> bool:
    """A version whose frames are all written: ``version.json`` says ``complete`` (cancelled or failed
    renders are ``partial``/``failed``/``rendering`` and are not offered)."""
    info_path = os.path.join(folder, "version.json")
    if os.path.isfile(info_path):
        try:
            with open(info_path, encoding="utf-8") as fh:
                return json.load(fh).get("status") == "complete"
        except (OSError, ValueError):
            return False
    return any(f.endswith(".exr") for f in os.listdir(folder))


def element_versions(root: str, name: str) -> list[tuple[int, str]]:
    """(number, folder) of ``root/elements/NAME/vNNN`` that hold frames, oldest first."""
    base = os.path.join(root, "elements", name)
    out = []
    if os.path.isdir(base):
        for d in os.listdir(base):
            m = re.fullmatch(r"v(\d{3,})", d)
            full = os.path.join(base, d)
            if m and os.path.isdir(full) and _complete(full):
                out.append((int(m.group(1)), full))
    return sorted(out)


def version_frames(folder: str, name: str) -> tuple[str, int, int] | None:
    """(pattern, first, last) of the element frames in a version folder, or None."""
    nums = []
    pat = re.compile(rf"^{re.escape(name)}\.(\d+)\.exr$")
    width = 4
    for f in os.listdir(folder):
        m = pat.match(f)
        if m:
            nums.append(int(m.group(1)))
            width = len(m.group(1))
    if not nums:
        return None
    return os.path.join(folder, f"{name}.{'#' * width}.exr"), min(nums), max(nums)
