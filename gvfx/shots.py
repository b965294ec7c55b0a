"""Editorial in: an edit (OTIO, or an EDL / other format an installed OTIO adapter reads) to job files.

``gvfx shots cut.edl -o shots/ --handles 8`` makes one shot folder per clip of the edit's video
tracks, ``shots/NAME/NAME.yaml``, a job file whose shot root is that folder (``output: .``):

- the shot's name is the clip's name, made safe for files (letters, digits, ``_``, ``-``); a name used
  twice gets ``_2``, ``_3``... with a warning;
- the plate comes from the clip's media reference: an ``ImageSequenceReference`` gives its frame
  pattern (``name.####.exr``) and real frame numbers (the clip's source range, plus handles, clamped to
  the available frames); an ``ExternalReference`` gives its path; a ``MissingReference`` (what EDLs
  give) uses ``--plate-template`` (``{name}`` is the shot name; relative to the shot folder), or, with
  no template, the job is written with a placeholder path and a warning naming the clip;
- without real frame numbers, the shot's frames start at ``--start-frame`` (1001) *including* the
  handles: the cut-in is ``start + handles``;
- one placeholder element (``--effect``, default smoke) so the job validates; edit it before rendering.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import opentimelineio as otio
import yaml

from gvfx.errors import InputError

__all__ = ["ShotClip", "read_edit", "shots_from_timeline", "job_dict", "job_yaml", "write_jobs"]

log = logging.getLogger(__name__)

PLACEHOLDER_PLATE = "plates/{name}/{name}.####.exr"


@dataclass(frozen=True)
class ShotClip:
    """One shot of an edit: frames include the handles; ``plate`` is a pattern or file (None: unknown)."""

    name: str
    clip_name: str
    first_frame: int
    last_frame: int
    cut_in: int
    cut_out: int
    fps: float
    plate: str | None
    source: str  # the media reference kind: sequence, external, missing
    record_in: str = ""  # the clip's place in the edit, as timecode
    warnings: tuple[str, ...] = field(default=())


def read_edit(path: str | Path, *, rate: float = 24.0) -> otio.schema.Timeline:
    """Read an edit with OpenTimelineIO (``.otio`` or any installed adapter; EDLs at ``rate`` fps)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("edit file not found", path=p)
    kwargs: dict[str, Any] = {"rate": rate} if p.suffix.lower() == ".edl" else {}
    try:
        result = otio.adapters.read_from_file(str(p), **kwargs)
    except otio.exceptions.NoKnownAdapterForExtensionError:
        raise InputError(f"no OpenTimelineIO adapter reads {p.suffix or 'this file'}", path=p,
                         hint="install one (pip install otio-cmx3600-adapter for .edl)") from None
    except Exception as exc:  # adapters raise many types; EDL timecodes past the rate raise ValueError
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = f"check --rate ({rate:g} fps) against the EDL's timecodes" if "rate" in kwargs else None
        raise InputError(f"cannot read the edit: {msg}", path=p, hint=hint) from None
    if isinstance(result, otio.schema.SerializableCollection):
        timelines = [t for t in result.find_children(descended_from_type=otio.schema.Timeline, shallow_search=True)]
        if not timelines:
            raise InputError("the file holds no timeline", path=p)
        result = timelines[0]
    if not isinstance(result, otio.schema.Timeline):
        raise InputError(f"the file holds a {type(result).__name__}, not a timeline", path=p)
    return result


def _safe_name(name: str, index: int) -> str:
    stem = re.sub(r"\.(mov|mp4|mxf|exr|dpx|r3d|ari)$", "", name.strip(), flags=re.I)
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")
    if not safe or not safe[0].isalpha():
        safe = f"shot{index:03d}" + (f"_{safe}" if safe else "")
    return safe


def _url_path(url: str, base: Path) -> str:
    """A media URL (``file://`` or a path) as a file path; relative paths against the edit's folder."""
    parsed = urlparse(url)
    text = unquote(parsed.path) if parsed.scheme == "file" else url
    p = Path(text)
    return str(p if p.is_absolute() else (base / p))


