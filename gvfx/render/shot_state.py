"""A render's versions in ``version.json``, the shot timeline and the USD layout: marked ``rendering``
when a render starts and with their outcome when it ends, under the timeline lock.

The jobs layer's half of versioning: :mod:`gvfx.versions` keeps the version folders themselves (plain
paths), this module knows jobs, plates and render outputs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gvfx.errors import GvfxError
from gvfx.versions import (clean_stale_tmp, effective_status, live_renderers, now_iso, read_version_info,
                           renderer_entry, versions, write_version_info)

if TYPE_CHECKING:
    from gvfx.job import Job
    from gvfx.plate import Plate
    from gvfx.render import SequenceOutput

log = logging.getLogger(__name__)

__all__ = ["ShotStateTracker", "write_shot_timeline"]


class ShotStateTracker:
    """Marks this render's versions ``rendering`` at the start and their outcome at the end, in each
    ``version.json`` and in the shot timeline (and rewrites ``layout.usda``), under the timeline lock."""

    def __init__(self, job: Job, plate: Plate, outputs: list[SequenceOutput], all_frames: list[int],
                 write_timeline_file: bool) -> None:
        self.job, self.plate, self.outputs, self.all_frames = job, plate, outputs, all_frames
        self.write_timeline_file = write_timeline_file
        self.timeline_path = job.output / f"{job.name}.otio"

    def start(self, clean_tmp: bool) -> None:
        self._update("start", clean_tmp=clean_tmp)

    def end(self, error: str | None = None, *, cancelled: bool = False) -> Path | None:
        """Mark the outcome: ``error`` makes the versions ``failed``; a cancel leaves them ``partial``
        (every frame on disk is whole; ``--resume`` continues them)."""
        if cancelled:
            return self._update("end", stopped="cancelled")
        return self._update("failed" if error else "end", error=error)

    def _update(self, event: str, *, clean_tmp: bool = False, error: str | None = None,
                stopped: str | None = None) -> Path | None:
        from gvfx.sequence import frame_path
        from gvfx.timeline import timeline_lock

        me = renderer_entry()
        with timeline_lock(self.timeline_path):
            for res in self.outputs:
                info = read_version_info(res.version_dir)
                others = live_renderers([r for r in info.get("renderers", [])
                                         if (r.get("pid"), r.get("host")) != (me["pid"], me["host"])])
                if event == "start":
                    if clean_tmp:
                        clean_stale_tmp(res.version_dir, others)
                    status, renderers = "rendering", others + [me]
                else:
                    done = all(frame_path(res.pattern, f).exists() for f in self.all_frames)
                    status = ("complete" if done else "rendering" if others
                              else "failed" if event == "failed" else "partial")
                    renderers = others
                info.update({"status": status, "renderers": renderers, "updated": now_iso(),
                             **_model_fields(res.metadata)})
                bad = getattr(self.plate, "nonfinite_px", None)
                if bad:  # the report of NaN/Inf plate pixels left out of the match, per frame read
                    info["plate_nonfinite_px"] = {**(info.get("plate_nonfinite_px") or {}),
                                                  **{str(k): int(v) for k, v in sorted(bad.items())}}
                if error:
                    info["error"] = error
                elif event == "end":
                    info.pop("error", None)
                if stopped:
                    info["stopped"] = stopped
                elif event == "start":
                    info.pop("stopped", None)
                write_version_info(res.version_dir, info)
            if not self.write_timeline_file:
                return None
            try:
                path = write_shot_timeline(self.job, self.plate, self.outputs)
            except GvfxError as exc:
                if event == "failed":  # never hide the render's own error behind a timeline error
                    log.error("cannot update the timeline: %s", exc)
                    return None
                raise
            _write_layout(self.job, self.plate, path)
            return path


def _write_layout(job: "Job", plate: "Plate", timeline: Path) -> None:
    """Rewrite ``layout.usda``; a failure is logged, never fails the render (the EXRs are the product)."""
    from gvfx.layout import write_shot_layout

    try:
        write_shot_layout(job.output / "layout.usda", job=job, plate=plate, timeline=timeline)
    except Exception as exc:  # noqa: BLE001 - logged loudly; the render's pixels are already safe
        log.warning("layout.usda not written: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))


def _seqref(name: str, pattern: str, first: int, last: int, metadata: dict):
    from gvfx.sequence import parse_pattern
    from gvfx.timeline import SeqRef

    parts = parse_pattern(pattern)
    p = Path(pattern)
    return SeqRef(name=name, directory=str(p.parent), prefix=parts.prefix.rsplit("/", 1)[-1],
                  suffix=parts.suffix, start_frame=first, end_frame=last, padding=parts.padding, metadata=metadata)


_TIMELINE_FIELDS = ("engine", "effect", "element", "seed", "spec_hash", "size_m", "model", "prompt",
                    "negative_prompt", "status", "created", "updated", "job", "renderers", "error", "stopped", "cache",
                    "elements", "kind")


#: what made a generated element, taken from the engine's metadata (``DiffusionEngine.metadata``: the
#: stack name as ``model``, the prompt) as written into every element EXR, never from the spec's params
_MODEL_FIELDS = ("model", "prompt", "negative_prompt")


def _model_fields(metadata: dict | None) -> dict:
    """``model``/``prompt``/``negative_prompt`` of element EXR metadata (keys bare or ``gvfx:``-prefixed)."""
    out = {}
    for k in _MODEL_FIELDS:
        v = (metadata or {}).get(k, (metadata or {}).get(f"gvfx:{k}"))
        if v is not None:
            out[k] = str(v)
    return out


def _exr_model_fields(vdir: Path, pattern: str, first: int, last: int) -> dict:
    """:func:`_model_fields` of the version's first element EXR on disk (header only), or ``{}``."""
    from gvfx.exr_info import read_info
    from gvfx.sequence import frame_path

    for f in range(int(first), int(last) + 1):
        path = frame_path(pattern, f)
        if path.is_file():
            try:
                return _model_fields(read_info(path).parts[0].attributes)
            except GvfxError:
                return {}
    return {}


