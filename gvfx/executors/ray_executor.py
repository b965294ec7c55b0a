"""The Ray executor: chunks as Ray tasks (or on a pool of Ray actors that keep engines loaded), on a
local Ray instance (``ray.init(num_cpus=N)``) or an existing cluster (``--address``).

Ray does the scheduling and the fault tolerance: a chunk whose worker dies or raises is re-run up to
``max_retries`` times (``resume=True`` makes a re-run render only the frames its dead attempt left
out); a chunk that still fails is returned as a ``ChunkFailure`` naming its frames. The driver only
waits for results and turns completed chunks into progress.

Engines may declare ``wants_gpu: bool`` (each task/actor then asks Ray for one GPU) and
``keeps_model: bool`` (an expensive model worth keeping between chunks: the actor path). The sim
engine declares neither, so its chunks run as plain tasks with one CPU each.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from gvfx.errors import GvfxError
from gvfx.executors.base import (Chunk, ChunkDone, ChunkError, ChunkFailure, ChunkFn, ExecutorOptions, Progress,
                                 error_line, limit_threads, render_chunk)

if TYPE_CHECKING:
    from gvfx.job import Job

log = logging.getLogger(__name__)

INSTALL_HINT = 'install it with: pip install "gvfx[farm]" (or pip install ray)'


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise GvfxError("the ray executor needs Ray, which is not installed", hint=INSTALL_HINT) from None
    return ray


def engine_needs(job: "Job") -> tuple[bool, bool]:
    """``(wants_gpu, keeps_model)`` over the job's engines (attributes an engine may declare)."""
    from gvfx.engines import get_engine

    engines = [get_engine(spec.engine) for spec in job.elements]
    return (any(bool(getattr(e, "wants_gpu", False)) for e in engines),
            any(bool(getattr(e, "keeps_model", False)) for e in engines))


def _run_chunk_task(fn: ChunkFn, job: "Job", chunk: Chunk, threads: int) -> ChunkDone:
    """Body of a chunk task (module level, so Ray pickles it by reference)."""
    limit_threads(threads)
    return fn(job, chunk)


class ChunkRenderer:
    """Ray actor body: holds the job and its loaded engines, renders chunk after chunk.

    ``gvfx.engines.get_engine`` caches engine instances per process, so building them here keeps them
    (and any model an engine loads, via its optional ``load()``) for the actor's lifetime instead of
    once per chunk. Generic: it knows nothing of the engines beyond that.
    """

    def __init__(self, fn: ChunkFn, job: "Job", threads: int) -> None:
        from gvfx.engines import get_engine

        limit_threads(threads)
        self.fn, self.job = fn, job
        for spec in job.elements:
            load = getattr(get_engine(spec.engine), "load", None)
            if callable(load):
                load()

    def render(self, chunk: Chunk) -> ChunkDone:
        try:
            return self.fn(self.job, chunk)
        except Exception as exc:
            raise ChunkError(chunk, error_line(exc)) from exc

    def ping(self) -> bool:
        return True


class RayExecutor:
    """Chunks on Ray: tasks by default, an actor pool when an engine wants a GPU or keeps a model."""

    name = "ray"

    def preflight(self, options: ExecutorOptions) -> None:
        """Ray is installed and ``options.address`` (when it names a host:port) answers."""
        import_ray()
        if options.address:
            check_reachable(options.address)

    def run_chunks(self, job: "Job", chunks: list[Chunk], *, options: ExecutorOptions, progress: Progress,
                   chunk_fn: ChunkFn | None = None) -> tuple[list[ChunkDone], list[ChunkFailure]]:
        ray = import_ray()
        started = connect(options)
        try:
            wants_gpu, keeps_model = engine_needs(job)
            num_gpus = 0
            if wants_gpu:
                if ray.cluster_resources().get("GPU", 0) > 0:
                    num_gpus = 1
                else:
                    log.warning("an engine wants a GPU but the Ray cluster has none: chunks run on CPUs")
            use_actors = options.mode == "actors" or (options.mode == "auto" and (wants_gpu or keeps_model))
            fn = chunk_fn or render_chunk
            stage = f"render chunks (ray {'actors' if use_actors else 'tasks'})"
            prog = _FrameProgress(progress, stage, chunks)
            if use_actors:  # the job goes inline with each actor: a restarted actor never misses it
                return _run_actors(ray, fn, job, chunks, options, num_gpus, prog)
            return _run_tasks(ray, fn, ray.put(job), chunks, options, num_gpus, prog)
        finally:
            if started:
                ray.shutdown()


