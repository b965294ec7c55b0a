"""``gvfx probe``: describe an EXR file or sequence (frames, holes, parts, channels, views, colour
space, depth) as a stable JSON-able dict, optionally with per-channel statistics over the sequence.

The fields are documented in docs/probe.md; add fields, never rename or remove them.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from gvfx.exr import ExrImage, is_depth_channel
from gvfx.exr_info import ExrInfo, read_info
from gvfx.exr_sequence import read_sequence
from gvfx.sequence import discover, sequence_around

log = logging.getLogger(__name__)

__all__ = ["probe", "format_probe", "PROBE_VERSION"]

PROBE_VERSION = 1


def _jsonable(value: Any) -> Any:
    """Header values as JSON types (tuples -> lists, non-finite floats -> strings)."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _box(win: tuple[int, int, int, int]) -> dict[str, int]:
    x0, y0, x1, y1 = win
    return {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "width": x1 - x0 + 1, "height": y1 - y0 + 1}


def _layers(names: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n in names:
        out.setdefault(n.rpartition(".")[0] or "rgba", []).append(n)
    return out


def _describe(info: ExrInfo) -> dict[str, Any]:
    parts = []
    all_names: list[str] = []
    for p in info.parts:
        names = [n for n, _ in p.channels]
        all_names += [n for n in names if n not in all_names]
        parts.append({
            "index": p.index, "name": p.name, "view": p.view,
            "display_window": _box(p.display_window), "data_window": _box(p.data_window),
            "channels": [{"name": n, "type": t} for n, t in p.channels],
            "layers": _layers(names), "compression": p.compression, "tiled": p.tiled, "deep": p.deep,
        })
    attrs = info.parts[0].attributes
    depth = next((n for n in all_names if is_depth_channel(n)), None)
    return {
        "views": list(info.views),
        "parts": parts,
        "layers": _layers(all_names),
        "colorspace": {
            "oiio:ColorSpace": attrs.get("oiio:ColorSpace"),
            "gvfx:colorspace": attrs.get("gvfx:colorspace"),
            "chromaticities": ([round(float(v), 5) for v in attrs["chromaticities"]]
                               if isinstance(attrs.get("chromaticities"), (tuple, list)) else None),
        },
        "depth": {"present": depth is not None, "channel": depth},
        "gvfx": {k: _jsonable(v) for k, v in attrs.items() if k.startswith("gvfx:")},
    }


class _Stats:
    """Streaming per-channel statistics: NaN/Inf counts, min/max/mean of finite values as read."""

    def __init__(self) -> None:
        self.acc: dict[str, dict[str, float]] = {}

    def add(self, img: ExrImage) -> None:
        for name, arr in img.channels.items():
            a = self.acc.setdefault(name, {"nan": 0, "inf": 0, "min": math.inf, "max": -math.inf,
                                           "sum": 0.0, "count": 0})
            nan, inf = img.nonfinite.get(name, (0, 0))
            a["nan"] += nan
            a["inf"] += inf
            vals = arr[np.isfinite(arr)] if is_depth_channel(name) else arr
            if vals.size:
                a["min"] = min(a["min"], float(vals.min()))
                a["max"] = max(a["max"], float(vals.max()))
                a["sum"] += float(vals.sum(dtype=np.float64))
                a["count"] += int(vals.size)

    def result(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, a in self.acc.items():
            has = a["count"] > 0
            out[name] = {"nan": int(a["nan"]), "inf": int(a["inf"]),
                         "min": a["min"] if has else None, "max": a["max"] if has else None,
                         "mean": a["sum"] / a["count"] if has else None}
        return out


def probe(path: str | Path, *, stats: bool = False, view: str | None = None) -> dict[str, Any]:
    """Describe an EXR file or frame pattern as a JSON-able dict (fields in docs/probe.md).

    Headers come from the first frame; with ``stats`` every frame is read (streamed) for per-channel
    NaN/Inf counts and min/max/mean. Raises SequenceError / ImageReadError / LayerError.
    """
    seq = discover(path)
    first = seq.path(seq.first)
    info = read_info(first, frame=None if seq.is_still else seq.first)
    around = sequence_around(first) if seq.is_still else None
    out: dict[str, Any] = {
        "probe_version": PROBE_VERSION,
        "input": str(path),
        "pattern": seq.pattern,
        "is_still": seq.is_still,
        "padding": seq.padding,
        "frames": {"first": seq.first, "last": seq.last, "count": len(seq.frames),
                   "missing": list(seq.missing), "missing_count": len(seq.missing)},
        "sequence_around": ({"pattern": around.pattern, "first": around.first, "last": around.last,
                             "count": len(around.frames)} if around and len(around.frames) > 1 else None),
        "first_file": str(first),
    }
    out.update(_describe(info))
    out["stats"] = None
    if stats:
        acc = _Stats()
        chosen, size0, odd = None, None, {}
        for frame, img in read_sequence(seq, view=view):
            acc.add(img)
            chosen = img.view
            size0 = size0 or (img.width, img.height)
            if (img.width, img.height) != size0:
                odd[int(frame)] = f"{img.width}x{img.height}"
        if odd:
            shown = ", ".join(f"{f} ({s})" for f, s in list(odd.items())[:10]) + (" ..." if len(odd) > 10 else "")
            log.warning("%s: %d frame(s) differ in size from the first frame's %dx%d: %s", seq.pattern, len(odd),
                        size0[0], size0[1], shown)
        out["stats"] = {"frames_read": len(seq.frames), "view": chosen, "channels": acc.result(),
                        "size": {"width": size0[0], "height": size0[1]} if size0 else None,
                        "size_differs": {str(f): s for f, s in odd.items()}}
    return out


def _fmt_box(b: dict[str, int]) -> str:
    return f"{b['width']}x{b['height']} at ({b['x0']}, {b['y0']})..({b['x1']}, {b['y1']})"


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.6g}"


def format_probe(d: dict[str, Any]) -> str:
    """Human-readable text of a :func:`probe` dict."""
    fr = d["frames"]
    lines = [f"{d['pattern']}"]
    if d["is_still"]:
        lines.append("  still image (one frame)")
        if d.get("sequence_around"):
            sa = d["sequence_around"]
            lines.append(f"  part of sequence {sa['pattern']} ({sa['first']}-{sa['last']}, {sa['count']} frames)")
    else:
        lines.append(f"  frames {fr['first']}-{fr['last']} ({fr['count']} found, padding {d['padding']})")
        if fr["missing_count"]:
            shown = ", ".join(str(f) for f in fr["missing"][:20])
            more = " ..." if fr["missing_count"] > 20 else ""
            lines.append(f"  MISSING {fr['missing_count']} frame(s): {shown}{more}")
    if d["views"]:
        lines.append(f"  views: {', '.join(d['views'])} (hero: {d['views'][0]})")
    cs = d["colorspace"]
    lines.append(f"  colour space: {cs.get('gvfx:colorspace') or cs.get('oiio:ColorSpace') or 'unknown'}"
                 + (f" (chromaticities {cs['chromaticities']})" if cs.get("chromaticities") else ""))
    dep = d["depth"]
    lines.append(f"  depth: {dep['channel'] if dep['present'] else 'none'}")
    for p in d["parts"]:
        head = f"  part {p['index']}" + (f" '{p['name']}'" if p["name"] else "") + \
            (f" view {p['view']}" if p["view"] else "")
        lines.append(f"{head}: {p['compression']}{', tiled' if p['tiled'] else ''}{', deep' if p['deep'] else ''}")
        lines.append(f"    display {_fmt_box(p['display_window'])}")
        lines.append(f"    data    {_fmt_box(p['data_window'])}")
        for layer, names in p["layers"].items():
            types = {c["name"]: c["type"] for c in p["channels"]}
            lines.append(f"    {layer}: " + " ".join(f"{n}({types[n]})" for n in names))
    if d["gvfx"]:
        lines.append("  gvfx: " + ", ".join(f"{k[5:]}={v}" for k, v in d["gvfx"].items()))
    if d.get("stats"):
        st = d["stats"]
        lines.append(f"  stats over {st['frames_read']} frame(s):")
        if st.get("size_differs"):
            odd = st["size_differs"]
            lines.append(f"    WARNING {len(odd)} frame(s) differ in size from the first frame "
                         f"({st['size']['width']}x{st['size']['height']}): "
                         + ", ".join(f"{f} {s}" for f, s in list(odd.items())[:10]))
        lines.append(f"    {'channel':<16} {'NaN':>8} {'Inf':>8} {'min':>12} {'max':>12} {'mean':>12}")
        for name, s in st["channels"].items():
            lines.append(f"    {name:<16} {s['nan']:>8} {s['inf']:>8} {_num(s['min']):>12} "
                         f"{_num(s['max']):>12} {_num(s['mean']):>12}")
    return "\n".join(lines)
