"""The local executor: chunks rendered by N worker processes on this machine
(``concurrent.futures.ProcessPoolExecutor``, spawned, one thread each). The baseline the Ray executor
is measured against, not a scheduler: no retries, no other machines."""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING

from gvfx.executors.base import (THREAD_ENV_VARS, Chunk, ChunkDone, ChunkFailure, ChunkFn, ExecutorOptions,
                                 Progress, error_line, limit_threads, render_chunk)

if TYPE_CHECKING:
    from gvfx.job import Job

log = logging.getLogger(__name__)


def _init_worker(threads: int) -> None:
    """Runs first in every worker, before the job (and numpy/torch with it) is unpickled."""
    import os

    for var in THREAD_ENV_VARS:
        os.environ[var] = str(threads)
    limit_threads(threads)


class LocalExecutor:
    """``options.workers`` processes (default: every core); a chunk that fails is reported, not retried."""

    name = "local"

    def preflight(self, options: ExecutorOptions) -> None:
        """Nothing can be missing: the standard library runs the workers."""

    def run_chunks(self, job: "Job", chunks: list[Chunk], *, options: ExecutorOptions, progress: Progress,
                   chunk_fn: ChunkFn | None = None) -> tuple[list[ChunkDone], list[ChunkFailure]]:
        fn = chunk_fn or render_chunk
        workers = min(options.worker_count(), max(1, len(chunks)))
        total_frames = sum(b - a + 1 for a, b in chunks)
        done: list[ChunkDone] = []
        failed: list[ChunkFailure] = []
        frames_done = 0
        stage = f"render chunks (local x{workers})"
        progress(stage, 0, total_frames)
        # spawn, not fork: the driver has torch's thread pools running after the sim step, and a forked
        # child inherits them in a broken state
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(options.threads_per_worker,)) as pool:
            pending = {pool.submit(fn, job, c): c for c in chunks}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    chunk = pending.pop(fut)
                    try:
                        done.append(fut.result())
                    except Exception as exc:  # reported with its frames by the driver
                        log.warning("chunk %d-%d failed: %s", chunk[0], chunk[1], error_line(exc))
                        failed.append(ChunkFailure(chunk, error_line(exc)))
                    frames_done += chunk[1] - chunk[0] + 1
                    progress(stage, frames_done, total_frames)
        return done, failed
