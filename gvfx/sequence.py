"""Frame sequences on disk: parse frame patterns, format frame paths, discover frames and holes.

Accepted frame tokens (in the file name only, the last one wins): ``####`` and ``@@@@`` (padding = number
of characters), ``%04d`` / ``%d``, Houdini ``$F4`` / ``$F``. ``%d`` and ``$F`` mean "no padding"
(padding 1). A path with no token is a literal file: a still, i.e. a one-frame sequence.

Decisions (documented in docs/probe.md as well):
- Frame numbers are formatted printf-style: ``f"{frame:0{padding}d}"``. So with ``####`` frame 7 is
  ``0007``, frame 10000 is ``10000`` (wider than the padding, never truncated) and frame -1 is ``-001``
  (the sign counts in the width, as in Nuke and ``%04d``).
- On disk a file belongs to a pattern only if its number is written exactly that way (``0007`` matches
  ``####`` but ``007`` and ``00007`` do not), so ``name.####.exr`` and ``name.%d.exr`` sequences in the
  same folder stay apart.
- ``discover("name.1001.exr")`` on an existing literal file returns a still (``is_still``), with
  ``frames == (1001,)``: the user named one file. :func:`sequence_around` offers the sequence the file
  belongs to (``name.####.exr``) when a caller wants it.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from gvfx.errors import SequenceError

log = logging.getLogger(__name__)

__all__ = ["FramePattern", "FrameSequence", "parse_pattern", "frame_path", "format_frame",
           "discover", "sequence_around"]

# One token per alternative; the last token in the file name is the frame token.
_TOKEN_RE = re.compile(r"(?P<hash>#+)|(?P<at>@+)|%(?P<pct>0?\d*)d|\$F(?P<hou>\d*)")
# A literal numbered file: name.1001.exr, name_-12.exr, name1001.exr (digits right before the extension).
_LITERAL_RE = re.compile(r"^(?P<stem>.*?[._-]?)(?P<num>-?\d+)(?P<ext>\.[A-Za-z0-9]+)$")


@dataclass(frozen=True)
class FramePattern:
    """A parsed frame pattern: ``prefix + frame formatted to padding + suffix``.

    ``padding == 0`` means a literal path with no frame token (a still). The prefix includes the folder.
    """

    prefix: str
    padding: int
    suffix: str

    @property
    def is_still(self) -> bool:
        return self.padding == 0

    @property
    def normalised(self) -> str:
        """The pattern written with ``#`` (``/dir/name.####.exr``); the literal path for a still."""
        return self.prefix + "#" * self.padding + self.suffix

    def format(self, frame: int) -> str:
        """The path of ``frame`` (a still ignores the frame)."""
        if self.is_still:
            return self.prefix + self.suffix
        return self.prefix + format_frame(frame, self.padding) + self.suffix


def format_frame(frame: int, padding: int) -> str:
    """Frame number as written in file names: printf ``%0{padding}d`` (sign counts in the width)."""
    return f"{int(frame):0{max(padding, 1)}d}"


def parse_pattern(pattern: str | Path) -> FramePattern:
    """Split a frame pattern into prefix, padding and suffix; a path with no token is a still (padding 0)."""
    s = str(pattern)
    head, name = os.path.split(s)
    head = head + os.sep if head else ""
    matches = list(_TOKEN_RE.finditer(name))
    if not matches:
        return FramePattern(prefix=s, padding=0, suffix="")
    m = matches[-1]
    if m.group("hash") is not None:
        padding = len(m.group("hash"))
    elif m.group("at") is not None:
        padding = len(m.group("at"))
    elif m.group("pct") is not None:
        digits = m.group("pct").lstrip("0")
        padding = int(digits) if digits else 1
    else:
        digits = m.group("hou")
        padding = int(digits) if digits else 1
    if padding < 1:
        padding = 1
    return FramePattern(prefix=head + name[:m.start()], padding=padding, suffix=name[m.end():])


def frame_path(pattern: str | Path, frame: int) -> Path:
    """The file path of ``frame`` for ``pattern`` (any accepted token style)."""
    return Path(parse_pattern(pattern).format(frame))


