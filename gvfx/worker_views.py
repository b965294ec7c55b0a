"""What the worker's ``versions`` and ``preview`` requests answer (docs/worker_protocol.md).

:func:`timeline_versions` reads every version a shot ``.otio`` holds; :func:`make_preview` turns one EXR
into a display-ready 8-bit sRGB PNG. Both run in the worker on short daemon threads (:mod:`gvfx.worker`
validates the request and calls them); they import the worker's ``ProtocolError`` / ``_jsonable`` when
called, because :mod:`gvfx.worker` imports this module.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from gvfx.errors import InputError

__all__ = ["timeline_versions", "make_preview"]


# ------------------------------------------------------------------------------------- versions

_SHARED_KEYS = ("kind", "element", "effect", "engine")


def _version_number(name: Any) -> int:
    text = str(name or "")
    return int(text[1:]) if text[:1] == "v" and text[1:].isdigit() else -1


def _ref_pattern(ref: Any, timeline_dir: Path) -> str | None:
    """The frame pattern (``####``) or file of a media reference, absolute."""
    import opentimelineio as otio

    if isinstance(ref, otio.schema.ImageSequenceReference):
        base = ref.target_url_base.removeprefix("file://").rstrip("/") or "."
        url = f"{base}/{ref.name_prefix}{'#' * max(1, ref.frame_zero_padding)}{ref.name_suffix}"
    elif isinstance(ref, otio.schema.ExternalReference):
        url = ref.target_url.removeprefix("file://")
    else:
        return None
    p = Path(url)
    return str(p if p.is_absolute() else (timeline_dir / p).resolve())


def _ref_frames(ref: Any, meta: dict) -> list[int] | None:
    import opentimelineio as otio

    fr = meta.get("frame_range")
    if isinstance(fr, list) and len(fr) == 2:
        return [int(fr[0]), int(fr[1])]
    if isinstance(ref, otio.schema.ImageSequenceReference) and ref.available_range is not None:
        return [int(ref.start_frame), int(ref.end_frame())]
    return None


def timeline_versions(path: str | Path) -> dict:
    """Every version a shot ``.otio`` holds, per track, read generically: tracks -> clips -> media
    references, each with ``metadata["gvfx"]`` (clip-level metadata is shared by a clip's references).

    Returns ``{"timeline", "name", "elements": {NAME: {"kind", "current", "versions": [...]}}, "plate",
    "comp"}``; a version is ``{"version", "status", "spec_hash", "frames", "pattern", "active", "clip",
    "reference", "metadata"}``, oldest first. ``current`` is the newest active (enabled clip, active
    reference) version.
    """
    from gvfx.timeline import read_timeline
    from gvfx.versions import effective_status
    from gvfx.worker import _jsonable

    tl = read_timeline(path)
    tl_dir = Path(path).resolve().parent
    groups: dict[str, dict] = {}
    for track in tl.tracks:
        tmeta = _jsonable(dict(track.metadata).get("gvfx") or {})
        for clip in track.find_clips():
            cmeta = _jsonable(dict(clip.metadata).get("gvfx") or {})
            refs = dict(clip.media_references())
            for key, ref in refs.items():
                rmeta = _jsonable(dict(ref.metadata).get("gvfx") or {}) if ref is not None else {}
                active = key == clip.active_media_reference_key
                shared = cmeta if active or len(refs) == 1 else {k: cmeta[k] for k in _SHARED_KEYS if k in cmeta}
                meta = {**tmeta, **shared, **rmeta}
                pattern = _ref_pattern(ref, tl_dir)
                version = meta.get("version") or next(
                    (part for part in reversed(Path(pattern or "").parts) if _version_number(part) >= 0), None)
                kind = meta.get("kind") or ("plate" if track.name == "plate" else "comp" if track.name == "comp"
                                            else "element")
                name = meta.get("element") or track.name or clip.name
                g = groups.setdefault(f"{kind}:{name}", {"name": name, "kind": kind, "versions": []})
                # the effective status: ``rendering`` by processes that are dead reads ``incomplete``,
                # the word the timeline and gvfx.versions use
                status = effective_status(meta) if meta.get("status") else None
                g["versions"].append({"version": version, "status": status,
                                      "spec_hash": meta.get("spec_hash"), "frames": _ref_frames(ref, meta),
                                      "pattern": pattern, "active": bool(active and clip.enabled),
                                      "clip": clip.name, "reference": key, "metadata": meta})
    out: dict[str, Any] = {"timeline": str(Path(path).resolve()), "name": tl.name, "elements": {},
                           "plate": None, "comp": None}
    for g in groups.values():
        seen, unique = set(), []
        for v in sorted(g["versions"], key=lambda v: _version_number(v["version"])):
            if (v["version"], v["pattern"]) not in seen:
                seen.add((v["version"], v["pattern"]))
                unique.append(v)
        active = [v for v in unique if v["active"]] or unique
        entry = {"kind": g["kind"], "current": active[-1]["version"] if active else None, "versions": unique}
        if g["kind"] == "element":
            out["elements"][g["name"]] = entry
        elif out.get(g["kind"]) is None:
            out[g["kind"]] = entry
    return out


# -------------------------------------------------------------------------------------- preview

def _preview_dir(out_dir: Path | None) -> Path:
    if out_dir is None:
        import tempfile

        env = os.environ.get("GVFX_PREVIEW_DIR")
        user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
        out_dir = Path(env) if env else Path(tempfile.gettempdir()) / f"gvfx-preview-{user}"
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _prune(folder: Path, keep: int = 500) -> None:
    files = sorted(folder.glob("*.png"), key=lambda p: p.stat().st_mtime)
    for p in files[:-keep]:
        p.unlink(missing_ok=True)


def _display_planes(img: Any, channel: str, gain: float):
    """(H, W, C) float32 to show, whether it is scene-linear colour (else 0..1 data), and the depth
    range used to normalise Z (or None)."""
    import numpy as np

    from gvfx.exr import is_depth_channel, layer_channels

    if channel in ("rgb", "rgba"):
        return img.rgba()[..., :3] * gain, True, None
    if channel in ("alpha", "A"):
        return img.rgba()[..., 3:] * gain, False, None
    names = layer_channels(img.channels, channel) if channel not in ("Z", "depth") else []
    if channel in ("Z", "depth") or (len(names) == 1 and is_depth_channel(names[0])):
        z = img.depth() if not names else img.channels[names[0]]
        if z is None:
            from gvfx.errors import LayerError
            raise LayerError(f"no depth channel; layers are {', '.join(img.layers())}", path=img.path)
        ok = np.isfinite(z)
        if not ok.any():
            return np.zeros(z.shape + (1,), np.float32), False, None
        near, far = (float(x) for x in np.percentile(z[ok], [0.5, 99.5]))
        disp = np.where(ok, 1.0 - (z - near) / max(far - near, 1e-12), 0.0) if far > near else ok * 1.0
        return np.clip(disp, 0.0, 1.0)[..., None].astype(np.float32), False, [near, far]
    planes = img.layer(channel) * gain  # LayerError names the layers there are
    if planes.shape[-1] >= 3:
        return planes[..., :3], True, None
    if planes.shape[-1] == 2:
        return np.concatenate([planes, np.zeros_like(planes[..., :1])], -1), False, None
    return planes, False, None


def make_preview(path: str | Path, *, channel: str = "rgb", exposure: float = 0.0, max_size: int = 512,
                 frame: int | None = None, colorspace: str | None = None, out_dir: Path | None = None) -> dict:
    """A display-ready 8-bit sRGB PNG of one EXR (a frame of a pattern with ``frame``).

    ``channel``: ``rgb`` (scene-linear colour through :func:`gvfx.color.preview_srgb`, exposure in stops),
    ``alpha`` (grey), ``Z`` (depth normalised near = white, far = black, no depth = black) or any layer or
    channel name (3+ channels as colour, 1-2 as data). Downscaled (box filter, in linear) so the longest
    side is at most ``max_size``. PNGs are cached by source file, mtime and settings. Returns ``{path,
    width, height, channel, source, depth_range}``.
    """
    import hashlib

    import numpy as np
    from PIL import Image

    from gvfx.color import preview_srgb
    from gvfx.exr import read_exr
    from gvfx.sequence import frame_path, parse_pattern
    from gvfx.worker import ProtocolError

    if not isinstance(channel, str) or not channel:
        raise ProtocolError(f"preview: channel: expected rgb, alpha, Z or a layer name, got {channel!r}")
    if isinstance(exposure, bool) or not isinstance(exposure, (int, float)) or not abs(exposure) <= 32:
        raise ProtocolError(f"preview: exposure: expected stops between -32 and 32, got {exposure!r}")
    if isinstance(max_size, bool) or not isinstance(max_size, int) or not 1 <= max_size <= 16384:
        raise ProtocolError(f"preview: max_size: expected a whole number 1..16384, got {max_size!r}")
    src = Path(path)
    if not parse_pattern(src).is_still:
        if not isinstance(frame, int) or isinstance(frame, bool):
            raise ProtocolError(f"preview: {src} is a frame pattern: give frame")
        src = frame_path(src, frame)
    if not src.is_file():
        raise InputError("preview: file not found", path=src)
    st = src.stat()
    key = f"{src.resolve()}|{st.st_mtime_ns}|{st.st_size}|{channel}|{exposure}|{max_size}|{colorspace}"
    folder = _preview_dir(out_dir)
    png = folder / f"{src.stem}.{channel.replace('/', '_')}.{hashlib.sha1(key.encode()).hexdigest()[:12]}.png"
    img = read_exr(src)
    planes, is_colour, depth_range = _display_planes(img, channel, float(2.0 ** exposure))
    planes = np.nan_to_num(planes.astype(np.float32), nan=0.0, posinf=65504.0, neginf=0.0)
    h, w = planes.shape[:2]
    scale = min(1.0, max_size / max(w, h))
    nw, nh = max(1, int(w * scale + 0.5)), max(1, int(h * scale + 0.5))
    if (nw, nh) != (w, h):
        planes = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c])).resize(
            (nw, nh), Image.Resampling.BOX)) for c in range(planes.shape[-1])], -1)
    if is_colour:
        cs = colorspace or img.metadata.get("gvfx:colorspace") or "ACEScg"
        rgb8 = preview_srgb(planes, src=str(cs))
    else:
        data8 = (np.clip(planes, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        rgb8 = np.repeat(data8, 3, axis=-1) if data8.shape[-1] == 1 else data8
    if not png.exists():
        tmp = png.with_name(f".{png.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        Image.fromarray(np.ascontiguousarray(rgb8), "RGB").save(tmp, format="PNG")
        os.replace(tmp, png)
        _prune(folder)
    return {"path": str(png), "width": nw, "height": nh, "channel": channel, "source": str(src),
            "depth_range": depth_range}
