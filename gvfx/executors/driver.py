"""Render a job on an executor: the farm's shape on one command.

1. the sim step, once, here: ``render_job(job, sim_only=True)`` simulates every element into its cache,
   computes the match estimates and opens the new versions;
2. the frame chunks (``plan_chunks``), each ``render_job(job, frames=chunk, resume=True)`` in a worker
   of the executor, all writing into those versions;
3. a final ``render_job(job, resume=True)`` here, which finds every frame on disk, marks the versions
   complete and writes the shot's timeline once.

Chunk pixels are bitwise those of a single-process render. A failed chunk is reported with its frames
after every other chunk has finished; the same command with ``resume=True`` then renders only what is
missing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gvfx.executors.base import ChunkDone, ChunkFailedError, ChunkFn, ExecutorOptions, Progress
from gvfx.executors.chunks import DEFAULT_CHUNK_SIZE, plan_chunks

if TYPE_CHECKING:
    from gvfx.job import Job
    from gvfx.render import RenderResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutorRun:
    """What ``render_with_executor`` did: the final render result, the chunks and the wall times."""

    result: "RenderResult"
    executor: str
    chunks: tuple[ChunkDone, ...]
    sim_seconds: float
    chunks_seconds: float
    finalize_seconds: float

    @property
    def frames_per_second(self) -> float:
        """Throughput of the chunk phase (the part that scales with workers)."""
        n = sum(c.chunk[1] - c.chunk[0] + 1 for c in self.chunks)
        return n / self.chunks_seconds if self.chunks_seconds > 0 else 0.0


def render_with_executor(job: "Job", executor: str = "local", *, options: ExecutorOptions | None = None,
                         frames: tuple[int, int] | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                         resume: bool = False, progress: Progress | None = None,
                         chunk_fn: ChunkFn | None = None) -> ExecutorRun:
    """Sim once here, render ``frames`` (default: all) in chunks of ``chunk_size`` on ``executor``
    (``local`` or ``ray``), then finalise; see the module doc. Raises ``ChunkFailedError`` naming the
    frames of every chunk that failed (after the executor's retries)."""
    from gvfx.executors import get_executor
    from gvfx.render import render_job

    options = options or ExecutorOptions()
    ex = get_executor(executor)  # an unknown name fails before any work
    prog = progress or (lambda stage, done, total: None)
    if frames is not None:  # fail on a bad chunk size before the sim, too
        plan_chunks(frames[0], frames[1], chunk_size)
    ex.preflight(options)

    t0 = time.perf_counter()
    opened = render_job(job, frames=frames, resume=resume, progress=prog, sim_only=True, write_timeline_file=False)
    first, last = frames or (opened.plate.frames[0], opened.plate.frames[-1])
    chunks = plan_chunks(first, last, chunk_size)
    t1 = time.perf_counter()
    log.info("sim step done in %.1fs; %d chunks of up to %d frames on %s", t1 - t0, len(chunks), chunk_size, executor)

    done, failed = ex.run_chunks(job, chunks, options=options, progress=prog, chunk_fn=chunk_fn)
    t2 = time.perf_counter()
    if failed:
        raise ChunkFailedError(sorted(failed, key=lambda f: f.chunk), len(chunks),
                               str(job.source) if job.source else None)

    result = render_job(job, frames=frames, resume=True, progress=prog)
    t3 = time.perf_counter()
    return ExecutorRun(result, executor, tuple(sorted(done, key=lambda d: d.chunk)), t1 - t0, t2 - t1, t3 - t2)
