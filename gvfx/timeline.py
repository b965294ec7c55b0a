"""A first OpenTimelineIO timeline of a shot: the plate, each generated element, and the comp.

One video track per sequence, each holding one clip with an ``ImageSequenceReference`` (elements that
start after the plate are preceded by a gap, so the tracks line up in time). Each clip carries
``metadata["gvfx"]`` (engine, effect, seed, spec hash, status... plus ``frame_range``); the
timeline carries the shot's ``metadata["gvfx"]``.

Paths: a sequence folder inside the timeline file's folder is stored relative to it (POSIX, e.g.
``elements/fire``; ``.`` for the folder itself) so a shot folder can be moved as a whole; any other
folder is stored absolute. :func:`clip_frame_path` resolves either back to a file path.

Versions (:func:`update_timeline`, the shot timeline written by every render): each element's (and
the comp's) clip holds **one media reference per version**, keyed ``v001``, ``v002``... (OTIO's
``Clip.media_references``, 0.15+), each an ``ImageSequenceReference`` with ``metadata["gvfx"]``
(engine, model, seed, prompt, spec_hash, frame_range, status, created, job, renderers...). The clip's
``active_media_reference_key`` is the newest ``complete`` version (else the newest), and its
``metadata["gvfx"]`` repeats that version's fields plus ``active_version`` and ``versions``. A tool that
knows one media reference per clip sees the active version. The timeline is updated, never rebuilt:
it is read, this render's versions are merged in and it is written back atomically, under the state
lock (:func:`timeline_lock`). docs/shot_layout.md describes the idiom.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import opentimelineio as otio

from gvfx.errors import GvfxError, InputError
from gvfx.sequence import parse_pattern

log = logging.getLogger(__name__)

__all__ = ["SeqRef", "write_timeline", "read_timeline", "clip_frame_path", "VersionEntry", "update_timeline",
           "timeline_versions", "active_versions", "timeline_lock", "plain"]


@dataclass(frozen=True)
class SeqRef:
    """An image sequence on disk: ``directory/prefix + frame (zero-padded) + suffix``, frames inclusive.

    ``metadata`` goes to the clip's ``metadata["gvfx"]`` (engine, effect, seed, spec_hash, status...).
    """

    name: str
    directory: Path
    prefix: str
    suffix: str
    start_frame: int
    end_frame: int
    padding: int = 4
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.end_frame < self.start_frame:
            raise InputError(f"sequence {self.name!r}: end frame {self.end_frame} is before start "
                             f"frame {self.start_frame}")
        if self.padding < 1:
            raise InputError(f"sequence {self.name!r}: frame padding must be at least 1, got {self.padding}")
        object.__setattr__(self, "directory", Path(self.directory))

    @classmethod
    def from_pattern(cls, name: str, pattern: str | Path, start_frame: int, end_frame: int,
                     metadata: dict[str, Any] | None = None) -> "SeqRef":
        """A SeqRef from a frame pattern such as ``/shot/plate/plate.####.exr``."""
        fp = parse_pattern(pattern)
        if fp.is_still:
            raise InputError(f"{pattern} has no frame token", hint="use a pattern such as name.####.exr")
        directory, prefix = os.path.split(fp.prefix)
        return cls(name, Path(directory or "."), prefix, fp.suffix, int(start_frame), int(end_frame),
                   fp.padding, dict(metadata or {}))

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.start_frame + 1


def _url_base(directory: Path, timeline_dir: Path) -> str:
    """``directory`` relative to the timeline's folder when inside it, absolute otherwise (POSIX)."""
    d = directory.resolve() if directory.is_absolute() else (Path.cwd() / directory).resolve()
    try:
        return d.relative_to(timeline_dir).as_posix() or "."
    except ValueError:
        return d.as_posix()


def _clip(ref: SeqRef, fps: float, kind: str, timeline_dir: Path) -> otio.schema.Clip:
    start = otio.opentime.RationalTime(ref.start_frame, fps)
    duration = otio.opentime.RationalTime(ref.n_frames, fps)
    available = otio.opentime.TimeRange(start, duration)
    media = otio.schema.ImageSequenceReference(
        target_url_base=_url_base(ref.directory, timeline_dir), name_prefix=ref.prefix,
        name_suffix=ref.suffix, start_frame=ref.start_frame, frame_step=1, rate=fps,
        frame_zero_padding=ref.padding, available_range=available)
    meta = {**ref.metadata, "kind": kind, "frame_range": [ref.start_frame, ref.end_frame]}
    return otio.schema.Clip(name=ref.name, media_reference=media, source_range=available,
                            metadata={"gvfx": meta})


