"""Split a frame range into chunks: contiguous runs of frames that render independently once the
sim caches exist (``render_job(job, sim_only=True)`` first; every chunk is then
``render_job(job, frames=chunk, resume=True)``, bitwise equal to the same frames of a full render)."""

from __future__ import annotations

from gvfx.errors import InputError

#: frames per chunk when nothing is asked for: small enough to spread 2-8 workers over a 48-frame shot,
#: large enough that each chunk's start-up (loading the caches, the match estimates) is paid rarely
DEFAULT_CHUNK_SIZE = 8


def plan_chunks(first: int, last: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[tuple[int, int]]:
    """Inclusive ``(a, b)`` chunks covering ``first..last`` in order, each ``chunk_size`` frames but the
    last (which may be shorter). ``plan_chunks(1001, 1010, 4) == [(1001, 1004), (1005, 1008), (1009, 1010)]``.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InputError(f"chunk size {chunk_size!r} must be a whole number of frames >= 1",
                         hint="e.g. --chunk-size 8")
    if last < first:
        raise InputError(f"frame range {first}-{last}: the last frame is before the first")
    return [(a, min(a + chunk_size - 1, last)) for a in range(first, last + 1, chunk_size)]


def chunk_label(chunk: tuple[int, int]) -> str:
    """``(1001, 1008) -> "1001-1008"``: the form ``gvfx render --frames`` takes."""
    return f"{chunk[0]}-{chunk[1]}"
