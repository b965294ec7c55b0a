"""The ``sim`` engine: physically simulated elements, no weights, the embedded default.

It resolves an element's placement into an :class:`Anchor` on the plate's depth surface, then hands
the work to one effect family: ``volume`` (smoke, fire, explosion — a voxel fluid), ``particles``
(sparks, debris, dust, rain, snow) or ``insert`` (a rigid object from one reference image).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from types import ModuleType

import numpy as np

from gvfx.engines.base import EffectInfo, ElementFrame, ElementSpec, PlateContext, ProgressFn
from gvfx.engines.sim.common import Anchor, SimCache, sim_frames
from gvfx.errors import EngineError, InputError, PlacementError

log = logging.getLogger(__name__)

_FAMILIES = ("volume", "particles", "insert")
WORLD_UP = np.array([0.0, 1.0, 0.0])
#: Effects that emit light: their frames carry an ``emission`` layer (the element's own rgb when the
#: family gives none) that the match stage turns into light on the plate (gvfx.match.emitted_light).
EMISSIVE = frozenset({"fire", "explosion", "sparks"})


def _family(name: str) -> ModuleType:
    return importlib.import_module(f"gvfx.engines.sim.{name}")


class SimEngine:
    """Physically simulated effect elements rendered through the plate camera."""

    name = "sim"

    def __init__(self) -> None:
        self._by_effect: dict[str, ModuleType] = {}

    def _families(self) -> dict[str, ModuleType]:
        if not self._by_effect:
            for fam in _FAMILIES:
                try:
                    mod = _family(fam)
                except ImportError as exc:
                    raise EngineError(f"sim effect family {fam!r} failed to load: {exc}",
                                      hint="run `gvfx doctor`") from exc
                for effect in mod.EFFECTS:
                    self._by_effect[effect] = mod
        return self._by_effect

    def effects(self) -> dict[str, EffectInfo]:
        return {name: mod.EFFECTS[name] for name, mod in self._families().items()}

    def _module(self, spec: ElementSpec) -> ModuleType:
        fams = self._families()
        if spec.effect not in fams:
            raise EngineError(f"element {spec.name!r}: unknown sim effect {spec.effect!r}",
                              hint=f"known effects: {', '.join(sorted(fams))}")
        return fams[spec.effect]

    def validate(self, spec: ElementSpec, ctx: PlateContext) -> None:
        mod = self._module(spec)
        if spec.size_m <= 0:
            raise InputError(f"elements[{spec.name}].size_m: {spec.size_m} must be positive",
                             hint="give the element's size in metres (for an insert: the object's height)")
        if spec.start_frame is not None and spec.start_frame > ctx.frames[-1]:
            raise InputError(f"elements[{spec.name}].start_frame: {spec.start_frame} is after the plate's last "
                             f"frame {ctx.frames[-1]}")
        if spec.reference is not None and not Path(spec.reference).is_file():
            raise InputError(f"elements[{spec.name}].reference: file not found", path=spec.reference)
        self.anchor(spec, ctx)
        if hasattr(mod, "validate"):
            mod.validate(spec, ctx)

    def metadata(self, spec: ElementSpec) -> dict:
        """Effect-specific EXR metadata (e.g. the insert's proxy kind), empty for most effects."""
        mod = self._module(spec)
        return dict(mod.metadata(spec)) if hasattr(mod, "metadata") else {}

    def anchor(self, spec: ElementSpec, ctx: PlateContext) -> Anchor:
        """Where the element sits: a world point on the plate's surface with its normal."""
        pl = spec.placement
        where = f"elements[{spec.name}].placement"
        if pl.point is not None:
            return Anchor(np.asarray(pl.point, dtype=np.float64), WORLD_UP.copy(), WORLD_UP.copy(), spec.size_m)
        frame = pl.frame if pl.frame is not None else (spec.start_frame if spec.start_frame is not None
                                                       else ctx.frames[0])
        if frame not in ctx.frames:
            raise PlacementError(f"{where}.frame: frame {frame} is not in the plate ({ctx.frames[0]}-{ctx.frames[-1]})")
        if pl.screen is not None:
            uv = np.asarray(pl.screen, dtype=np.float64)
        elif pl.screen_norm is not None:
            uv = np.asarray(pl.screen_norm, dtype=np.float64) * (ctx.width, ctx.height)
        else:
            uv = np.array([ctx.width / 2.0, ctx.height * 0.75])
        if not (0 <= uv[0] < ctx.width and 0 <= uv[1] < ctx.height):
            raise PlacementError(f"{where}: screen position ({uv[0]:.0f}, {uv[1]:.0f}) is outside the "
                                 f"{ctx.width}x{ctx.height} frame", frame=frame)
        from gvfx.surface import surface_at_pixel

        try:
            point, normal = surface_at_pixel(ctx.depth(frame), ctx.camera.camera_at(frame),
                                             ctx.camera.transform(frame), uv)
        except PlacementError as exc:
            raise PlacementError(f"{where}: {exc.message}", frame=frame,
                                 hint="place it on a pixel with depth, or give a 3D point") from None
        return Anchor(np.asarray(point, dtype=np.float64), np.asarray(normal, dtype=np.float64), WORLD_UP.copy(),
                      spec.size_m)

    def prepare(self, spec: ElementSpec, ctx: PlateContext, cache_dir: Path,
                progress: ProgressFn | None = None) -> None:
        cache = SimCache(cache_dir)
        frames = sim_frames(spec.start_frame, ctx.frames)
        meta = cache.read_meta()
        if meta and meta.get("complete") and all(cache.has(f) for f in frames):
            log.info("sim cache for %s is complete: %s", spec.name, cache_dir)
            return
        anchor = self.anchor(spec, ctx)
        self._module(spec).simulate(spec, ctx, anchor, cache, progress)
        cache.write_meta({"element": spec.name, "effect": spec.effect, "frames": [frames[0], frames[-1]],
                          "anchor": anchor.point.tolist(), "normal": anchor.normal.tolist(), "complete": True})

    def render_frame(self, spec: ElementSpec, ctx: PlateContext, frame: int, cache_dir: Path) -> ElementFrame:
        cache = SimCache(cache_dir)
        meta = cache.read_meta() or {}
        if "anchor" in meta:
            up = WORLD_UP.copy()
            anchor = Anchor(np.asarray(meta["anchor"]), np.asarray(meta["normal"]), up, spec.size_m)
        else:
            anchor = self.anchor(spec, ctx)
        ef = self._module(spec).render(spec, ctx, anchor, frame, cache)
        if ef.emission is None and "emission" in ef.extra:  # the volume renderer's own emitted light
            ef.emission = np.asarray(ef.extra.pop("emission"), np.float32)[..., :3]
        if spec.effect in EMISSIVE and ef.emission is None:
            ef.emission = np.asarray(ef.rgba[..., :3], np.float32).copy()
        return ef
