"""Executors: where the frame chunks of a job render once its sim step has run. Found by name
(``local``: worker processes on this machine; ``ray``: a local Ray instance or a Ray cluster), plus any
registered under the ``gvfx.executors`` entry-point group. Imported lazily: ``gvfx --help`` imports
neither Ray nor torch.

    from gvfx.executors import ExecutorOptions, render_with_executor
    run = render_with_executor(job, "ray", options=ExecutorOptions(workers=2), chunk_size=8)
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from gvfx.errors import InputError
from gvfx.executors.base import (ChunkDone, ChunkFailedError, ChunkFailure, Executor, ExecutorOptions,
                                 limit_threads, render_chunk)
from gvfx.executors.chunks import DEFAULT_CHUNK_SIZE, chunk_label, plan_chunks
from gvfx.executors.driver import ExecutorRun, render_with_executor

__all__ = ["DEFAULT_CHUNK_SIZE", "ChunkDone", "ChunkFailedError", "ChunkFailure", "Executor", "ExecutorOptions",
           "ExecutorRun", "chunk_label", "executor_names", "get_executor", "limit_threads", "plan_chunks",
           "render_chunk", "render_with_executor"]

_BUILTIN = {"local": "gvfx.executors.local:LocalExecutor", "ray": "gvfx.executors.ray_executor:RayExecutor"}


def executor_names() -> list[str]:
    """Every executor name: the built-in ones and the ``gvfx.executors`` entry points."""
    return sorted(set(_BUILTIN) | {ep.name for ep in entry_points(group="gvfx.executors")})


def get_executor(name: str) -> Executor:
    """A new executor registered as ``name``; an unknown name is one clear error listing the known ones."""
    target = next((ep.value for ep in entry_points(group="gvfx.executors") if ep.name == name), None)
    target = target or _BUILTIN.get(name)
    if target is None:
        raise InputError(f"unknown executor {name!r}", hint=f"known executors: {', '.join(executor_names())}")
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)()
