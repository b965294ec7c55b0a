"""Versioned output folders (``vNNN``): a render never overwrites a version, it makes the next one or
resumes an unfinished one with the same spec hash.

Each version's ``version.json`` records its spec hash, frames, status and the processes rendering it
(``renderers``: pid, host); :class:`ShotStateTracker` keeps that, the shot timeline (gvfx.timeline)
and ``layout.usda`` (gvfx.layout) up to date around a render, under the timeline's state lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from gvfx.errors import GvfxError, output_error

if TYPE_CHECKING:
    from gvfx.job import Job
    from gvfx.plate import Plate
    from gvfx.render import SequenceOutput

log = logging.getLogger(__name__)

_VERSION_RE = re.compile(r"^v(\d{3,})$")
#: gvfx.exr's temporary frame names: ``.NAME.PID.THREAD.tmp``
_TMP_RE = re.compile(r"^\..+\.(\d+)\.(\d+)\.tmp$")


def versions(root: Path) -> list[Path]:
    """Existing version folders under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _VERSION_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def read_version_info(vdir: Path) -> dict:
    p = vdir / "version.json"
    try:
        return json.loads(p.read_text()) if p.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def write_version_info(vdir: Path, info: dict) -> None:
    """Atomically replace ``version.json``; a full or read-only disk raises OutputError and leaves the
    old file (and no temporary file) behind."""
    atomic_write_text(vdir / "version.json", json.dumps(info, indent=1, sort_keys=True), what="version.json")


def _file_mode() -> int:
    """0o666 less the umask: what ``open()`` would give (``mkstemp`` makes 0o600 files, unreadable to
    the rest of a farm)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str, *, what: str | None = None) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``. An OSError (disk
    full, read-only) becomes one OutputError naming ``path``; the temporary file is removed and the
    old ``path`` is untouched."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise output_error(exc, what or path.name, path) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def next_version(root: Path) -> Path:
    """Create and return the next free ``vNNN`` folder (race-safe: ``mkdir`` fails if it exists)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, "the versions folder", root) from None
    existing = versions(root)
    n = int(existing[-1].name[1:]) + 1 if existing else 1
    while True:
        p = root / f"v{n:03d}"
        try:
            p.mkdir()
            return p
        except FileExistsError:
            n += 1
        except OSError as exc:
            raise output_error(exc, "a new version folder", p) from None


def new_version(root: Path, info: dict) -> Path:
    """The next ``vNNN`` folder with its ``version.json``; if that cannot be written (disk full,
    read-only) the folder is removed again, so no empty version is left behind."""
    vdir = next_version(root)
    try:
        write_version_info(vdir, info)
    except BaseException:
        try:
            vdir.rmdir()
        except OSError:
            log.warning("could not remove the unfinished version folder %s", vdir)
        raise
    return vdir


def find_resumable(root: Path, spec_hash: str) -> Path | None:
    """The newest version made from the same spec hash, if any (complete or not)."""
    for vdir in reversed(versions(root)):
        if read_version_info(vdir).get("spec_hash") == spec_hash:
            return vdir
    return None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- who is rendering a version, and what its status really is ---------------------------------------

#: statuses a version can have (version.json and the timeline): ``rendering`` while a process writes
#: it, ``complete`` (every frame on disk), ``partial`` (a sub-range rendered, more to come), ``failed``
#: (the last render raised), ``incomplete`` (read back: ``rendering`` but its processes are dead)
STATUSES = ("rendering", "complete", "partial", "failed", "incomplete")

#: a stale ``.*.tmp`` file of a dead process is removed at once when every registered renderer of the
#: version is on this host; otherwise (a shared farm file system) only when it is older than this
STALE_TMP_S = 300.0


def renderer_entry() -> dict:
    """This process as a renderer of a version: ``{"pid", "host", "started"}``."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": now_iso()}


def live_renderers(renderers: list[dict] | None) -> list[dict]:
    """The renderers that may still be running: those on another host (cannot tell) and live local pids."""
    from gvfx.lock import pid_alive

    host = socket.gethostname()

    def pid(r: dict) -> int:
        try:
            return int(r.get("pid", -1))
        except (TypeError, ValueError):
            return -1

    from collections.abc import Mapping, Sequence

    ok = isinstance(renderers, Sequence) and not isinstance(renderers, (str, bytes))
    rs = [r for r in renderers if isinstance(r, Mapping)] if ok else []
    return [r for r in rs if r.get("host") != host or pid_alive(pid(r))]


def effective_status(info: dict) -> str:
    """The status to report: ``rendering`` whose renderers are all dead reads as ``incomplete``."""
    status = str(info.get("status") or "incomplete")
    if status == "rendering" and not live_renderers(info.get("renderers")):
        return "incomplete"
    return status


def clean_stale_tmp(vdir: Path, renderers: list[dict] | None = None) -> list[Path]:
    """Remove ``.*.tmp`` files in ``vdir`` left by dead processes (a killed render); return them.

    Temporary names carry the writer's pid (``.NAME.PID.TID.tmp``, gvfx.exr); a file whose pid is alive
    here is never touched, and neither is a young one when a renderer on another host is registered.
    """
    from gvfx.lock import pid_alive

    host = socket.gethostname()
    remote = any(r.get("host") != host for r in (renderers or []))
    removed = []
    for p in vdir.glob(".*.tmp"):
        m = _TMP_RE.match(p.name)
        pid = int(m.group(1)) if m else None
        try:
            age = time.time() - p.stat().st_mtime
        except FileNotFoundError:
            continue
        if pid is not None and (pid == os.getpid() or pid_alive(pid)):
            continue
        if remote and age < STALE_TMP_S:
            continue
        p.unlink(missing_ok=True)
        removed.append(p)
    if removed:
        log.info("removed %d stale temporary file(s) in %s", len(removed), vdir)
    return removed


# --- a render's versions in version.json, the timeline and the layout --------------------------------

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
    from gvfx.versions import effective_status

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
