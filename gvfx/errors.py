"""One exception hierarchy for gvfx: library code raises these, the CLI prints one clear line.

Every message names the file (and frame when there is one) and says what to do.
"""

from __future__ import annotations

from pathlib import Path


class GvfxError(Exception):
    """Base of every error gvfx raises on purpose."""

    def __init__(self, message: str, *, path: str | Path | None = None, frame: int | None = None,
                 hint: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.frame = frame
        self.hint = hint
        parts = []
        if self.path:
            parts.append(f"{self.path}" + (f" (frame {frame})" if frame is not None else ""))
        elif frame is not None:
            parts.append(f"frame {frame}")
        parts.append(message)
        text = ": ".join(parts)
        if hint:
            text += f" — {hint}"
        super().__init__(text)
        self.message = message


class InputError(GvfxError):
    """Bad user input: a path, a pattern, a parameter."""


class SequenceError(InputError):
    """A frame pattern matches nothing, or a frame is missing."""


class ImageReadError(InputError):
    """An image file cannot be read: missing, unreadable, corrupt or truncated."""


class ImageWriteError(GvfxError):
    """An image could not be written."""


class LayerError(InputError):
    """An unknown layer, channel or view was asked for."""


class ResolutionMismatchError(InputError):
    """Two images that must align (plate and depth) have different sizes."""


class ColorError(InputError):
    """An unknown colour space or a broken OCIO config."""


class CameraError(InputError):
    """A camera file or camera parameters are unusable."""


class DepthError(InputError):
    """A depth convention or depth values are unusable."""


class JobError(InputError):
    """A job file field is missing or wrong; the message names the field."""


class EngineError(GvfxError):
    """An engine or effect is unknown, or failed."""


class PlacementError(InputError):
    """An element cannot be placed: outside the frame, or on sky with no depth."""


class CancelledError(GvfxError):
    """Work was cancelled by the user."""


class AnalyzeError(InputError):
    """The camera cannot be solved from the plate (too few frames or features, no parallax, a failed solve)."""


class OutputError(GvfxError):
    """An output file or folder cannot be written: the disk is full, read-only, or not ours to write."""


def output_error(exc: OSError, what: str, path: str | Path | None = None) -> OutputError:
    """One clear line for an OSError while writing ``what`` at ``path``: the path and the errno's meaning
    (``No space left on device``, ``Read-only file system``, ``Permission denied``...)."""
    import errno as _errno
    import os as _os

    meaning = _os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
    code = _errno.errorcode.get(exc.errno or 0)
    hints = {_errno.ENOSPC: "free disk space, then render again (nothing written before was changed)",
             _errno.EDQUOT: "free space in your quota, then render again",
             _errno.EROFS: "write to a writable output folder (output: in the job)",
             _errno.EACCES: "check the folder's permissions, or choose another output folder",
             _errno.EPERM: "check the folder's permissions, or choose another output folder"}
    return OutputError(f"cannot write {what}: {meaning}" + (f" ({code})" if code else ""),
                       path=path if path is not None else exc.filename, hint=hints.get(exc.errno or 0))
