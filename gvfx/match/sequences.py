"""``gvfx match``: match a user's element EXR sequence to a plate with the match stage, outside a render.

:func:`load_settings` reads a ``match:`` mapping from a JSON or YAML file; :func:`match_sequences` runs
:mod:`gvfx.match.stage` (estimate once, then :func:`~gvfx.match.stage.match_frame` per frame) and writes
the matched layers and the comp.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gvfx.camera import CameraTrack
from gvfx.element import ElementFrame
from gvfx.match import lens as _lens
from gvfx.match.stage import (MatchEstimates, MatchSettings, PlateSample, estimate, grain_seed, layer_dict,
                              match_frame, rebuild_comp, write_matched)

__all__ = ["load_settings", "match_sequences", "match_element"]


def load_settings(path: Any) -> MatchSettings:
    """MatchSettings from a JSON or YAML file holding a ``match:``-style mapping (or ``{match: {...}}``)."""
    from pathlib import Path

    import yaml

    from gvfx.errors import JobError

    p = Path(path)
    if not p.is_file():
        raise JobError("settings file not found", path=p)
    try:
        data = json.loads(p.read_text()) if p.suffix.lower() == ".json" else yaml.safe_load(p.read_text())
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise JobError(f"cannot parse settings: {str(exc).splitlines()[0]}", path=p) from None
    if isinstance(data, dict) and set(data) == {"match"}:
        data = data["match"]
    try:
        return MatchSettings.from_dict(data or {}, "match")
    except JobError as exc:
        raise JobError(exc.message, path=p, hint=exc.hint) from None


def match_sequences(*, plate: str, element: str, out_dir: Any, depth: str | None = None,
                    depth_layer: str | None = None, camera: str | None = None,
                    settings: MatchSettings | None = None, progress: Any = None) -> tuple[MatchEstimates, list]:
    """``gvfx match``: match a user's element EXR sequence (rgba, optional Z/holdout/motion) to a plate.

    No engine and no overscan (the element is used as given). Depth: ``depth`` (a sequence) or
    ``depth_layer`` of the plate, else the plate's own Z if it has one, else none (2D fallback).
    Writes ``OUT/element.####.exr`` (matched layers) and ``OUT/comp.####.exr``; returns the estimates
    and the written paths.
    """
    from pathlib import Path

    from gvfx.camera import default_camera, load_camera  # noqa: F401 - load_camera used below
    from gvfx.exr import read_exr, write_layers
    from gvfx.sequence import discover

    st = settings or MatchSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pseq, eseq = discover(plate), discover(element)
    dseq = discover(depth) if depth else None
    frames = [f for f in eseq.frames if pseq.is_still or f in set(pseq.frames)] or list(eseq.frames)
    first = read_exr(pseq.path(frames[0] if not pseq.is_still else pseq.first), frame=frames[0])
    w, h = first.width, first.height
    track = load_camera(camera, w, h, frames=frames) if camera else CameraTrack.static(default_camera(w, h), frames)

    def plate_at(f: int) -> tuple[np.ndarray, np.ndarray | None]:
        img = read_exr(pseq.path(f if not pseq.is_still else pseq.first), frame=f)
        if dseq is not None:
            dimg = read_exr(dseq.path(f if not dseq.is_still else dseq.first), frame=f)
            z = dimg.layer(depth_layer)[..., 0] if depth_layer else dimg.depth()
        elif depth_layer:
            z = img.layer(depth_layer)[..., 0]
        else:
            z = img.depth()
        return img.rgba(), z

    def element_at(f: int) -> ElementFrame:
        img = read_exr(eseq.path(f), frame=f)
        rgba = img.rgba() if "A" in img.channels else np.concatenate([img.rgba()[..., :3], np.zeros((img.height, img.width, 1), np.float32)], -1)
        z = img.depth() if img.depth() is not None else np.full((img.height, img.width), np.inf, np.float32)
        hold = img.layer("holdout")[..., 0] if "holdout.A" in img.channels else None
        extra = {"motion": img.layer("motion")[..., :2]} if "motion.U" in img.channels else {}
        return ElementFrame(rgba, z, hold, extra)

    mid = frames[len(frames) // 2]
    prgba, pz = plate_at(mid)
    first_vis = None
    for f in frames[:8]:
        ef = element_at(f)
        if float(ef.rgba[..., 3].max()) > 0.01:
            first_vis = (f, ef)
            break
    est = estimate(st, PlateSample(mid, prgba[..., :3], pz, track),
                   element_rgba=None if first_vis is None else first_vis[1].rgba,
                   element_plate_rgb=None if first_vis is None else plate_at(first_vis[0])[0][..., :3])
    distort = _lens.stmap_source_px(read_exr(st.stmap).rgba()[..., :2], 0) if st.stmap else (
        _lens.radial_source_px(_lens.RadialModel(st.k1, st.k2), w, h, 0) if (st.k1 or st.k2) else None)
    meta = {**est.metadata(), "gvfx:match:settings": json.dumps(st.to_dict(), sort_keys=True, default=str)}
    written = []
    for i, f in enumerate(frames):
        prgba, pz = plate_at(f)
        mf = match_frame(element_at(f), frame=f, plate_rgb=prgba, plate_z=pz, track=track if pz is not None else None,
                         settings=st, estimates=est, seed=grain_seed(0, f), element_shutter_frames=0.0,
                         distort_src_px=distort)
        written.append(write_matched(out / f"element.{f:04d}.exr", mf, width=w, height=h, metadata=meta, frame=f))
        comp = rebuild_comp(prgba, [layer_dict(mf)])
        written.append(write_layers(out / f"comp.{f:04d}.exr", rgba=comp, metadata={"frame": f, "kind": "comp"}))
        if progress:
            progress("match", i + 1, len(frames))
    return est, written


def match_element(*, plate: str | Path, element: str | Path, out: str | Path, depth: str | Path | None = None,
                  camera: str | Path | None = None, settings: MatchSettings | Mapping[str, Any] | None = None
                  ) -> MatchEstimates:
    """Match an element sequence you bring to a plate, as ``gvfx match`` does; writes
    ``out/element.####.exr`` and ``out/comp.####.exr`` and returns the estimates it used."""
    if settings is not None and not isinstance(settings, MatchSettings):
        settings = MatchSettings.from_dict(dict(settings), "settings")
    estimates, _ = match_sequences(plate=str(plate), element=str(element), out_dir=out,
                                   depth=str(depth) if depth else None, camera=str(camera) if camera else None,
                                   settings=settings)
    return estimates