def connect(options: ExecutorOptions) -> bool:
    """Join ``options.address``, or start a local Ray with ``workers`` CPUs; True if this call started
    Ray (the caller shuts it down). An already initialised Ray (a test's, a notebook's) is used as is."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    try:
        if options.address:
            ray.init(address=options.address, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=options.worker_count(), include_dashboard=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = options.address or "a local instance"
        raise GvfxError(f"cannot start or reach Ray ({where}): {error_line(exc)}",
                        hint="check --address (e.g. auto, or ray://HEAD:10001) and that `ray status` works") from None
    return True


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A one-line error when ``HOST:PORT`` (or ``ray://HOST:PORT``) does not accept a connection:
    ``ray.init`` would otherwise retry for minutes. ``auto``/``local`` are left to Ray."""
    import socket

    m = re.fullmatch(r"(?:ray://)?\[?([^\]/]+?)\]?:(\d+)/?", address.strip())
    if m is None:
        return
    host, port = m.group(1), int(m.group(2))
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise GvfxError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}",
                        hint="start it with `ray start --head` and give its address (HOST:6379, or "
                             "ray://HOST:10001 for Ray Client), or `--address auto` on a cluster node") from None


class _FrameProgress:
    """Frames done over frames asked, advanced as each chunk finishes (rendered or failed)."""

    def __init__(self, progress: Progress, stage: str, chunks: list[Chunk]) -> None:
        self.progress, self.stage = progress, stage
        self.total = sum(b - a + 1 for a, b in chunks)
        self.done = 0
        progress(stage, 0, self.total)

    def chunk_finished(self, chunk: Chunk) -> None:
        self.done += chunk[1] - chunk[0] + 1
        self.progress(self.stage, self.done, self.total)


def _run_tasks(ray, fn: ChunkFn, job_ref, chunks: list[Chunk], options: ExecutorOptions, num_gpus: int,
               prog: _FrameProgress) -> tuple[list[ChunkDone], list[ChunkFailure]]:
    task = ray.remote(_run_chunk_task).options(num_cpus=options.threads_per_worker, num_gpus=num_gpus,
                                               max_retries=options.max_retries, retry_exceptions=True)
    pending = {task.remote(fn, job_ref, c, options.threads_per_worker): c for c in chunks}
    done: list[ChunkDone] = []
    failed: list[ChunkFailure] = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            chunk = pending.pop(ref)
            try:
                done.append(ray.get(ref))
            except ray.exceptions.RayError as exc:
                failed.append(_failure(chunk, exc, options.max_retries))
            prog.chunk_finished(chunk)
    return done, failed


def _run_actors(ray, fn: ChunkFn, job: "Job", chunks: list[Chunk], options: ExecutorOptions, num_gpus: int,
                prog: _FrameProgress) -> tuple[list[ChunkDone], list[ChunkFailure]]:
    from ray.util.actor_pool import ActorPool

    if options.workers or not options.address:
        n = options.worker_count()
    else:  # an existing cluster: one actor per CPU slot it has
        n = int(ray.cluster_resources().get("CPU", 1) // options.threads_per_worker)
    n = max(1, min(n, len(chunks)))
    actor_cls = ray.remote(ChunkRenderer).options(num_cpus=options.threads_per_worker, num_gpus=num_gpus,
                                                  max_restarts=options.max_retries,
                                                  max_task_retries=options.max_retries)
    actors = [actor_cls.remote(fn, job, options.threads_per_worker) for _ in range(n)]
    pool = ActorPool(actors)
    for c in chunks:
        # a chunk's error names its frames (the unordered results do not say which chunk they were)
        pool.submit(lambda a, ch: a.render.options(retry_exceptions=True).remote(ch), c)
    done: list[ChunkDone] = []
    failed: list[ChunkFailure] = []
    alive = len(actors)
    while pool.has_next() and alive > 0:
        try:
            res = pool.get_next_unordered()
            done.append(res)
            prog.chunk_finished(res.chunk)
        except ray.exceptions.ActorDiedError as exc:  # restarts used up: its chunk is found missing below
            alive -= 1
            log.warning("a chunk renderer died for good: %s", error_line(exc))
        except ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ChunkError):
                failed.append(_failure(cause.chunk, exc, options.max_retries))
                prog.chunk_finished(cause.chunk)
            else:  # no chunk named: it is found missing below
                log.warning("a chunk failed: %s", error_line(exc))
    accounted = {d.chunk for d in done} | {f.chunk for f in failed}
    for c in chunks:
        if c not in accounted:
            failed.append(ChunkFailure(c, f"its worker died {options.max_retries + 1} times"))
            prog.chunk_finished(c)
    for a in actors:
        ray.kill(a)
    return done, failed


def _failure(chunk: Chunk, exc: BaseException, retries: int) -> ChunkFailure:
    attempts = f" (after {retries + 1} attempts)" if retries else ""
    return ChunkFailure(chunk, error_line(exc) + attempts)
