"""The documented maxima (and minima) of a job, checked before any memory is allocated (docs/jobs.md).

Every check raises :class:`~gvfx.errors.InputError` (or the ``error`` class given) naming the field
and the limit, so a hostile or mistyped number ends in one line, never in a MemoryError or a traceback
from deep inside numpy.
"""

from __future__ import annotations

from gvfx.errors import InputError

#: frames in one job's range (about 70 minutes at 24 fps)
MAX_FRAMES = 100_000
#: largest absolute frame number (seven digits)
MAX_FRAME_NUMBER = 9_999_999
#: largest plate (and demo) side in pixels
MAX_SIDE_PX = 16_384
#: smallest plate side: gradients, grain patches and the placement need a few pixels each way
MIN_SIDE_PX = 8
#: motion-blur samples per frame of an element
MAX_MOTION_SAMPLES = 64
#: seeds are unsigned 32-bit numbers
MAX_SEED = 2**32 - 1
#: frames per second
MAX_FPS = 1000.0

__all__ = ["MAX_FRAMES", "MAX_FRAME_NUMBER", "MAX_SIDE_PX", "MIN_SIDE_PX", "MAX_MOTION_SAMPLES", "MAX_SEED",
           "MAX_FPS", "check_frame_range", "check_resolution"]


def check_frame_range(first: int, last: int, field: str, error: type[InputError] = InputError,
                      **where: object) -> None:
    """Refuse frame numbers past ``MAX_FRAME_NUMBER`` and ranges longer than ``MAX_FRAMES``."""
    for f in (first, last):
        if abs(f) > MAX_FRAME_NUMBER:
            raise error(f"{field}: frame {f} is past the limit of ±{MAX_FRAME_NUMBER}", **where)
    if last - first + 1 > MAX_FRAMES:
        raise error(f"{field}: {last - first + 1} frames is more than the limit of {MAX_FRAMES} per job",
                    hint="split the shot into several jobs", **where)


def check_resolution(width: int, height: int, field: str, error: type[InputError] = InputError,
                     **where: object) -> None:
    """Refuse images smaller than ``MIN_SIDE_PX`` or larger than ``MAX_SIDE_PX`` on a side."""
    if min(width, height) < MIN_SIDE_PX:
        raise error(f"{field}: {width}x{height} is smaller than the minimum of {MIN_SIDE_PX}x{MIN_SIDE_PX} pixels",
                    **where)
    if max(width, height) > MAX_SIDE_PX:
        raise error(f"{field}: {width}x{height} is larger than the limit of {MAX_SIDE_PX} pixels a side", **where)
