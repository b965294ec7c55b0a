"""Render a job: simulate each element once into its cache, then render frames, write versioned EXR
sequences (rgba + Z + holdout, with metadata), a depth-aware comp, and the shot's OTIO timeline.

Output layout under the job's output root::

    elements/NAME/vNNN/NAME.####.exr   one version per render (never overwritten)
    comp/vNNN/comp.####.exr
    cache/NAME-HASH/                   sim cache, shared by every chunk of the same spec
    NAME.otio                          the shot timeline
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import gvfx
from gvfx.engines import get_engine
from gvfx.engines.base import ElementFrame, ElementSpec
from gvfx.errors import CancelledError, InputError
from gvfx.job import Job
from gvfx.plate import Plate, open_plate
from gvfx.versions import find_resumable, next_version, now_iso, read_version_info, write_version_info

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
    vdir = next_version(root)
    write_version_info(vdir, {**info, "spec_hash": spec_hash, "status": "rendering", "created": now_iso()})
    return vdir, False


def _write_element(path: Path, ef: ElementFrame, meta: dict, colorspace: str, frame: int) -> None:
    from gvfx.exr import write_layers

    layers = {"holdout": ef.holdout, **ef.extra}
    write_layers(path, rgba=ef.rgba, z=ef.z, layers=layers, colorspace=colorspace,
                 metadata={**meta, "frame": int(frame)})


def _read_element(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from gvfx.exr import read_exr

    img = read_exr(path)
    z = img.channels.get("Z")
    hold = img.layer("holdout")[..., 0] if any(c.startswith("holdout") for c in img.channels) else None
    rgba = img.rgba()
    z = np.where(rgba[..., 3] > 0, z, np.inf).astype(np.float32) if z is not None else np.full(rgba.shape[:2], np.inf, np.float32)
    return rgba, z, hold if hold is not None else np.zeros(rgba.shape[:2], np.float32)


def render_job(job: Job, *, frames: tuple[int, int] | None = None, resume: bool = False,
               progress: StageProgress | None = None, cancel: Callable[[], bool] | None = None,
               write_timeline_file: bool = True) -> RenderResult:
    """Render every element of ``job`` (optionally only ``frames``) and the comp; see module doc."""
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

    # 1. validate and simulate every element once (the sim cache is shared by every chunk)
    engines, hashes, caches = {}, {}, {}
    for spec in job.elements:
        eng = get_engine(spec.engine)
        eng.validate(spec, ctx)
        engines[spec.name] = eng
        hashes[spec.name] = element_spec_hash(spec, job, all_frames)
        caches[spec.name] = out / "cache" / f"{spec.name}-{hashes[spec.name]}"
    for spec in job.elements:
        stage = f"sim {spec.name} ({spec.effect})"
        engines[spec.name].prepare(spec, ctx, caches[spec.name],
                                   progress=lambda d, t, m="", s=stage: prog(s, d, t))
        if cancel and cancel():
            raise CancelledError("render cancelled")

    # 2. versions
    results: dict[str, SequenceOutput] = {}
    for spec in job.elements:
        h = hashes[spec.name]
        vdir, resumed = _open_version(out / "elements" / spec.name, h, resume,
                                      {"element": spec.name, "effect": spec.effect, "engine": spec.engine,
                                       "seed": spec.seed, "frames": [all_frames[0], all_frames[-1]],
                                       "job": str(job.source) if job.source else None})
        if resumed:
            log.info("resuming %s in %s", spec.name, vdir)
        results[spec.name] = SequenceOutput(spec.name, vdir, str(vdir / f"{spec.name}.####.exr"), todo, h,
                                            _element_metadata(spec, h, job.plate.colorspace))
    comp_out = None
    if job.comp:
        comp_hash = hashlib.sha256("".join(hashes[s.name] for s in job.elements).encode()).hexdigest()[:16]
        vdir, _ = _open_version(out / "comp", comp_hash, resume,
                                {"elements": [s.name for s in job.elements], "frames": [all_frames[0], all_frames[-1]]})
        comp_out = SequenceOutput("comp", vdir, str(vdir / "comp.####.exr"), todo, comp_hash,
                                  {"kind": "comp", "spec_hash": comp_hash, "version": gvfx.__version__})

    # 3. frames: render each element, write it, comp over the plate; writes overlap the next render
    from gvfx.comp import comp_elements
    from gvfx.exr import write_layers
    from gvfx.sequence import frame_path

    pending: list[Future] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gvfx-write") as pool:
        for i, f in enumerate(todo):
            if cancel and cancel():
                raise CancelledError("render cancelled", frame=f)
            layers = []
            comp_path = frame_path(comp_out.pattern, f) if comp_out else None
            need_comp = comp_path is not None and not (resume and comp_path.exists())
            for spec in job.elements:
                res = results[spec.name]
                path = frame_path(res.pattern, f)
                if resume and path.exists():
                    if need_comp:
                        layers.append(_read_element(path))
                    continue
                ef = engines[spec.name].render_frame(spec, ctx, f, caches[spec.name])
                pending.append(pool.submit(_write_element, path, ef, res.metadata, job.plate.colorspace, f))
                layers.append((ef.rgba, ef.z, ef.holdout))
            if need_comp:
                comp = comp_elements(plate.rgba(f), layers)
                pending.append(pool.submit(write_layers, comp_path, rgba=comp, colorspace=job.plate.colorspace,
                                           metadata={**comp_out.metadata, "frame": int(f)}))
            # keep memory flat: wait for old writes before queuing many more
            while len(pending) > 2 * (len(job.elements) + 1):
                pending.pop(0).result()
            prog("render", i + 1, len(todo))
        for fut in pending:
            fut.result()

    # 4. mark versions complete when every frame of the range is on disk
    for res in list(results.values()) + ([comp_out] if comp_out else []):
        info = read_version_info(res.version_dir)
        done = all(frame_path(res.pattern, f).exists() for f in all_frames)
        info.update({"status": "complete" if done else "partial", "updated": now_iso()})
        write_version_info(res.version_dir, info)

    timeline = None
    if write_timeline_file:
        timeline = write_shot_timeline(job, plate, results, comp_out)
    return RenderResult(plate, results, comp_out, timeline)


def _seqref(name: str, pattern: str, first: int, last: int, metadata: dict):
    from gvfx.sequence import parse_pattern
    from gvfx.timeline import SeqRef

    parts = parse_pattern(pattern)
    p = Path(pattern)
    return SeqRef(name=name, directory=str(p.parent), prefix=parts.prefix.rsplit("/", 1)[-1],
                  suffix=parts.suffix, start_frame=first, end_frame=last, padding=parts.padding, metadata=metadata)


def write_shot_timeline(job: Job, plate: Plate, elements: dict[str, SequenceOutput],
                        comp: SequenceOutput | None) -> Path:
    """The shot's OTIO timeline: plate track, one track per element (its version), the comp."""
    from gvfx.timeline import write_timeline

    first, last = plate.frames[0], plate.frames[-1]
    plate_ref = _seqref("plate", plate.sequence.pattern, first, last, {"kind": "plate"})
    els = []
    for spec in job.elements:
        res = elements[spec.name]
        info = read_version_info(res.version_dir)
        els.append(_seqref(f"{spec.name}_{res.version_dir.name}", res.pattern, first, last,
                           {**res.metadata, "status": info.get("status"), "version": res.version_dir.name}))
    comp_ref = None
    if comp is not None:
        info = read_version_info(comp.version_dir)
        comp_ref = _seqref(f"comp_{comp.version_dir.name}", comp.pattern, first, last,
                           {**comp.metadata, "status": info.get("status"), "version": comp.version_dir.name})
    return write_timeline(job.output / f"{job.name}.otio", name=job.name, fps=job.fps, plate=plate_ref,
                          elements=els, comp=comp_ref, metadata={"job": str(job.source) if job.source else None})
