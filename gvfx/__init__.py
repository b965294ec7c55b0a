"""gvfx: generative visual effects matched to live-action plates.

The public face for pipeline scripts (docs/api.md)::

    import gvfx
    job = gvfx.load_job("shot010.yaml")
    result = gvfx.render_job(job, frames=(1001, 1010))

Each name lives in its own layer (docs/architecture.md) and is loaded on first use (PEP 562), so
``import gvfx`` stays cheap, imports no torch, and this face imports nothing below it by name.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> "module:attribute" it is re-exported from
_EXPORTS: dict[str, str] = {
    "load_job": "gvfx.job:load_job",
    "parse_job": "gvfx.job:parse_job",
    "render_job": "gvfx.executors.render:render_job",
    "analyze_plate": "gvfx.analyze:analyze_plate",
    "probe_file": "gvfx.probe:probe",
    "match_element": "gvfx.match.sequences:match_element",
    "shot_versions": "gvfx.versions:shot_versions",
    "ShotVersion": "gvfx.versions:ShotVersion",
    "MatchEstimates": "gvfx.match.stage:MatchEstimates",
    "Job": "gvfx.job:Job",
    "ElementSpec": "gvfx.element:ElementSpec",
    "Placement": "gvfx.element:Placement",
    "RenderResult": "gvfx.render:RenderResult",
    "AnalyzeOptions": "gvfx.analyze:AnalyzeOptions",
    "AnalyzeResult": "gvfx.analyze:AnalyzeResult",
    "MatchSettings": "gvfx.match.stage:MatchSettings",
    "engine_names": "gvfx.engines:engine_names",
    "get_engine": "gvfx.engines:get_engine",
    "GvfxError": "gvfx.errors:GvfxError",
}

__all__ = ["__version__", *_EXPORTS]

def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'gvfx' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