@dataclass(frozen=True)
class FrameSequence:
    """Frames of one pattern found on disk.

    ``pattern`` is absolute and normalised to ``#`` tokens (or the literal path of a still);
    ``frames`` are sorted and unique.
    """

    pattern: str
    frames: tuple[int, ...]
    padding: int

    def path(self, frame: int) -> Path:
        """The file of ``frame`` (for a still: the file, whatever the frame)."""
        return Path(parse_pattern(self.pattern).format(frame))

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    @property
    def missing(self) -> tuple[int, ...]:
        """Frames between first and last with no file (holes)."""
        have = set(self.frames)
        return tuple(f for f in range(self.first, self.last + 1) if f not in have)

    @property
    def is_still(self) -> bool:
        return self.padding == 0

    def __len__(self) -> int:
        return len(self.frames)


def _frames_on_disk(fp: FramePattern) -> list[int]:
    folder, name_prefix = os.path.split(fp.prefix)
    folder = folder or "."
    if not os.path.isdir(folder):
        raise SequenceError(f"folder {folder} does not exist", path=fp.normalised,
                            hint="check the plate path")
    rx = re.compile(re.escape(name_prefix) + r"(-?\d+)" + re.escape(fp.suffix) + r"\Z")
    frames = []
    with os.scandir(folder) as it:
        for entry in it:
            m = rx.match(entry.name)
            if m is None:
                continue
            token = m.group(1)
            frame = int(token)
            if format_frame(frame, fp.padding) != token:
                continue  # same prefix, other padding: another sequence
            if entry.is_file():
                frames.append(frame)
    return sorted(set(frames))


def discover(pattern: str | Path) -> FrameSequence:
    """Find the frames of ``pattern`` on disk; a literal existing file is a still.

    Raises SequenceError when nothing matches (naming the pattern and folder).
    """
    fp = parse_pattern(os.path.abspath(os.path.expanduser(str(pattern))))
    if fp.is_still:
        path = fp.prefix
        if os.path.isfile(path):
            m = _LITERAL_RE.match(os.path.basename(path))
            frame = int(m.group("num")) if m else 0
            return FrameSequence(pattern=path, frames=(frame,), padding=0)
        if os.path.isdir(path):
            raise SequenceError("is a folder, not an image or a frame pattern", path=path,
                                hint="give a file or a pattern such as name.####.exr")
        raise SequenceError("no such file", path=path,
                            hint="check the path, or give a frame pattern such as name.####.exr")
    frames = _frames_on_disk(fp)
    if not frames:
        folder = os.path.dirname(fp.prefix) or "."
        raise SequenceError(f"no frames match in folder {folder}", path=fp.normalised,
                            hint="check the name and the padding (#### = 4 digits)")
    return FrameSequence(pattern=fp.normalised, frames=tuple(frames), padding=fp.padding)


def sequence_around(path: str | Path) -> FrameSequence | None:
    """The sequence a literal numbered file (``name.1001.exr``) belongs to, or None if it is not one."""
    p = os.path.abspath(str(path))
    m = _LITERAL_RE.match(os.path.basename(p))
    if m is None:
        return None
    token = m.group("num")
    digits = len(token.lstrip("-"))
    padding = len(token) if token.startswith("-") or digits == len(token) else digits
    fp = FramePattern(prefix=os.path.join(os.path.dirname(p), m.group("stem")), padding=padding,
                      suffix=m.group("ext"))
    if format_frame(int(token), padding) != token:
        return None
    try:
        frames = _frames_on_disk(fp)
    except SequenceError:
        return None
    if int(token) not in frames:
        return None
    return FrameSequence(pattern=fp.normalised, frames=tuple(frames), padding=padding)


def ranges_text(frames: list[int]) -> str:
    """Frames as ranges for messages and reports: [1, 2, 3, 7] -> '1-3, 7'."""
    out: list[str] = []
    start = prev = None
    for f in sorted(frames):
        if start is None:
            start = prev = f
        elif f == prev + 1:
            prev = f
        else:
            out.append(f"{start}-{prev}" if start != prev else f"{start}")
            start = prev = f
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ", ".join(out)
