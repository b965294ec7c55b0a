"""Plain data helpers shared by the gvfx panel and the host adapters: standard library only (Nuke's
Python imports this through ``gvfx_nuke.connect``).

``versions`` data is the worker's answer to a ``versions`` request (gvfx.worker_views.timeline_versions):
``{"timeline", "name", "elements": {NAME: {"kind", "current", "versions": [V...]}}, "plate", "comp"}``
with ``V = {"version", "status", "frames", "pattern", "active", "metadata", ...}``, oldest first.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["frame_file", "nuke_pattern", "element_names", "versions_of", "version_label", "current_version",
           "find_version", "sources", "CHANNELS"]

#: the channels the viewer offers first; any other layer of the file may be typed in
CHANNELS = ("rgb", "alpha", "Z", "holdout", "shadow", "lightwrap", "grain", "motion")

_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%0?(\d*)d")


def frame_file(pattern: str, frame: int) -> str:
    """The file of ``frame`` of a ``name.####.exr`` / ``%04d`` pattern (a still is returned as is)."""
    if _HASHES.search(pattern):
        m = list(_HASHES.finditer(pattern))[-1]
        return f"{pattern[:m.start()]}{frame:0{len(m.group(0))}d}{pattern[m.end():]}"
    m = _PRINTF.search(pattern)
    if m:
        return f"{pattern[:m.start()]}{frame:0{int(m.group(1) or 1)}d}{pattern[m.end():]}"
    return pattern


def nuke_pattern(pattern: str) -> str:
    """A pattern as a Nuke Read/Write ``file`` value (``####`` kept, ``%04d`` kept, forward slashes)."""
    return pattern.replace("\\", "/")


def element_names(data: dict | None) -> list[str]:
    return sorted((data or {}).get("elements") or {})


def versions_of(data: dict | None, name: str) -> list[dict]:
    """The versions of element ``name`` (``"comp"``/``"plate"`` also work), oldest first."""
    data = data or {}
    if name in (data.get("elements") or {}):
        entry = data["elements"][name]
    elif name in ("comp", "plate"):
        entry = data.get(name)
    else:
        entry = None
    return list((entry or {}).get("versions") or [])


def current_version(data: dict | None, name: str) -> str | None:
    data = data or {}
    entry = (data.get("elements") or {}).get(name) or (data.get(name) if name in ("comp", "plate") else None)
    if entry and entry.get("current"):
        return entry["current"]
    vs = versions_of(data, name)
    return vs[-1]["version"] if vs else None


def find_version(data: dict | None, name: str, version: str | None) -> dict | None:
    for v in versions_of(data, name):
        if v.get("version") == version:
            return v
    return None


def version_label(v: dict) -> str:
    """``v003  complete  1001-1048`` for lists and Nuke enumeration knobs."""
    frames = v.get("frames")
    rng = f"{frames[0]}-{frames[1]}" if isinstance(frames, (list, tuple)) and len(frames) == 2 else ""
    parts = [str(v.get("version") or "?"), str(v.get("status") or "unknown")]
    if rng:
        parts.append(rng)
    return "  ".join(parts)


def sources(data: dict | None, element: str | None = None, version: str | None = None) -> dict[str, str]:
    """The viewer's sources as ``{"plate": PATTERN, "element": PATTERN, "comp": PATTERN}`` (the
    element at ``version``, default its current one; the comp's current version)."""
    out: dict[str, str] = {}
    data = data or {}
    plate = versions_of(data, "plate")
    if plate and plate[-1].get("pattern"):
        out["plate"] = plate[-1]["pattern"]
    if element:
        v = find_version(data, element, version or current_version(data, element))
        if v and v.get("pattern"):
            out["element"] = v["pattern"]
    comp = find_version(data, "comp", current_version(data, "comp"))
    if comp and comp.get("pattern"):
        out["comp"] = comp["pattern"]
    return out


def frame_range(data: dict | None, name: str | None = None) -> tuple[int, int] | None:
    """Frames of a version list (of ``name``, else of the plate, else of any element)."""
    for key in ([name] if name else []) + ["plate", *element_names(data)]:
        for v in reversed(versions_of(data, key)):
            fr = v.get("frames")
            if isinstance(fr, (list, tuple)) and len(fr) == 2:
                return int(fr[0]), int(fr[1])
    return None


def describe(value: Any) -> str:
    """A short one-line text of a metadata value."""
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
