"""The sim engine's volume family: smoke, fire and explosion, simulated on a voxel grid above the
anchor (``fluid.py``), cached per frame, and ray-marched through the plate camera (``raymarch.py``).

The grid is an axis-aligned world box whose floor sits on the anchor point, centred on it in X/Z;
its size comes from ``anchor.size_m`` times the effect's box proportions.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import numpy as np
import torch

from gvfx.engines.base import EffectInfo, ElementFrame, ElementSpec, Param, PlateContext, ProgressFn
from gvfx.engines.sim.common import Anchor, SimCache, light_direction, resolved_params, sim_frames
from gvfx.engines.sim.fluid import FluidParams, FluidSim, torch_threads
from gvfx.engines.sim.look import Look, default_look, fit_look, load_reference_rgb
from gvfx.engines.sim.raymarch import MarchSettings, VolumeBox, light_transmittance, march
from gvfx.engines.sim.volume_sources import ExplosionSource, FireSource
from gvfx.errors import EngineError

log = logging.getLogger(__name__)

#: Box proportions (x, y, z) in units of ``size_m``: tall enough that the smoke thins away (edge fade)
#: before the top instead of being cut by it; the explosion's leaves room for the soot to rise.
_BOX = {"smoke": (1.5, 4.0, 1.5), "fire": (1.0, 3.0, 1.0), "explosion": (2.4, 3.2, 2.4)}


def _common_params(res: int, buoy: float, vort: float, diss: float, cool: float, dens: float,
                   emis: float, preroll: int, opacity: float = 6.0) -> tuple[Param, ...]:
    return (
        Param("resolution", int, res, "voxels along the box's longest axis", 8, 256),
        Param("substeps", int, 2, "solver steps per frame", 1, 16),
        Param("preroll_frames", int, preroll, "frames simulated before the start frame", 0, 200),
        Param("buoyancy", float, buoy, "lift per unit temperature (m/s^2)", 0.0, 100.0),
        Param("vorticity", float, vort, "vorticity confinement (swirl detail)", 0.0, 20.0),
        Param("dissipation", float, diss, "smoke density fade (1/s)", 0.0, 10.0),
        Param("cooling", float, cool, "temperature decay (1/s)", 0.0, 20.0),
        Param("wind", tuple, (0.0, 0.0, 0.0), "wind velocity, world m/s (x, y, z)"),
        Param("density_scale", float, dens, "smoke extinction per unit density per metre", 0.0, 1000.0),
        Param("emission_scale", float, emis, "exposure of the flame emission (linear; >1 = HDR core)", 0.0, 1000.0),
        Param("flame_opacity", float, opacity, "extinction of hot gas per metre (alpha of flames)", 0.0, 1000.0),
        Param("light_dir", tuple, (-0.45, 0.8, 0.4), "world direction towards the key light"),
        Param("light_intensity", float, 1.0, "key light radiance on the smoke", 0.0, 100.0),
        Param("ambient", float, 0.25, "ambient light on the smoke", 0.0, 100.0),
        Param("source_radius", float, 0.3, "emitter radius as a fraction of size_m", 0.01, 1.0),
        Param("turbulence", float, 1.5, "random horizontal gusts in hot gas, times the inflow speed", 0.0, 20.0),
    )


_PUFF = (Param("puff_hz", float, 0.0, "puffing frequency in Hz (0 = 1.5/sqrt(D), D the base diameter)", 0.0, 50.0),
         Param("puff_amplitude", float, 0.6, "puffing swing of the fuel/smoke flow (0..1)", 0.0, 1.0),
         Param("puff_pinch", float, 1.0, "strength of the base's necking (flamelet detachment)", 0.0, 10.0))

EFFECTS: dict[str, EffectInfo] = {
    "smoke": EffectInfo("smoke", "a rising smoke plume from the anchor",
                        _common_params(72, 8.0, 4.0, 0.1, 0.3, 6.0, 0.0, 24) + _PUFF[1:2]),
    "fire": EffectInfo("fire", "licking flames rising from the anchor, with smoke above",
                       _common_params(96, 6.0, 5.0, 0.2, 2.2, 8.0, 12.0, 24)
                       + (Param("soot", float, 0.8, "smoke density made per unit of fuel burnt", 0.0, 10.0),)
                       + _PUFF),
    "explosion": EffectInfo("explosion", "a fireball bursting from the anchor at the start frame",
                            _common_params(72, 3.0, 4.0, 0.1, 1.2, 10.0, 10.0, 0, 10.0)
                            + (Param("fireball_radius", float, 0.8, "final fireball radius, fraction of size_m", 0.05, 1.2),
                               Param("growth_s", float, 0.5, "time the fireball grows (R ~ t^0.4) before it stalls (s)",
                                     0.01, 10.0),
                               Param("soot", float, 0.6, "smoke density made per unit of fuel burnt", 0.0, 10.0))),
}

#: Effects whose element emits light: their own cast shadow vanishes where they emit.
EMISSIVE = frozenset({"fire", "explosion"})


def grid_layout(effect: str, anchor: Anchor, resolution: int) -> VolumeBox:
    """The sim box for ``effect`` at ``anchor``: floor on the anchor point, centred in X/Z; cell counts
    multiples of 8 (so the multigrid coarsens three times) with ~``resolution`` along the longest axis."""
    prop = np.asarray(_BOX[effect], dtype=np.float64)
    longest = float(prop.max()) * anchor.size_m
    voxel = longest / resolution
    shape = tuple(int(max(8, 8 * round(resolution * p / prop.max() / 8))) for p in prop)
    extent = voxel * np.asarray(shape, dtype=np.float64)
    p = np.asarray(anchor.point, dtype=np.float64)
    box_min = np.array([p[0] - extent[0] / 2, p[1], p[2] - extent[2] / 2])
    return VolumeBox(box_min, voxel, shape)


def simulate(spec: ElementSpec, ctx: PlateContext, anchor: Anchor, cache: SimCache,
             progress: ProgressFn | None = None, device: str = "cpu") -> None:
    """Simulate ``spec.effect`` from the start frame to the last plate frame, writing per frame
    ``density`` and ``temperature`` (float16, cell-centred) plus the box placement to ``cache``."""
    if spec.effect not in EFFECTS:
        raise EngineError(f"effect {spec.effect!r} is not a volume effect", hint=f"use one of {', '.join(EFFECTS)}")
    info = EFFECTS[spec.effect]
    prm = resolved_params(info, spec.params)
    frames = sim_frames(spec.start_frame, ctx.frames)
    box = grid_layout(spec.effect, anchor, int(prm["resolution"]))
    fp = FluidParams(buoyancy=float(prm["buoyancy"]), vorticity=float(prm["vorticity"]),
                     density_dissipation=float(prm["dissipation"]), cooling=float(prm["cooling"]),
                     wind_mps=tuple(float(x) for x in prm["wind"]), burn_soot=float(prm.get("soot", 0.35)),
                     weight=0.1 if spec.effect == "explosion" else 0.5)
    sim = FluidSim(box.shape, box.voxel_m, fp, device=device)
    gen = torch.Generator(device="cpu").manual_seed(int(spec.seed))
    substeps = int(prm["substeps"])
    dt = 1.0 / (ctx.fps * substeps)
    if spec.effect == "explosion":
        radius_vox = float(prm["fireball_radius"]) * anchor.size_m / box.voxel_m
        centre = (box.shape[0] / 2, min(radius_vox * 1.05, box.shape[1] / 2), box.shape[2] / 2)
        source = ExplosionSource(sim, centre, radius_vox, prm, gen, dt)
    else:
        radius_vox = float(prm["source_radius"]) * anchor.size_m / box.voxel_m
        source = FireSource(sim, radius_vox, 0.6 * anchor.size_m, prm, spec.effect == "smoke", gen)
    preroll = 0 if spec.effect == "explosion" else int(prm["preroll_frames"])
    with torch_threads(int(np.prod(box.shape))):
        _run(spec, sim, box, frames, preroll, substeps, dt, source, cache, progress)
    log.info("%s: simulated %d frames on %s grid (%d CG iterations last step)", spec.name, len(frames),
             box.shape, sim.last_cg_iterations)


def _run(spec: ElementSpec, sim: FluidSim, box: VolumeBox, frames: list[int], preroll: int, substeps: int,
         dt: float, source: FireSource | ExplosionSource, cache: SimCache, progress: ProgressFn | None) -> None:
    """The frame loop of ``simulate``: pre-roll, then one cache entry per frame."""
    for n in range(preroll + len(frames)):
        for _ in range(substeps):
            source.emit(sim, dt)
            sim.step(dt)
        if n >= preroll:
            frame = frames[n - preroll]
            cache.write(frame, density=sim.density.cpu().numpy().astype(np.float16),
                        temperature=sim.temperature.cpu().numpy().astype(np.float16),
                        box_min=np.asarray(box.box_min, np.float64), voxel_m=np.float64(box.voxel_m),
                        shape=np.asarray(box.shape, np.int64))
            if progress is not None:
                progress(n - preroll + 1, len(frames), f"{spec.name}: simulated frame {frame}")


def _look(spec: ElementSpec) -> Look:
    """The element's look: the effect's default, or fitted to ``spec.reference`` (cached per file)."""
    if spec.reference is None:
        return default_look(spec.effect)
    p = Path(spec.reference)
    stamp = p.stat().st_mtime_ns if p.exists() else 0
    return _fitted_look(str(p), stamp, spec.effect)


@functools.lru_cache(maxsize=8)
def _fitted_look(path: str, mtime_ns: int, effect: str) -> Look:
    return fit_look(load_reference_rgb(path)[..., :3], base=default_look(effect))


def _settings(spec: ElementSpec, prm: dict, look: Look) -> MarchSettings:
    light = float(prm["light_intensity"]) * np.array([1.0, 0.97, 0.92])
    ambient = float(prm["ambient"]) * np.array([0.8, 0.85, 1.0])
    ds = float(prm["density_scale"]) * look.density_scale / default_look(spec.effect).density_scale
    opacity = float(prm["flame_opacity"]) if spec.effect != "smoke" else 0.0
    return MarchSettings(ds, opacity, np.asarray(look.emission_ramp) * float(prm["emission_scale"]),
                         np.asarray(look.smoke_tint), light, ambient)


def _edge_fade(shape: tuple[int, int, int], side: int = 6) -> torch.Tensor:
    """(X, Y, Z) 0..1 window fading smoke out at the open sides (``side`` voxels) and over the top
    quarter of the box (smoothstep), so smoke leaving the box thins away instead of ending at a
    hard plane; the floor is kept."""
    ramps = []
    for a, n in enumerate(shape):
        i = torch.arange(n, dtype=torch.float32) + 0.5
        if a == 1:
            x = torch.clamp((n - i) / max(1.0, n / 4), 0.0, 1.0)
            ramps.append(x * x * (3 - 2 * x))
        else:
            ramps.append(torch.clamp((n - i) / side, 0.0, 1.0) * torch.clamp(i / side, 0.0, 1.0))
    return ramps[0][:, None, None] * ramps[1][None, :, None] * ramps[2][None, None, :]


def _occupied(grids: torch.Tensor, settings: MarchSettings, voxel_m: float, eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Index bounds [lo, hi) (plus one voxel of margin) of the voxels whose extinction over one voxel
    exceeds ``eps``: marching only this sub-box skips empty space at no visible cost."""
    occ = (settings.density_scale * grids[0] + settings.flame_opacity * grids[1]) * voxel_m > eps
    shape = np.asarray(occ.shape)
    if not bool(occ.any()):
        return np.zeros(3, np.int64), np.zeros(3, np.int64)
    lo, hi = [], []
    for a in range(3):
        other = tuple(d for d in range(3) if d != a)
        nz = torch.nonzero(occ.any(dim=other[1]).any(dim=other[0])).ravel()
        lo.append(int(nz[0]) - 1)
        hi.append(int(nz[-1]) + 2)
    return np.clip(lo, 0, shape), np.clip(hi, 0, shape)


