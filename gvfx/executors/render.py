"""``render_job``: one call that renders a job in this process, in local worker processes or on Ray —
the Python face of ``gvfx render`` (re-exported as ``gvfx.render_job``; see docs/api.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from gvfx.errors import InputError

if TYPE_CHECKING:
    from gvfx.job import Job
    from gvfx.render import RenderResult

__all__ = ["render_job", "EXECUTORS"]

#: where ``render_job`` runs the frames: in this process, in local worker processes, or on Ray
EXECUTORS = ("inline", "local", "ray")

#: progress(stage, done, total), as the CLI's progress bar receives it
StageProgress = Callable[[str, int, int], None]


def render_job(job: "Job | str | Path", *, frames: tuple[int, int] | None = None, resume: bool = False,
               executor: str = "inline", workers: int | None = None, address: str | None = None,
               chunk_size: int | None = None, progress: StageProgress | None = None,
               cancel: Callable[[], bool] | None = None) -> "RenderResult":
    """Render every element of ``job`` (a Job or a job file) and the comp, as ``gvfx render`` does.

    ``frames``: an inclusive range (a farm chunk gives the same pixels as a full render);
    ``resume``: continue the newest version with the same spec; ``executor``: ``inline`` (this
    process), ``local`` (``workers`` processes) or ``ray`` (``address`` of a cluster, else a local
    instance); ``cancel()`` is polled between frames (inline only) and stops the render, leaving the
    versions ``partial``.
    """
    from gvfx.job import Job, load_job

    if not isinstance(job, Job):
        job = load_job(job)
    if executor not in EXECUTORS:
        raise InputError(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    if executor == "inline":
        if workers is not None or address is not None or chunk_size is not None:
            raise InputError("workers, address and chunk_size need executor='local' or 'ray'")
        from gvfx.render import render_job as _render

        return _render(job, frames=frames, resume=resume, progress=progress, cancel=cancel)
    if cancel is not None:
        raise InputError("cancel is only polled by executor='inline'", hint="stop farm chunks from the farm")
    from gvfx.executors.base import ExecutorOptions
    from gvfx.executors.chunks import DEFAULT_CHUNK_SIZE
    from gvfx.executors.driver import render_with_executor

    run = render_with_executor(job, executor, options=ExecutorOptions(workers=workers, address=address),
                               frames=frames, chunk_size=chunk_size or DEFAULT_CHUNK_SIZE, resume=resume,
                               progress=progress)
    return run.result
