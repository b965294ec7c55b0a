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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gvfx.errors import InputError, output_error

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


@dataclass(frozen=True)
class ShotVersion:
    """One version of one element (or of the comp) in a shot's timeline."""

    element: str   # element name, or "comp"
    kind: str      # "element" or "comp"
    version: str   # "v001"
    status: str    # complete, partial or incomplete (a renderer that died)
    active: bool   # the version the timeline's clip shows
    pattern: Path  # the frame pattern, e.g. .../elements/fire/v001/fire.####.exr
    frames: tuple[int, int]


def shot_versions(shot: str | Path) -> list[ShotVersion]:
    """Every version in a shot, oldest first per element: ``shot`` is the timeline (``NAME.otio``) or
    the shot's output root holding exactly one timeline."""
    from gvfx.timeline import active_versions, timeline_versions

    path = Path(shot)
    if path.is_dir():
        found = sorted(path.glob("*.otio"))
        if len(found) != 1:
            raise InputError(f"{path}: expected one timeline (*.otio), found {len(found)}",
                             path=path, hint="pass the .otio file itself")
        path = found[0]
    if not path.is_file():
        raise InputError(f"{path}: no such timeline", path=path, hint="render the job first")
    active = {(name, e.version) for name, e in active_versions(path).items()}
    out = []
    for e in timeline_versions(path):
        ref = e.seq
        directory = ref.directory if ref.directory.is_absolute() else path.parent / ref.directory
        token = "#" * ref.padding
        out.append(ShotVersion(e.track, e.kind, e.version, e.status, (e.track, e.version) in active,
                               directory / f"{ref.prefix}{token}{ref.suffix}", (ref.start_frame, ref.end_frame)))
    return out