def _track(ref: SeqRef, fps: float, kind: str, timeline_dir: Path, first_frame: int) -> otio.schema.Track:
    track = otio.schema.Track(name=ref.name, kind=otio.schema.TrackKind.Video)
    lead_in = ref.start_frame - first_frame
    if lead_in > 0:
        track.append(otio.schema.Gap(duration=otio.opentime.RationalTime(lead_in, fps)))
    track.append(_clip(ref, fps, kind, timeline_dir))
    return track


def write_timeline(path: str | Path, *, name: str, fps: float, plate: SeqRef, elements: list[SeqRef],
                   comp: SeqRef | None, metadata: dict[str, Any]) -> Path:
    """Write an ``.otio`` timeline (tracks bottom to top: plate, each element, comp), atomically.

    The timeline starts at the earliest frame of its sequences (``global_start_time``).
    """
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    timeline_dir = out.parent.resolve()
    refs = [plate, *elements, *([comp] if comp is not None else [])]
    first = min(r.start_frame for r in refs)
    tl = otio.schema.Timeline(name=name, global_start_time=otio.opentime.RationalTime(first, fps),
                              metadata={"gvfx": dict(metadata)})
    tl.tracks.append(_track(plate, fps, "plate", timeline_dir, first))
    for el in elements:
        tl.tracks.append(_track(el, fps, "element", timeline_dir, first))
    if comp is not None:
        tl.tracks.append(_track(comp, fps, "comp", timeline_dir, first))
    _write_atomic(out, tl)
    log.info("wrote timeline %s (%d tracks)", out, len(tl.tracks))
    return out


def _write_atomic(out: Path, tl: otio.schema.Timeline) -> None:
    """Write ``tl`` to a temporary file beside ``out`` and rename it over ``out``: readers see the old
    or the new timeline, never half of one."""
    from gvfx.errors import output_error

    text = otio.adapters.write_to_string(tl, "otio_json")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        from gvfx.versions import _file_mode

        os.chmod(tmp, _file_mode())
        os.replace(tmp, out)
        tmp = None
    except OSError as exc:  # disk full, read-only: the old timeline stays as it was
        raise output_error(exc, "the timeline", out) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def read_timeline(path: str | Path) -> otio.schema.Timeline:
    """Read an ``.otio`` timeline back."""
    p = Path(path)
    if not p.exists():
        raise InputError("timeline file not found", path=p)
    try:
        return otio.adapters.read_from_file(str(p))
    except Exception as exc:  # OTIO raises many types; give one clear gvfx error
        raise GvfxError(f"cannot read timeline: {exc}", path=p) from exc


def clip_frame_path(timeline_path: str | Path, clip: otio.schema.Clip, frame: int) -> Path:
    """The file of ``frame`` of a clip's image sequence, resolving a relative folder against the
    timeline file's folder."""
    ref = clip.media_reference
    if not isinstance(ref, otio.schema.ImageSequenceReference):
        raise InputError(f"clip {clip.name!r} has no image sequence")
    index = (frame - ref.start_frame) // ref.frame_step
    if not 0 <= index < ref.number_of_images_in_sequence():
        raise InputError(f"frame {frame} is outside clip {clip.name!r} "
                         f"({ref.start_frame}-{ref.end_frame()})", frame=frame)
    url = Path(ref.target_url_for_image_number(index))
    return url if url.is_absolute() else Path(timeline_path).resolve().parent / url


# --- versions: one clip per sequence, one media reference per version --------------------------------

_VERSION_KEY = re.compile(r"^v\d{3,}$")
_GVFX_KINDS = ("plate", "element", "comp")


@dataclass(frozen=True)
class VersionEntry:
    """One version of an element (or of the comp) in the shot timeline.

    ``track`` is the element's name (``comp`` for the comp), ``kind`` ``element`` or ``comp``,
    ``version`` the folder name (``v001``); ``seq.metadata`` is the version's ``metadata["gvfx"]``.
    ``status`` is the effective status (a ``rendering`` version whose processes are dead reads
    ``incomplete``).
    """

    track: str
    kind: str
    version: str
    seq: SeqRef
    status: str = "incomplete"

    @property
    def metadata(self) -> dict[str, Any]:
        return self.seq.metadata