def _sequence_plate(clip: otio.schema.Clip, ref: otio.schema.ImageSequenceReference, handles: int,
                    base: Path) -> tuple[str, int, int, int, int, list[str]]:
    sr = clip.trimmed_range()
    cut_in = ref.frame_for_time(sr.start_time)
    cut_out = ref.frame_for_time(sr.end_time_inclusive())
    first_avail, last_avail = ref.start_frame, ref.end_frame()
    first, last = max(cut_in - handles, first_avail), min(cut_out + handles, last_avail)
    warnings = []
    if (first, last) != (cut_in - handles, cut_out + handles):
        warnings.append(f"clip {clip.name!r}: only {cut_in - first} / {last - cut_out} handle frames are "
                        f"available (media {first_avail}-{last_avail})")
    pattern = ref.abstract_target_url("#" * max(1, ref.frame_zero_padding))
    return _url_path(pattern, base), first, last, cut_in, cut_out, warnings


def shots_from_timeline(tl: otio.schema.Timeline, *, handles: int = 0, plate_template: str | None = None,
                        start_frame: int = 1001, base_dir: str | Path = ".") -> list[ShotClip]:
    """One ShotClip per clip of the timeline's video tracks (in track order, then time order).

    ``base_dir`` resolves relative media paths (the edit file's folder).
    """
    if handles < 0:
        raise InputError(f"--handles must be 0 or more, got {handles}")
    base = Path(base_dir)
    shots: list[ShotClip] = []
    used: dict[str, int] = {}
    for track in tl.video_tracks():
        for clip in track.find_clips():
            try:
                shot = _shot_of(clip, len(shots) + 1, used, handles=handles, plate_template=plate_template,
                                start_frame=start_frame, base=base)
            except Exception as exc:  # noqa: BLE001 - OTIO raises many types; one warning per clip, never a traceback
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning("clip %r cannot be placed (%s): skipped", clip.name, msg)
                continue
            shots.append(shot)
    return shots


def _neighbours(clip: otio.schema.Clip) -> tuple[Any, Any]:
    """The items before and after ``clip`` in its parent (None at the ends)."""
    parent = clip.parent()
    if parent is None:
        return None, None
    items = list(parent)
    i = next(k for k, it in enumerate(items) if it is clip)
    return (items[i - 1] if i > 0 else None), (items[i + 1] if i + 1 < len(items) else None)


def _transition_frames(clip: otio.schema.Clip) -> tuple[int, int]:
    """Frames a dissolve needs of ``clip`` beyond its own source range: before its head (the incoming
    side of the transition before it) and after its tail (the outgoing side of the one after it)."""
    before, after = _neighbours(clip)
    head = int(round(before.in_offset.to_frames())) if isinstance(before, otio.schema.Transition) else 0
    tail = int(round(after.out_offset.to_frames())) if isinstance(after, otio.schema.Transition) else 0
    return max(0, head), max(0, tail)


def _speed(clip: otio.schema.Clip) -> float | None:
    """The clip's speed (a LinearTimeWarp's time scalar; 0 for a freeze frame), None when it has none."""
    speed = None
    for e in clip.effects:
        if isinstance(e, otio.schema.FreezeFrame):
            return 0.0
        if isinstance(e, otio.schema.LinearTimeWarp):
            speed = (speed or 1.0) * float(e.time_scalar)
    return speed


def _record_in(clip: otio.schema.Clip) -> str:
    """The clip's record-in timecode: OTIO's range in its parent, or (when OTIO cannot trim it: EDL
    tracks whose own source range starts at the record timecode) the child range offset by the
    track's start."""
    try:
        rec = clip.trimmed_range_in_parent()
        start = rec.start_time if rec else None
    except Exception:  # noqa: BLE001 - "computed time range would be invalid"
        parent = clip.parent()
        start = parent.range_of_child(clip).start_time
        if parent.source_range is not None:
            start = start - parent.source_range.start_time
    if start is None:
        return ""
    return otio.opentime.to_timecode(start, start.rate)


