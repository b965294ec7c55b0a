"""Render a job: simulate each element once into its cache, then render frames, write versioned EXR
sequences (rgba + Z + holdout, with metadata), a depth-aware comp, and the shot's OTIO timeline.

Output layout under the job's output root::

    elements/NAME/vNNN/NAME.####.exr   one version per render (never overwritten)
    comp/vNNN/comp.####.exr
    cache/NAME-HASH/                   sim cache, shared by every chunk of the same spec
    NAME.otio                          the shot timeline (every version; gvfx.timeline)
    layout.usda                        camera, plate card and element cards/boxes (gvfx.layout)
    .gvfx.lock                         the shot lock (gvfx.lock)

Reliability (docs/shot_layout.md): a fresh render holds the shot lock exclusively, ``--resume`` renders
(farm chunks) share it; each version is marked ``rendering`` with this process (pid, host) when the
render starts and ``complete``/``partial``/``failed`` when it ends, in its ``version.json`` and in the
timeline, under the timeline's state lock, so a killed render leaves a readable timeline whose version
reads back ``incomplete``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

import gvfx
from gvfx.engines import get_engine
from gvfx.engines.base import ElementFrame, ElementSpec
from gvfx.errors import CancelledError, GvfxError, InputError, output_error
from gvfx.job import Job
from gvfx.plate import Plate, open_plate
from gvfx.render.shot_state import ShotStateTracker
from gvfx.versions import find_resumable, new_version, now_iso

log = logging.getLogger(__name__)

#: progress(stage, done, total): stage is e.g. "sim fire", "render", "write"
StageProgress = Callable[[str, int, int], None]


@dataclass
class SequenceOutput:
    """One written EXR sequence: its version folder, file pattern and frames."""

    name: str
    version_dir: Path
    pattern: str
    frames: list[int]
    spec_hash: str
    metadata: dict = field(default_factory=dict)


@dataclass
class RenderResult:
    plate: Plate
    elements: dict[str, SequenceOutput]
    comp: SequenceOutput | None
    timeline: Path | None
    #: per element, the match stage's estimates (gvfx.match.stage.MatchEstimates)
    estimates: dict = field(default_factory=dict)


def _file_hash(path: Path | None) -> str | None:
    if path is None:
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def element_spec_hash(spec: ElementSpec, job: Job, frames: list[int]) -> str:
    """Hash of everything that decides an element's pixels (not the sub-range being rendered)."""
    d = asdict(spec)
    d["reference"] = _file_hash(spec.reference)
    payload = {
        "element": d,
        "plate": {"path": job.plate.path, "frames": [frames[0], frames[-1]], "view": job.plate.view,
                  "colorspace": job.plate.colorspace},
        "depth": asdict(job.depth),
        "camera": {**asdict(job.camera), "file_hash": _file_hash(Path(job.camera.file)) if job.camera.file else None},
        "gvfx": gvfx.__version__,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _element_metadata(spec: ElementSpec, spec_hash: str, colorspace: str) -> dict:
    from gvfx.color import config_name

    return {"engine": spec.engine, "effect": spec.effect, "element": spec.name, "seed": int(spec.seed),
            "spec_hash": spec_hash, "version": gvfx.__version__, "ocio_config": config_name(),
            "size_m": float(spec.size_m)}


def _open_version(root: Path, spec_hash: str, resume: bool, info: dict) -> tuple[Path, bool]:
    """A folder to write into: the resumable version with the same hash, or the next new one."""
    if resume:
        found = find_resumable(root, spec_hash)
        if found is not None:
            return found, True
    vdir = new_version(root, {**info, "spec_hash": spec_hash, "status": "rendering", "created": now_iso()})
    return vdir, False


def _write_element(path: Path, ef: ElementFrame, meta: dict, colorspace: str, frame: int) -> None:
    from gvfx.exr import write_layers

    layers = {"holdout": ef.holdout, **ef.extra}
    # Z is inf wherever alpha is 0 *as stored* (half): a 1e-9 alpha rounds to 0 in the file
    z = np.where(ef.rgba[..., 3].astype(np.float16) == 0, np.float32(np.inf), ef.z).astype(np.float32)
    write_layers(path, rgba=ef.rgba, z=z, layers=layers, colorspace=colorspace,
                 metadata={**meta, "frame": int(frame)})


def _read_matched_layers(path: Path) -> dict[str, np.ndarray]:
    """The display-window layers of a written element that rebuild the comp (see gvfx.match.stage)."""
    from gvfx.exr import read_exr

    img = read_exr(path)
    out: dict[str, np.ndarray] = {"rgba": img.rgba()}
    for name in ("holdout", "shadow", "lightwrap", "grain", "platelight"):
        if any(c.startswith(name + ".") for c in img.channels):
            lay = img.layer(name)
            out[name] = lay[..., 0] if name in ("holdout", "shadow") else lay[..., :3]
    out.setdefault("holdout", np.zeros(out["rgba"].shape[:2], np.float32))
    return out


@dataclass
class _ElementMatch:
    """Everything the match stage needs of one element for the whole shot."""

    spec: ElementSpec  # on the overscan canvas
    settings: object  # MatchSettings
    margin: int
    ctx: object  # PlateContext on the overscan canvas
    distort: np.ndarray | None
    estimates: object = None  # MatchEstimates


def _distort_map(settings, width: int, height: int, margin: int) -> np.ndarray | None:
    from gvfx.match.lens import RadialModel, radial_source_px, stmap_source_px

    if settings.stmap:
        from gvfx.exr import read_exr

        img = read_exr(settings.stmap)
        st = img.rgba()[..., :2]
        if st.shape[:2] != (height, width):
            raise InputError(f"ST-map is {st.shape[1]}x{st.shape[0]}, the plate {width}x{height}", path=settings.stmap,
                             hint="give an ST-map of the plate's resolution (match.stmap)")
        return stmap_source_px(st, margin)
    if settings.k1 or settings.k2:
        return radial_source_px(RadialModel(settings.k1, settings.k2), width, height, margin)
    return None


def _first_visible(engine, em: _ElementMatch, cache_dir: Path, frames: list[int]) -> tuple[int, np.ndarray] | None:
    """The element's first frame with visible pixels (display window), trying up to 8 frames."""
    from gvfx.match.lens import crop

    start = em.spec.start_frame if em.spec.start_frame is not None else frames[0]
    cands = [f for f in frames if f >= start] or frames
    tried = sorted({cands[min(i, len(cands) - 1)] for i in (0, 1, 2, 4, 8, 16, 32, 64)})
    for f in tried:
        rgba = crop(engine.render_frame(em.spec, em.ctx, f, cache_dir).rgba, em.margin)
        if float(rgba[..., 3].max(initial=0)) > 0.01 and int((rgba[..., 3] > 0.01).sum()) >= 16:
            return f, rgba
    return None


def _match_estimates(plate: Plate, frames: list[int], em: _ElementMatch, engine, cache_dir: Path,
                     shared: dict) -> object:
    """Per-shot estimates of one element (plate measurements shared between elements)."""
    from gvfx.match.stage import PlateSample, estimate

    mid = frames[len(frames) // 2]
    if "sample" not in shared:
        try:
            z = plate.depth(mid)
        except GvfxError as exc:
            log.warning("match: no plate depth (%s): depth-based matching is off", exc)
            z = None
        shared["sample"] = PlateSample(mid, plate.measurable_rgb(mid), z, plate.camera)
    first = None
    if em.settings.colour_strength > 0 and em.settings.colour_match is None:
        first = _first_visible(engine, em, cache_dir, frames)
    return estimate(em.settings, shared["sample"], element_rgba=None if first is None else first[1],
                    element_plate_rgb=None if first is None else plate.measurable_rgb(first[0]),
                    light_hint=em.spec.params.get("light_dir"), cache=shared, effect=em.spec.effect)


def _with_light(spec: ElementSpec, estimates, engine, plate_rgb: np.ndarray | None = None) -> ElementSpec:
    """The spec with the shot's light for effects that take it and were not given it (params whose
    default is None: the 3D insert, shaded and casting its shadow from the light the match stage uses):
    ``light_dir`` from the match estimates, ``plate_mean_rgb`` the middle frame's mean colour."""
    info = engine.effects().get(spec.effect) if hasattr(engine, "effects") else None
    if info is None:
        return spec
    takes = {p.name for p in info.params if p.default is None}
    add = {}
    if "light_dir" in takes and spec.params.get("light_dir") is None and getattr(estimates, "light_dir", None):
        add["light_dir"] = tuple(estimates.light_dir)
    if "plate_mean_rgb" in takes and spec.params.get("plate_mean_rgb") is None and plate_rgb is not None:
        px = np.asarray(plate_rgb, np.float64)[::4, ::4].reshape(-1, 3)
        px = px[np.isfinite(px).all(axis=1)]
        if len(px):
            add["plate_mean_rgb"] = tuple(round(float(x), 6) for x in px.mean(axis=0))
    return replace(spec, params={**spec.params, **add}) if add else spec


SHOT_LOCK_NAME = ".gvfx.lock"


def shot_lock(job: Job, *, resume: bool, wait_s: float | None = 0.0):
    """The shot lock of ``job``'s output root: shared for ``resume`` renders, exclusive otherwise."""
    from gvfx.lock import FileLock

    return FileLock(job.output / SHOT_LOCK_NAME, timeout=wait_s, shared=resume, what="shot lock",
                    hint="wait for it, or use --wait-lock SECONDS (farm chunks use --resume and share it)")


def render_job(job: Job, *, frames: tuple[int, int] | None = None, resume: bool = False,
               progress: StageProgress | None = None, cancel: Callable[[], bool] | None = None,
               write_timeline_file: bool = True, sim_only: bool = False,
               wait_lock: float | None = 0.0) -> RenderResult:
    """Render every element of ``job`` (optionally only ``frames``) and the comp; see module doc.

    ``sim_only`` stops after the sim caches, the match estimates and the new versions exist: the farm's
    first step. Chunks then run with ``resume=True`` and write into those versions.
    ``wait_lock``: seconds to wait for the shot lock held by another render (0 = refuse at once,
    None = wait forever); ``resume`` renders share the lock, so chunks never wait for each other.
    """
    from gvfx.job import check_write_paths

    check_write_paths(job)
    try:
        job.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, "the output folder", job.output) from None
    with shot_lock(job, resume=resume, wait_s=wait_lock):
        return _render_job(job, frames=frames, resume=resume, progress=progress, cancel=cancel,
                           write_timeline_file=write_timeline_file, sim_only=sim_only)


def _render_job(job: Job, *, frames: tuple[int, int] | None, resume: bool, progress: StageProgress | None,
                cancel: Callable[[], bool] | None, write_timeline_file: bool, sim_only: bool) -> RenderResult:
    plate = open_plate(job)
    ctx = plate.context()
    all_frames = plate.frames
    if frames is not None:
        first, last = frames
        if first < all_frames[0] or last > all_frames[-1]:
            raise InputError(f"--frames {first}-{last} is outside the plate range {all_frames[0]}-{all_frames[-1]}")
        todo = [f for f in all_frames if first <= f <= last]
    else:
        todo = list(all_frames)
    prog = progress or (lambda stage, done, total: None)
    out = job.output
    out.mkdir(parents=True, exist_ok=True)

    # 1. validate and simulate every element once (the sim cache is shared by every chunk); elements
    #    render on an overscan canvas (gvfx.match.lens), so the margin is part of the cache key
    from gvfx.match.lens import overscan_context, overscan_margin, overscan_spec

    engines, hashes, caches, ems = {}, {}, {}, {}
    ctx_by_margin: dict[int, object] = {}
    for spec in job.elements:
        eng = get_engine(spec.engine)
        st = job.match_settings(spec.name)
        m = overscan_margin(plate.width, st.overscan_px)
        if m not in ctx_by_margin:
            ctx_by_margin[m] = overscan_context(ctx, m)
        ems[spec.name] = _ElementMatch(overscan_spec(spec, m, plate.width, plate.height), st, m, ctx_by_margin[m],
                                       _distort_map(st, plate.width, plate.height, m))
        eng.validate(ems[spec.name].spec, ems[spec.name].ctx)
        engines[spec.name] = eng
        sim_hash = hashlib.sha256(f"{element_spec_hash(spec, job, all_frames)}:overscan{m}".encode()).hexdigest()[:16]
        caches[spec.name] = out / "cache" / f"{spec.name}-{sim_hash}"
        match_blob = json.dumps(st.to_dict(), sort_keys=True, default=str)
        if st.stmap:
            match_blob += _file_hash(Path(st.stmap)) or ""
        hashes[spec.name] = hashlib.sha256(f"{sim_hash}:{match_blob}".encode()).hexdigest()[:16]
    for spec in job.elements:
        stage = f"sim {spec.name} ({spec.effect})"
        em = ems[spec.name]
        engines[spec.name].prepare(em.spec, em.ctx, caches[spec.name],
                                   progress=lambda d, t, m="", s=stage: prog(s, d, t),
                                   **({"cancel": cancel} if getattr(engines[spec.name], "accepts_cancel", False) else {}))
        if cancel and cancel():
            raise CancelledError("render cancelled")

    # 1b. match estimates, once per shot (never per frame or per chunk: nothing flickers)
    shared: dict = {}
    for i, spec in enumerate(job.elements):
        em = ems[spec.name]
        em.estimates = _match_estimates(plate, all_frames, em, engines[spec.name], caches[spec.name], shared)
        em.spec = _with_light(em.spec, em.estimates, engines[spec.name], shared["sample"].rgb)
        prog("match estimates", i + 1, len(job.elements))

    # 2. versions (a disk error while opening them, or marking them, removes the ones this render made)
    created: list[Path] = []
    try:
        results, comp_out, track = _open_outputs(job, plate, out, all_frames, todo, hashes, caches, ems, engines,
                                                 resume, sim_only, write_timeline_file, created)
    except BaseException:
        _remove_new_versions(created)
        raise
    if sim_only:
        todo = []
    try:
        _render_frames(job, plate, todo, resume, results, comp_out, ems, engines, caches, prog, cancel)
    except CancelledError:
        track.end(cancelled=True)
        raise
    except BaseException as exc:
        track.end(error=f"{type(exc).__name__}: {exc}")
        raise
    timeline = track.end()
    return RenderResult(plate, results, comp_out, timeline, {n: em.estimates for n, em in ems.items()})


def _remove_new_versions(created: list[Path]) -> None:
    """Undo the versions a failed start made: their ``version.json`` and folder (no frame is in them yet)."""
    for vdir in created:
        try:
            (vdir / "version.json").unlink(missing_ok=True)
            vdir.rmdir()
        except OSError as exc:
            log.warning("could not remove the unfinished version %s: %s", vdir, exc)


def _open_outputs(job: Job, plate: Plate, out: Path, all_frames: list[int], todo: list[int], hashes: dict,
                  caches: dict, ems: dict, engines: dict, resume: bool, sim_only: bool, write_timeline_file: bool,
                  created: list[Path]) -> tuple[dict, "SequenceOutput | None", ShotStateTracker]:
    """Open (or resume) every element's and the comp's version and mark them ``rendering``."""
    results: dict[str, SequenceOutput] = {}
    for spec in job.elements:
        h = hashes[spec.name]
        vdir, resumed = _open_version(out / "elements" / spec.name, h, resume,
                                      {"element": spec.name, "effect": spec.effect, "engine": spec.engine,
                                       "seed": spec.seed, "frames": [all_frames[0], all_frames[-1]],
                                       "job": str(job.source) if job.source else None,
                                       "cache": _rel(caches[spec.name], out), "size_m": float(spec.size_m),
                                       "kind": "element", **_model_fields(spec)})
        if resumed:
            log.info("resuming %s in %s", spec.name, vdir)
        else:
            created.append(vdir)
        meta = {**_element_metadata(spec, h, job.plate.colorspace), **ems[spec.name].estimates.metadata(),
                "gvfx:match:settings": json.dumps(ems[spec.name].settings.to_dict(), sort_keys=True, default=str)}
        if hasattr(engines[spec.name], "metadata"):  # e.g. the diffusion engine: model, hashes, prompt, licences
            meta.update(engines[spec.name].metadata(spec))
        results[spec.name] = SequenceOutput(spec.name, vdir, str(vdir / f"{spec.name}.####.exr"), todo, h, meta)
    comp_out = None
    if job.comp:
        comp_hash = hashlib.sha256("".join(hashes[s.name] for s in job.elements).encode()).hexdigest()[:16]
        vdir, resumed = _open_version(out / "comp", comp_hash, resume,
                                      {"elements": [s.name for s in job.elements],
                                       "frames": [all_frames[0], all_frames[-1]],
                                       "job": str(job.source) if job.source else None, "kind": "comp"})
        if not resumed:
            created.append(vdir)
        comp_out = SequenceOutput("comp", vdir, str(vdir / "comp.####.exr"), todo, comp_hash,
                                  {"kind": "comp", "spec_hash": comp_hash, "version": gvfx.__version__})

    outputs = list(results.values()) + ([comp_out] if comp_out else [])
    track = ShotStateTracker(job, plate, outputs, all_frames, write_timeline_file)
    track.start(clean_tmp=resume)
    return results, comp_out, track


def _render_frames(job: Job, plate: Plate, todo: list[int], resume: bool, results: dict[str, SequenceOutput],
                   comp_out: SequenceOutput | None, ems: dict, engines: dict, caches: dict, prog: StageProgress,
                   cancel: Callable[[], bool] | None) -> None:
    """Step 3 of a render: every frame of ``todo``, elements and comp, skipping what ``resume`` finds."""

    # 3. frames: render and match every element, write its layers, rebuild the comp from them (the
    #    recipe of gvfx.match.stage); writes overlap the next frame's work
    from gvfx.exr import write_layers
    from gvfx.match.lens import pad_edge
    from gvfx.match.stage import as_stored, grain_seed, layer_dict, match_frame, occlude, rebuild_comp, write_matched
    from gvfx.sequence import frame_path

    pending: list[Future] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gvfx-write") as pool:
        for i, f in enumerate(todo):
            if cancel and cancel():
                raise CancelledError("render cancelled", frame=f)
            comp_path = frame_path(comp_out.pattern, f) if comp_out else None
            need_comp = comp_path is not None and not (resume and comp_path.exists())
            paths = {s.name: frame_path(results[s.name].pattern, f) for s in job.elements}
            # a frame's elements are rendered together (their holdouts include each other)
            have_all = resume and all(p.exists() for p in paths.values())
            layers = []
            if have_all:
                if need_comp:
                    layers = [_read_matched_layers(paths[s.name]) for s in job.elements]
            else:
                plate_rgba = plate.measurable_rgb(f)  # NaN where the file held NaN/Inf: left out of the match
                plate_z = plate.depth(f)
                padded: dict[int, tuple[np.ndarray, np.ndarray]] = {}
                mfs = []
                for spec in job.elements:
                    em = ems[spec.name]
                    if em.margin not in padded:
                        padded[em.margin] = (pad_edge(plate_rgba, em.margin), pad_edge(plate_z, em.margin))
                    prgb, pz = padded[em.margin]
                    ef = engines[spec.name].render_frame(em.spec, em.ctx, f, caches[spec.name])
                    mfs.append(match_frame(ef, frame=f, plate_rgb=prgb, plate_z=pz, track=em.ctx.camera,
                                           settings=em.settings, estimates=em.estimates,
                                           seed=grain_seed(spec.seed, f), element_shutter_frames=spec.shutter_frames,
                                           margin=em.margin, distort_src_px=em.distort))
                occlude(mfs)
                bad = plate.nonfinite_px.get(f, 0)
                if bad:
                    log.warning("%s (frame %d): %d plate pixels are NaN/Inf: left out of the match", plate.path(f),
                                f, bad)
                for spec, mf in zip(job.elements, mfs):
                    meta = {**results[spec.name].metadata, "plate_nonfinite_px": int(bad)}
                    pending.append(pool.submit(write_matched, paths[spec.name], mf, width=plate.width,
                                               height=plate.height, metadata=meta,
                                               colorspace=job.plate.colorspace, frame=f))
                layers = [as_stored(layer_dict(mf)) for mf in mfs]
            if need_comp:
                comp = rebuild_comp(plate.rgba(f), layers)
                pending.append(pool.submit(write_layers, comp_path, rgba=comp, colorspace=job.plate.colorspace,
                                           metadata={**comp_out.metadata, "frame": int(f)}))
            # keep memory flat: wait for old writes before queuing many more
            while len(pending) > 2 * (len(job.elements) + 1):
                pending.pop(0).result()
            prog("render", i + 1, len(todo))
        for fut in pending:
            fut.result()


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX) when inside it, else absolute."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


def _model_fields(spec: ElementSpec) -> dict:
    """``model`` and ``prompt`` of an element (the diffusion engine's params), when it has them."""
    return {k: spec.params[k] for k in ("model", "prompt", "negative_prompt") if spec.params.get(k) is not None}