def plain(value: Any) -> Any:
    """OTIO metadata (AnyDictionary / AnyVector, nested) as plain dicts and lists."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "__iter__"):
        return [plain(v) for v in value]
    return value


def timeline_lock(path: str | Path, timeout: float | None = 60.0):
    """The state lock of a timeline (``NAME.otio.lock`` beside it): hold it around a read-merge-write."""
    from gvfx.lock import FileLock

    p = Path(path)
    return FileLock(p.with_name(p.name + ".lock"), timeout=timeout, what="timeline lock",
                    hint="another render is updating this shot's timeline; try again, or remove nothing: "
                         "the lock is released when that process ends")


def _version_number(key: str) -> int:
    return int(key[1:]) if _VERSION_KEY.match(key) else -1


def _ref_status(ref: otio.core.MediaReference) -> str:
    from gvfx.versions import effective_status

    return effective_status(plain(ref.metadata.get("gvfx", {})))


def _choose_active(refs: dict[str, otio.core.MediaReference]) -> str:
    """The newest complete version, else the newest version."""
    keys = sorted(refs, key=_version_number)
    complete = [k for k in keys if _ref_status(refs[k]) == "complete"]
    return (complete or keys)[-1]


def _track_kind(track: otio.schema.Track) -> str | None:
    """gvfx's kind of a track (``plate``/``element``/``comp``), also for timelines of older gvfx
    releases that marked only the clip."""
    kind = plain(track.metadata.get("gvfx", {})).get("kind")
    clip = _gvfx_clip(track) if kind is None else None
    if clip is not None:
        kind = plain(clip.metadata.get("gvfx", {})).get("kind")
    return kind


def _find_track(tl: otio.schema.Timeline, kind: str, name: str) -> int | None:
    for i, track in enumerate(tl.tracks):
        if track.name == name and _track_kind(track) == kind:
            return i
    return None


def _version_refs(clip: otio.schema.Clip | None) -> dict[str, otio.core.MediaReference]:
    """A clip's version-keyed media references (copies); an older single-reference clip gives its one
    reference under the version its metadata names."""
    if clip is None:
        return {}
    refs = {k: r.clone() for k, r in clip.media_references().items() if _VERSION_KEY.match(k)}
    old_version = str(plain(clip.metadata.get("gvfx", {})).get("version", ""))
    if not refs and _VERSION_KEY.match(old_version) and isinstance(clip.media_reference,
                                                                   otio.schema.ImageSequenceReference):
        ref = clip.media_reference.clone()
        ref.metadata["gvfx"] = plain(clip.metadata.get("gvfx", {}))
        refs[old_version] = ref
    return refs


def _gvfx_clip(track: otio.schema.Track) -> otio.schema.Clip | None:
    return next((c for c in track if isinstance(c, otio.schema.Clip)), None)


def _new_track(name: str, kind: str, fps: float, first_frame: int, clip_start: int,
               refs: dict[str, otio.core.MediaReference], active: str, clip_meta: dict) -> otio.schema.Track:
    track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Video, metadata={"gvfx": {"kind": kind}})
    if clip_start > first_frame:
        track.append(otio.schema.Gap(duration=otio.opentime.RationalTime(clip_start - first_frame, fps)))
    clip = otio.schema.Clip(name=name, source_range=refs[active].available_range, metadata={"gvfx": clip_meta})
    clip.set_media_references(refs, active)
    track.append(clip)
    return track


def _read_existing(out: Path) -> otio.schema.Timeline | None:
    """The timeline at ``out``; an unreadable one is moved aside (``NAME.otio.broken-TIME``) with a warning."""
    if not out.exists():
        return None
    try:
        tl = otio.adapters.read_from_file(str(out))
        if isinstance(tl, otio.schema.Timeline):
            return tl
        raise ValueError(f"holds a {type(tl).__name__}, not a Timeline")
    except Exception as exc:  # OTIO raises many types
        aside = out.with_name(f"{out.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(out, aside)
        log.warning("%s: cannot read the existing timeline (%s); moved it to %s and started a new one",
                    out, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, aside.name)
        return None


def update_timeline(path: str | Path, *, name: str, fps: float, plate: SeqRef, entries: list[VersionEntry],
                    metadata: dict[str, Any]) -> Path:
    """Merge ``entries`` into the shot timeline at ``path`` (created if missing) and write it atomically.

    Versions already listed stay listed (an entry with the same track and version replaces the older
    record of that version); the plate track is replaced by ``plate``. Tracks gvfx did not write are
    kept. The caller holds :func:`timeline_lock` when other processes may update the same file.
    """
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    timeline_dir = out.parent.resolve()
    tl = _read_existing(out) or otio.schema.Timeline(name=name)
    tl.name = name
    tl.metadata["gvfx"] = {**plain(tl.metadata.get("gvfx", {})), **metadata}
    first = plate.start_frame
    tl.global_start_time = otio.opentime.RationalTime(first, fps)

    plate_clip = _clip(plate, fps, "plate", timeline_dir)
    key = otio.schema.Clip.DEFAULT_MEDIA_KEY
    ptrack = _new_track("plate", "plate", fps, first, plate.start_frame, {key: plate_clip.media_reference.clone()},
                        key, plain(plate_clip.metadata["gvfx"]))
    i = _find_track(tl, "plate", "plate")
    if i is None:
        tl.tracks.insert(0, ptrack)
    else:
        tl.tracks[i] = ptrack

    for (kind, track_name) in dict.fromkeys((e.kind, e.track) for e in entries):
        i = _find_track(tl, kind, track_name)
        refs = _version_refs(_gvfx_clip(tl.tracks[i]) if i is not None else None)
        for e in entries:
            if (e.kind, e.track) != (kind, track_name):
                continue
            built = _clip(e.seq, fps, kind, timeline_dir)  # keep the clip alive while its reference is copied
            fresh = built.media_reference.clone()
            fresh.metadata["gvfx"] = {**e.seq.metadata, "version": e.version,
                                      "frame_range": [e.seq.start_frame, e.seq.end_frame]}
            refs[e.version] = fresh
        refs = dict(sorted(refs.items(), key=lambda kv: _version_number(kv[0])))
        active = _choose_active(refs)
        active_md = plain(refs[active].metadata["gvfx"])
        clip_meta = {**active_md, "kind": kind, "status": _ref_status(refs[active]), "active_version": active,
                     "versions": list(refs)}
        track = _new_track(track_name, kind, fps, first, refs[active].available_range.start_time.to_frames(),
                           refs, active, clip_meta)
        if i is not None:
            tl.tracks[i] = track
        elif kind == "element" and (ci := _find_track(tl, "comp", "comp")) is not None:
            tl.tracks.insert(ci, track)  # elements sit below the comp
        else:
            tl.tracks.append(track)
    _write_atomic(out, tl)
    log.info("updated timeline %s (%d versions merged)", out, len(entries))
    return out


def _seqref_of(name: str, ref: otio.schema.ImageSequenceReference, meta: dict) -> SeqRef:
    n = ref.number_of_images_in_sequence()
    return SeqRef(name, Path(ref.target_url_base), ref.name_prefix, ref.name_suffix, ref.start_frame,
                  ref.start_frame + max(n, 1) - 1, ref.frame_zero_padding, meta)


def timeline_versions(timeline: str | Path | otio.schema.Timeline) -> list[VersionEntry]:
    """Every version listed in a shot timeline, track by track, oldest first, with effective statuses.

    Relative sequence folders stay relative to the timeline's folder (see :func:`clip_frame_path`).
    """
    tl = timeline if isinstance(timeline, otio.schema.Timeline) else read_timeline(timeline)
    out: list[VersionEntry] = []
    for track in tl.tracks:
        kind = _track_kind(track)
        clip = _gvfx_clip(track)
        if kind not in ("element", "comp") or clip is None:
            continue
        for key, ref in _version_refs(clip).items():
            if not isinstance(ref, otio.schema.ImageSequenceReference):
                continue
            meta = plain(ref.metadata.get("gvfx", {}))
            out.append(VersionEntry(track.name, kind, key, _seqref_of(track.name, ref, meta), _ref_status(ref)))
    return sorted(out, key=lambda e: (e.kind, e.track, _version_number(e.version)))


def active_versions(timeline: str | Path | otio.schema.Timeline) -> dict[str, VersionEntry]:
    """Per element name (and ``comp``), the version its clip shows (``active_media_reference_key``)."""
    tl = timeline if isinstance(timeline, otio.schema.Timeline) else read_timeline(timeline)
    by_key = {(e.track, e.version): e for e in timeline_versions(tl)}
    out = {}
    for track in tl.tracks:
        clip = _gvfx_clip(track)
        if clip is not None and (track.name, clip.active_media_reference_key) in by_key:
            out[track.name] = by_key[(track.name, clip.active_media_reference_key)]
    return out
