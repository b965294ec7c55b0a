"""EXR sequences: :func:`read_sequence` streams frames with a bounded read-ahead, :class:`SequenceWriter` /
:func:`write_sequence` write frames through a small thread pool (conventions of each frame: :mod:`gvfx.exr`).
"""

from __future__ import annotations

import itertools
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from gvfx.errors import InputError
from gvfx.exr import ExrImage, read_exr, write_exr, write_layers
from gvfx.sequence import FrameSequence, parse_pattern

__all__ = ["read_sequence", "SequenceWriter", "write_sequence"]


def read_sequence(seq: FrameSequence, frames: Iterable[int] | None = None, *, threads: int = 2,
                  **read_kw: Any) -> Iterator[tuple[int, ExrImage]]:
    """Yield ``(frame, ExrImage)`` in order, reading ahead at most ``threads`` frames (memory stays flat).

    ``read_kw`` goes to :func:`read_exr` (``view``, ``channels``). A missing or bad frame raises
    ImageReadError naming it when its turn comes.
    """
    wanted = list(seq.frames if frames is None else frames)
    if threads <= 1:
        for f in wanted:
            yield f, read_exr(seq.path(f), frame=f, **read_kw)
        return
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gvfx-read")
    pending: deque[tuple[int, Future]] = deque()
    it = iter(wanted)
    try:
        for f in itertools.islice(it, threads):
            pending.append((f, pool.submit(read_exr, seq.path(f), frame=f, **read_kw)))
        while pending:
            f, fut = pending.popleft()
            img = fut.result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(read_exr, seq.path(nxt), frame=nxt, **read_kw)))
            yield f, img
    finally:
        for _, fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


class SequenceWriter:
    """Write frames of a pattern through a small thread pool (OIIO releases the GIL while encoding).

    At most ``max_pending`` frames are queued (memory stays flat); :meth:`close` (or leaving the
    ``with`` block) waits for all frames and raises the first ImageWriteError. ``write_kw`` goes to
    :func:`write_layers` / :func:`write_exr` for every frame.
    """

    def __init__(self, pattern: str | Path, *, threads: int = 2, max_pending: int | None = None,
                 **write_kw: Any) -> None:
        self.pattern = parse_pattern(str(pattern))
        if self.pattern.is_still:
            raise InputError("output pattern has no frame token", path=str(pattern),
                             hint="use a pattern such as name.####.exr")
        self._kw = write_kw
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="gvfx-write")
        self._pending: deque[Future] = deque()
        self._max_pending = max_pending or max(2, 2 * threads)
        self.written: list[Path] = []

    def path(self, frame: int) -> Path:
        return Path(self.pattern.format(frame))

    def write(self, frame: int, channels: dict[str, np.ndarray] | None = None, *,
              rgba: np.ndarray | None = None, z: np.ndarray | None = None,
              layers: dict[str, np.ndarray] | None = None, **kw: Any) -> None:
        """Queue one frame: plain ``channels`` or ``rgba``/``z``/``layers`` as in :func:`write_layers`."""
        while len(self._pending) >= self._max_pending:
            self._collect(self._pending.popleft())
        args = {**self._kw, **kw, "frame": frame}
        target = self.path(frame)
        if channels is not None:
            fut = self._pool.submit(write_exr, target, channels, **args)
        else:
            fut = self._pool.submit(write_layers, target, rgba=rgba, z=z, layers=layers, **args)
        self._pending.append(fut)

    def _collect(self, fut: Future) -> None:
        self.written.append(fut.result())

    def close(self) -> list[Path]:
        """Wait for every queued frame; raise the first error; return the written paths."""
        try:
            while self._pending:
                self._collect(self._pending.popleft())
        finally:
            for fut in self._pending:
                fut.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
        return self.written

    def __enter__(self) -> "SequenceWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            for fut in self._pending:
                fut.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)


def write_sequence(pattern: str | Path, frames: Iterable[tuple[int, dict[str, np.ndarray]]], *,
                   threads: int = 2, **write_kw: Any) -> list[Path]:
    """Write ``(frame, channels)`` pairs to ``pattern`` through :class:`SequenceWriter`."""
    with SequenceWriter(pattern, threads=threads, **write_kw) as writer:
        for frame, chans in frames:
            writer.write(frame, chans)
    return writer.written
