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
