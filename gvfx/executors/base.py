"""What every executor shares: its options, the outcome of a chunk, the error for failed chunks, and
the worker-side function that renders one chunk (``render_chunk``) with one thread per worker."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from gvfx.errors import GvfxError, InputError

if TYPE_CHECKING:  # heavy imports stay out of `gvfx --help`
    from gvfx.job import Job

log = logging.getLogger(__name__)

Chunk = tuple[int, int]
#: progress(stage, done, total), the same shape as gvfx.render.StageProgress
Progress = Callable[[str, int, int], None]
#: chunk_fn(job, chunk) -> ChunkDone, run in a worker process; ``render_chunk`` unless a test swaps it
ChunkFn = Callable[["Job", Chunk], "ChunkDone"]

#: environment variables that size the thread pools of OpenMP (torch), MKL and OpenBLAS (numpy)
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class ExecutorOptions:
    """How to run the chunks.

    workers: processes (local) or CPUs of a local Ray instance; None = every core.
    address: an existing Ray cluster (``ray.init(address=...)``, e.g. ``auto`` or ``ray://head:10001``).
    max_retries: Ray re-runs a chunk whose worker died or raised this many times before reporting it.
    mode: Ray only: ``tasks`` (stateless), ``actors`` (a pool that keeps loaded engines/models between
        chunks) or ``auto`` (actors when an engine ``wants_gpu`` or ``keeps_model``).
    threads_per_worker: threads each worker may use (torch, OpenMP, OIIO); 1 so N workers fill N cores.
    """

    workers: int | None = None
    address: str | None = None
    max_retries: int = 2
    mode: str = "auto"
    threads_per_worker: int = 1

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers {self.workers}: must be at least 1")
        if self.max_retries < 0:
            raise InputError(f"max_retries {self.max_retries}: must be 0 or more")
        if self.mode not in ("auto", "tasks", "actors"):
            raise InputError(f"executor mode {self.mode!r} is not one of auto, tasks, actors")
        if self.threads_per_worker < 1:
            raise InputError(f"threads_per_worker {self.threads_per_worker}: must be at least 1")

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


@dataclass(frozen=True)
class ChunkDone:
    """A chunk rendered by a worker: its frames, wall and CPU time (every thread of the worker) and
    where it ran. CPU below wall time means the worker waited (I/O, or a machine shared with others)."""

    chunk: Chunk
    seconds: float
    host: str
    pid: int
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class ChunkFailure:
    """A chunk that still failed after its retries: its frames and the error's last line."""

    chunk: Chunk
    error: str

    def describe(self) -> str:
        return f"frames {self.chunk[0]}-{self.chunk[1]}: {self.error}"


class ChunkFailedError(GvfxError):
    """One or more chunks failed (after retries); the frames that were written stay on disk."""

    def __init__(self, failures: list[ChunkFailure], total: int, job_path: str | None = None) -> None:
        self.failures = list(failures)
        detail = "; ".join(f.describe() for f in self.failures)
        super().__init__(f"{len(self.failures)} of {total} chunks failed: {detail}", path=job_path,
                         hint="fix the cause, then run the same command with --resume to render only what is missing")


class Executor(Protocol):
    """Runs chunks of a job whose sim caches and versions already exist; registered by name."""

    name: str

    def preflight(self, options: ExecutorOptions) -> None:
        """Fail fast (before the sim step) when the executor cannot run: missing package, bad address."""
        ...

    def run_chunks(self, job: "Job", chunks: list[Chunk], *, options: ExecutorOptions, progress: Progress,
                   chunk_fn: ChunkFn | None = None) -> tuple[list[ChunkDone], list[ChunkFailure]]:
        """Render every chunk (``chunk_fn``, default ``render_chunk``) and return what finished and what
        failed; never raises for a failed chunk (the driver reports them all at once)."""
        ...


class ChunkError(Exception):
    """Raised in a worker for a chunk that failed: names the chunk, so results gathered in any order
    still say which frames failed. ``message`` is the original error's one line."""

    def __init__(self, chunk: Chunk, message: str) -> None:
        super().__init__(tuple(chunk), message)
        self.chunk: Chunk = (int(chunk[0]), int(chunk[1]))
        self.message = message

    def __str__(self) -> str:
        return self.message


def error_line(exc: BaseException) -> str:
    """One line for a worker's exception: ``Type: message`` (Ray wraps the original; unwrap it)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    if isinstance(exc, ChunkError):
        return exc.message
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")


def limit_threads(n: int = 1) -> None:
    """Give this worker process ``n`` threads in torch, OpenMP/BLAS and OpenImageIO.

    Why: each library sizes its pool to every core of the machine. N worker processes with N threads
    each oversubscribe the cores N times and run slower than one process; one thread per worker lets
    N workers fill N cores. The environment variables only reach pools not yet started (set them
    before numpy/torch are imported: a worker initializer, or Ray, which sets OMP_NUM_THREADS itself);
    torch and OIIO are also told directly.
    """
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)
    try:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    except ImportError:  # pragma: no cover - torch is a required dependency
        pass
    try:
        import OpenImageIO as oiio

        oiio.attribute("threads", n)
        oiio.attribute("exr_threads", n)
    except ImportError:  # pragma: no cover
        pass


def render_chunk(job: "Job", chunk: Chunk) -> ChunkDone:
    """Render frames ``chunk`` of ``job`` into the versions the sim step opened (``resume=True``: frames
    already on disk are skipped, so a retried chunk only renders what its dead attempt left out).
    The timeline is written once by the driver, not by every chunk."""
    from gvfx.render import render_job

    t0, c0 = time.perf_counter(), time.process_time()
    render_job(job, frames=chunk, resume=True, write_timeline_file=False)
    done = ChunkDone(chunk, time.perf_counter() - t0, socket.gethostname(), os.getpid(), time.process_time() - c0)
    log.info("chunk %d-%d rendered in %.1fs on %s:%d", chunk[0], chunk[1], done.seconds, done.host, done.pid)
    return done