def _version_entry(track: str, kind: str, vdir: Path, pattern: str, extra: dict | None = None):
    """A timeline VersionEntry from a version folder's ``version.json`` (and the render's metadata).
    ``model``/``prompt`` come from the engine's metadata: this render's, else what ``version.json``
    recorded of it, else the version's first EXR header."""
    from gvfx.timeline import VersionEntry

    info = read_version_info(vdir)
    first, last = (info.get("frames") or [None, None])[:2]
    if first is None:
        return None
    made_by = _model_fields(extra) or _model_fields(info)
    if kind == "element" and not made_by and info.get("engine") not in (None, "sim"):  # an older version.json
        made_by = _exr_model_fields(vdir, pattern, first, last)
    meta = {k: v for k, v in {**(extra or {}), **info, **made_by}.items() if k in _TIMELINE_FIELDS and v is not None}
    if extra and "version" in extra:
        meta["gvfx_version"] = extra["version"]
    meta["frame_range"] = [int(first), int(last)]
    return VersionEntry(track, kind, vdir.name, _seqref(track, pattern, int(first), int(last), meta),
                        effective_status(info))


def write_shot_timeline(job: Job, plate: Plate, outputs: list[SequenceOutput] | dict[str, SequenceOutput],
                        comp: SequenceOutput | None = None) -> Path:
    """Merge this render's versions (and any version folder on disk the timeline does not list yet)
    into the shot's OTIO timeline: plate track, one clip per element with a media reference per
    version, the comp. The caller holds the timeline lock when other processes may write it."""
    from gvfx.timeline import update_timeline

    outs = list(outputs.values()) if isinstance(outputs, dict) else list(outputs)
    outs += [comp] if comp is not None else []
    first, last = plate.frames[0], plate.frames[-1]
    plate_ref = _seqref("plate", plate.sequence.pattern, first, last, {"kind": "plate"})
    mine = {res.version_dir.resolve(): res for res in outs}
    entries = []
    tracks = [(s.name, "element", job.output / "elements" / s.name) for s in job.elements]
    tracks += [("comp", "comp", job.output / "comp")] if job.comp else []
    for name, kind, root in tracks:
        for vdir in versions(root):
            res = mine.get(vdir.resolve())
            pattern = res.pattern if res else str(vdir / f"{name}.####.exr")
            entry = _version_entry(name, kind, vdir, pattern, res.metadata if res else None)
            if entry is not None:
                entries.append(entry)
    return update_timeline(job.output / f"{job.name}.otio", name=job.name, fps=job.fps, plate=plate_ref,
                           entries=entries, metadata={"job": str(job.source) if job.source else None,
                                                      "shot": job.name, "updated": now_iso()})
