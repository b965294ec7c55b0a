"""A first OpenTimelineIO timeline of a shot: the plate, each generated element, and the comp.

One video track per sequence, each holding one clip with an ``ImageSequenceReference`` (elements that
start after the plate are preceded by a gap, so the tracks line up in time). Each clip carries
``metadata["gvfx"]`` (engine, effect, seed, spec hash, status... plus ``frame_range``); the
timeline carries the shot's ``metadata["gvfx"]``.

Paths: a sequence folder inside the timeline file's folder is stored relative to it (POSIX, e.g.
``elements/fire``; ``.`` for the folder itself) so a shot folder can be moved as a whole; any other
folder is stored absolute. :func:`clip_frame_path` resolves either back to a file path.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import opentimelineio as otio

from gvfx.errors import GvfxError, InputError
from gvfx.sequence import parse_pattern

log = logging.getLogger(__name__)

__all__ = ["SeqRef", "write_timeline", "read_timeline", "clip_frame_path"]


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
    text = otio.adapters.write_to_string(tl, "otio_json")
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("wrote timeline %s (%d tracks)", out, len(tl.tracks))
    return out


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
