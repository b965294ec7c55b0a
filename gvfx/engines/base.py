"""The one interface every generation engine implements.

An engine turns a plate context (frames, camera, metric depth, colour space) and an element spec into,
per frame, a premultiplied scene-linear RGBA element with its own Z and a holdout matte. Engines that
simulate do it in two steps: ``prepare`` writes a cache once, ``render_frame`` renders any frame from
it, so any frame range (a farm chunk) gives the same pixels as a full render. The specs themselves live
in :mod:`gvfx.element` and are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from gvfx.element import (EffectInfo, ElementFrame, ElementSpec, LightSamples, Param, PlateContext,  # noqa: F401
                          Placement, ProgressFn)

__all__ = ["Engine", "ProgressFn", "Param", "EffectInfo", "Placement", "ElementSpec", "PlateContext",
           "ElementFrame", "LightSamples"]


@runtime_checkable
class Engine(Protocol):
    """A generation engine, registered by name."""

    name: str

    def effects(self) -> dict[str, EffectInfo]:
        """The effects this engine offers, by name."""
        ...

    def validate(self, spec: ElementSpec, ctx: PlateContext) -> None:
        """Raise a clear gvfx error for a bad spec before any work is done."""
        ...

    def prepare(self, spec: ElementSpec, ctx: PlateContext, cache_dir: Path,
                progress: ProgressFn | None = None) -> None:
        """Simulate (or otherwise precompute) into ``cache_dir``; idempotent for the same spec."""
        ...

    def render_frame(self, spec: ElementSpec, ctx: PlateContext, frame: int, cache_dir: Path) -> ElementFrame:
        """Render one frame from the cache."""
        ...
