"""Engine registry: engines are found by name through the ``gvfx.engines`` entry points, imported
lazily so ``gvfx --help`` never imports torch."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from gvfx.engines.base import Engine
from gvfx.errors import EngineError

log = logging.getLogger(__name__)

_BUILTIN = {"sim": "gvfx.engines.sim:SimEngine", "diffusion": "gvfx.engines.diffusion:DiffusionEngine"}
_cache: dict[str, Engine] = {}


def engine_names() -> list[str]:
    names = set(_BUILTIN)
    names.update(ep.name for ep in entry_points(group="gvfx.engines"))
    return sorted(names)


def get_engine(name: str) -> Engine:
    """The engine registered as ``name``; a plug-in that fails to import says so with its name."""
    if name in _cache:
        return _cache[name]
    target = None
    for ep in entry_points(group="gvfx.engines"):
        if ep.name == name:
            target = ep.value
    target = target or _BUILTIN.get(name)
    if target is None:
        raise EngineError(f"unknown engine {name!r}", hint=f"known engines: {', '.join(engine_names())}")
    module_name, _, attr = target.partition(":")
    try:
        import importlib
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # a broken plug-in must be loud, not vanish
        raise EngineError(f"engine {name!r} ({target}) failed to load: {exc}",
                          hint="run `gvfx doctor` to check the installation") from exc
    engine = cls()
    _cache[name] = engine
    return engine