def _shot_of(clip: otio.schema.Clip, index: int, used: dict[str, int], *, handles: int,
             plate_template: str | None, start_frame: int, base: Path) -> ShotClip:
    """One clip as a ShotClip: frames from its own source range, its speed and its transitions."""
    dur = clip.trimmed_range().duration
    fps = float(dur.rate)
    n = int(round(dur.to_frames()))
    name = _safe_name(clip.name or "", index)
    warnings: list[str] = []
    if name in used:
        used[name] += 1
        new = f"{name}_{used[name]}"
        warnings.append(f"clip {clip.name!r} appears more than once in the edit: this one is {new}")
        name = new
    else:
        used[name] = 1
    speed = _speed(clip)
    if speed is not None and speed != 1.0:
        src = 1 if speed == 0 else max(1, int(math.ceil(n * abs(speed))))
        warnings.append(f"clip {clip.name!r} plays at {speed * 100:g}% speed"
                        + (" (a freeze frame)" if speed == 0 else "")
                        + f": the plate covers the {src} source frame(s) it uses; retime the element to match")
        n = src
    head, tail = _transition_frames(clip)
    if head or tail:
        warnings.append(f"clip {clip.name!r} is in a transition: {head} frame(s) before the cut-in and {tail} "
                        "after the cut-out are part of the plate")
    ref = clip.media_reference
    first, last = start_frame, start_frame + head + n + tail - 1 + 2 * handles
    cut_in, cut_out = start_frame + handles + head, start_frame + handles + head + n - 1
    if isinstance(ref, otio.schema.ImageSequenceReference):
        plate, first, last, cut_in, cut_out, w = _sequence_plate(clip, ref, handles + max(head, tail), base)
        warnings += w
        source = "sequence"
    elif isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
        plate, source = _url_path(ref.target_url, base), "external"
        if not re.search(r"\.exr$", plate, re.I):
            warnings.append(f"clip {clip.name!r}: media {plate} is not an EXR plate; convert it to an "
                            "ACEScg EXR sequence and fix plate.path")
    else:
        source = "missing"
        plate = plate_template.format(name=name, clip=clip.name) if plate_template else None
        if plate is None:
            warnings.append(f"clip {clip.name!r} has no media path (usual for EDLs): give "
                            f"--plate-template, or set plate.path in the job")
    rec_tc = _record_in(clip)
    for w in warnings:
        log.warning("%s", w)
    return ShotClip(name, clip.name, first, last, cut_in, cut_out, fps, plate, source, rec_tc, tuple(warnings))


def job_dict(shot: ShotClip, *, effect: str = "smoke") -> dict[str, Any]:
    """A job mapping for a shot (its folder is the shot root, ``output: .``)."""
    return {
        "version": 1,
        "name": shot.name,
        "plate": {"path": shot.plate or PLACEHOLDER_PLATE.format(name=shot.name),
                  "frames": f"{shot.first_frame}-{shot.last_frame}", "colorspace": "ACEScg"},
        "depth": {"layer": "Z", "convention": "z"},
        "output": ".",
        "fps": shot.fps,
        "elements": [{"name": effect, "effect": effect, "seed": 1}],
    }


def job_yaml(shot: ShotClip, *, effect: str = "smoke", edit: str | Path | None = None) -> str:
    """The job file text, with a header saying where the shot came from."""
    head = [f"# gvfx shots: clip {shot.clip_name!r}" + (f" of {edit}" if edit else ""),
            f"# cut {shot.cut_in}-{shot.cut_out}, with handles {shot.first_frame}-{shot.last_frame}"
            + (f", record in {shot.record_in}" if shot.record_in else "") + f", plate from a {shot.source} reference"]
    head += [f"# WARNING: {w}" for w in shot.warnings]
    head.append("# edit the element below (gvfx effects lists them) before `gvfx render`")
    return "\n".join(head) + "\n" + yaml.safe_dump(job_dict(shot, effect=effect), sort_keys=False)


def write_jobs(shots: list[ShotClip], out_dir: str | Path, *, effect: str = "smoke",
               edit: str | Path | None = None) -> list[Path]:
    """Write ``out_dir/NAME/NAME.yaml`` per shot (never overwriting an existing job file: ``.new.yaml``)."""
    out = Path(out_dir)
    written = []
    for shot in shots:
        folder = out / shot.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{shot.name}.yaml"
        if path.exists():
            path = folder / f"{shot.name}.new.yaml"
            log.warning("%s exists: wrote %s instead", folder / f"{shot.name}.yaml", path.name)
        path.write_text(job_yaml(shot, effect=effect, edit=edit))
        written.append(path)
    return written