def empty_frame(ctx: PlateContext) -> ElementFrame:
    """No element: zeros, z = inf, holdout 0."""
    h, w = ctx.height, ctx.width
    return ElementFrame(np.zeros((h, w, 4), np.float32), np.full((h, w), np.inf, np.float32),
                        np.zeros((h, w), np.float32))


def render(spec: ElementSpec, ctx: PlateContext, anchor: Anchor, frame: int, cache: SimCache) -> ElementFrame:
    """Render ``frame`` from the cache only, through the plate camera, with motion blur over
    ``spec.shutter_frames`` (centred) from ``spec.motion_samples`` sub-frame camera poses; the grids
    are interpolated linearly between the two nearest cached frames."""
    frames = sim_frames(spec.start_frame, ctx.frames)
    if frame < frames[0] or frame > frames[-1]:
        return empty_frame(ctx)
    with torch_threads(0):  # single-threaded: faster on a shared machine, and reductions fixed-order
        return _render(spec, ctx, frame, cache, frames)


def _render(spec: ElementSpec, ctx: PlateContext, frame: int, cache: SimCache, frames: list[int]) -> ElementFrame:
    """``render`` for a frame inside the simulated range."""
    prm = resolved_params(EFFECTS[spec.effect], spec.params)
    settings = _settings(spec, prm, _look(spec))
    light_dir = light_direction(prm)
    temp_max = 1.0
    grids_by_frame: dict[int, tuple[torch.Tensor, VolumeBox]] = {}

    def cached(f: int) -> tuple[torch.Tensor, VolumeBox]:
        if f not in grids_by_frame:
            if not cache.has(f):
                raise EngineError(f"no simulation cached for element {spec.name!r}", path=cache.root, frame=f,
                                  hint="run the simulation (prepare) before rendering")
            data = cache.read(f)
            box = VolumeBox(np.asarray(data["box_min"], np.float64), float(data["voxel_m"]),
                            tuple(int(s) for s in data["shape"]))
            dens = torch.from_numpy(data["density"].astype(np.float32)) * _edge_fade(box.shape)
            temp = torch.from_numpy(np.clip(data["temperature"].astype(np.float32) / temp_max, 0.0, 1.0))
            ltr = light_transmittance(dens, box, light_dir, settings.density_scale)
            grids_by_frame[f] = (torch.stack([dens, temp, ltr]), box)
        return grids_by_frame[f]

    n = max(1, int(spec.motion_samples)) if spec.shutter_frames > 0 else 1
    times = [float(frame)] if n == 1 else [frame + spec.shutter_frames * (i / (n - 1) - 0.5) for i in range(n)]
    plate_z = np.asarray(ctx.depth(frame), dtype=np.float32)
    h, w = ctx.height, ctx.width
    acc = {"rgb": np.zeros((h, w, 3)), "emission": np.zeros((h, w, 3)), "alpha": np.zeros((h, w)),
           "alpha_front": np.zeros((h, w)), "z_weighted": np.zeros((h, w)), "alpha_smoke": np.zeros((h, w))}
    for t in times:
        tc = min(max(t, frames[0]), frames[-1])
        f0 = int(math.floor(tc))
        f1 = min(f0 + 1, frames[-1])
        wt = tc - f0
        g0, box = cached(f0)
        lo, hi = _occupied(g0, settings, box.voxel_m)
        if wt != 0.0 and f1 != f0:
            g1 = cached(f1)[0]
            lo1, hi1 = _occupied(g1, settings, box.voxel_m)
            lo, hi = np.minimum(lo, lo1), np.maximum(hi, hi1)
            grids = (1 - wt) * g0 + wt * g1
        else:
            grids = g0
        if np.any(hi <= lo):
            continue  # nothing visible in the grid
        sub = grids[:, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].contiguous()
        sub_box = VolumeBox(box.box_min + lo * box.voxel_m, box.voxel_m, tuple(int(x) for x in hi - lo))
        res = march(sub, sub_box, ctx.camera.camera_at(t), ctx.camera.transform(t), plate_z, settings)
        for k in acc:
            acc[k] = acc[k] + res[k]
    alpha = (acc["alpha"] / len(times)).astype(np.float32)
    rgb = (acc["rgb"] / len(times)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(acc["alpha"] > 0, acc["z_weighted"] / acc["alpha"], np.inf).astype(np.float32)
        holdout = np.where(acc["alpha"] > 0, 1.0 - acc["alpha_front"] / acc["alpha"], 0.0)
    rgba = np.concatenate([rgb, alpha[..., None]], axis=-1)
    motion = np.zeros((h, w, 2), np.float32)
    motion[alpha > 0] = _centre_motion(ctx, frame, frames, cached)
    extra = {"motion": motion}
    if spec.effect in EMISSIVE:
        # what the element emits (for the compositor to add), and the alpha it casts a shadow with:
        # only its smoke absorbs light; where it glows it lights the ground instead of darkening it
        extra["emission"] = (acc["emission"] / len(times)).astype(np.float32)
        extra["shadow_alpha"] = np.clip(acc["alpha_smoke"] / len(times), 0.0, 1.0).astype(np.float32)
    return ElementFrame(rgba, z, np.clip(holdout, 0.0, 1.0).astype(np.float32), extra)


def _centre_motion(ctx: PlateContext, frame: int, frames: list[int], cached) -> np.ndarray:
    """(2,) forward screen motion, pixels per frame (u right, v down), of the volume's centre of mass
    (density + heat) from ``frame`` to the next (the previous step on the last frame)."""
    fa, fb = (frame, frame + 1) if frame < frames[-1] else (max(frame - 1, frames[0]), frame)
    if fa == fb:
        return np.zeros(2, np.float32)
    uv = []
    for f in (fa, fb):
        grids, box = cached(f)
        mass = (grids[0] + grids[1]).double()
        total = float(mass.sum())
        if total <= 0:
            return np.zeros(2, np.float32)
        idx = [torch.arange(n, dtype=torch.float64) + 0.5 for n in box.shape]
        com = np.array([float((mass.sum(dim=tuple(d for d in range(3) if d != a)) * idx[a]).sum()) / total
                        for a in range(3)])
        uv.append(ctx.camera.project_world((box.box_min + com * box.voxel_m)[None], f)[0][0])
    return (uv[1] - uv[0]).astype(np.float32)
