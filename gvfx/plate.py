"""A plate as engines see it: frames, pixels, metric depth and camera, read lazily frame by frame."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gvfx.camera import Camera, CameraTrack, default_camera, load_camera
from gvfx.element import PlateContext
from gvfx.errors import DepthError, LayerError, SequenceError
from gvfx.job import CameraSpec, DepthSpec, Job, PlateSpec
from gvfx.limits import check_frame_range, check_resolution

log = logging.getLogger(__name__)


class _LRU:
    """A tiny per-frame cache so depth read for placement and rendering is read once."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.items: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, key: int, make) -> np.ndarray:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = make(key)
        self.items[key] = value
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value


@dataclass
class Plate:
    """The plate sequence of a job, with its depth source and camera resolved."""

    spec: PlateSpec
    depth_spec: DepthSpec
    sequence: object  # gvfx.sequence.FrameSequence
    depth_sequence: object | None
    frames: list[int]
    width: int
    height: int
    camera: CameraTrack

    def __post_init__(self) -> None:
        self._rgba = _LRU(2)
        self._depth = _LRU(4)
        #: frame -> pixels whose colour was NaN/Inf in the file (only frames read so far, only non-zero)
        self.nonfinite_px: dict[int, int] = {}

    def path(self, frame: int) -> Path:
        return Path(self.sequence.path(frame))

    def _read(self, frame: int) -> tuple[np.ndarray, np.ndarray | None]:
        from gvfx.exr import read_exr

        img = read_exr(self.sequence.path(frame), view=self.spec.view, frame=frame)
        mask = img.nonfinite_mask
        if mask is not None:
            self.nonfinite_px[frame] = int(mask.sum())
        return img.rgba(), mask

    def rgba(self, frame: int) -> np.ndarray:
        """(H, W, 4) float32 plate pixels in the plate's colour space (NaN/Inf replaced: gvfx.exr)."""
        return self._rgba.get(frame, self._read)[0]

    def nonfinite_mask(self, frame: int) -> np.ndarray | None:
        """(H, W) bool: the frame's pixels that were NaN/Inf in the file, or None when there are none."""
        return self._rgba.get(frame, self._read)[1]

    def measurable_rgb(self, frame: int) -> np.ndarray:
        """(H, W, 3) float32: the plate's colour with NaN where the file held NaN/Inf, so that every
        estimate and statistic (they ignore NaN) leaves those pixels out instead of measuring the
        reader's stand-in values (0 or the half maximum)."""
        rgb = self.rgba(frame)[..., :3]
        mask = self.nonfinite_mask(frame)
        if mask is None:
            return rgb
        out = np.array(rgb, dtype=np.float32)
        out[mask] = np.nan
        return out

    def depth(self, frame: int) -> np.ndarray:
        """(H, W) float32 metric camera-space Z, inf where there is no depth."""
        return self._depth.get(frame, self._read_depth)

    def _read_depth(self, frame: int) -> np.ndarray:
        from gvfx.depth import Depth
        from gvfx.exr import check_same_size, read_exr

        if self.depth_spec.source == "ground":
            from gvfx.depth_ground import ground_depth

            return ground_depth(self.camera.camera_at(frame), float(self.depth_spec.height_m),
                                float(self.depth_spec.horizon))
        seq = self.depth_sequence or self.sequence
        path = seq.path(frame if not seq.is_still else seq.first)
        img = read_exr(path, view=self.spec.view, frame=frame)
        if self.depth_spec.layer:
            if self.depth_spec.layer in img.channels:
                values = img.channels[self.depth_spec.layer]
            else:
                values = img.layer(self.depth_spec.layer)[..., 0]
        else:
            values = img.depth()
            if values is None:
                raise LayerError("no depth layer (Z, depth.Z, ...) in this file", path=path, frame=frame,
                                 hint="name the depth layer in the job (depth.layer), give depth.path, or "
                                      "take a ground plane: depth: {source: ground, height_m: 1.6, horizon: 0.45}")
        check_same_size(values.shape, (self.height, self.width), path=path, frame=frame)
        d = Depth(values=values, convention=self.depth_spec.convention, near=self.depth_spec.near,
                  far=self.depth_spec.far, scale=self.depth_spec.scale, far_clip=self.depth_spec.far_clip,
                  near_is_one=self.depth_spec.near_is_one)
        try:
            return d.to_z(self.camera.camera_at(frame)).astype(np.float32)
        except DepthError as exc:
            raise DepthError(exc.message, path=path, frame=frame, hint=exc.hint) from None

    def context(self) -> PlateContext:
        return PlateContext(frames=self.frames, camera=self.camera, depth=self.depth, width=self.width,
                            height=self.height, colorspace=self.spec.colorspace, image=self.engine_rgba)

    def engine_rgba(self, frame: int) -> np.ndarray:
        """(H, W, 4) float32 the engines see: the plate with its NaN/Inf pixels black, not the reader's
        stand-ins (the half maximum for +Inf would light rain refraction and diffusion conditioning)."""
        rgba = self.rgba(frame)
        mask = self.nonfinite_mask(frame)
        if mask is None:
            return rgba
        out = np.array(rgba, dtype=np.float32)
        out[mask, :3] = 0.0
        return out


def build_camera(spec: CameraSpec, width: int, height: int, frames: list[int]) -> CameraTrack:
    """The job's camera: a file, a lens on a locked-off camera, or the documented default."""
    if spec.file:
        return load_camera(spec.file, width, height, frames=frames, prim=spec.prim)
    if spec.focal_mm:
        cam = Camera(spec.focal_mm, spec.haperture_mm, width, height, spec.vaperture_mm, spec.pixel_aspect)
    else:
        cam = default_camera(width, height)
    return CameraTrack.static(cam, frames)


def open_plate(job: Job, *, progress=None) -> Plate:
    """Discover the plate (and depth) sequences and resolve the frame range and camera.

    A job with ``camera: solve`` or ``depth: {source: sfm|estimator}`` first runs ``gvfx analyze`` into
    ``OUTPUT/analysis/<hash>/`` (reused when its report.json is complete) and takes its results.
    """
    from gvfx.exr_info import read_info
    from gvfx.sequence import discover, ranges_text

    seq = discover(job.plate.path)
    if job.plate.frames:
        first, last = job.plate.frames
        wanted = list(range(first, last + 1))
        if seq.is_still:
            frames = wanted
        else:
            absent = [f for f in wanted if f not in set(seq.frames)]
            if absent:
                raise SequenceError(f"plate frames {ranges_text(absent)} are missing on disk", path=job.plate.path,
                                    hint=f"frames on disk: {seq.first}-{seq.last}; fix plate.frames")
            frames = wanted
    else:
        if seq.missing:
            raise SequenceError(f"plate has missing frames {ranges_text(list(seq.missing))}", path=job.plate.path,
                                hint="render the missing frames or set plate.frames to a complete range")
        frames = list(seq.frames)
    check_frame_range(frames[0], frames[-1], "plate.frames", path=job.plate.path)
    info = read_info(seq.path(seq.first))
    width, height = info.width, info.height
    check_resolution(width, height, "plate", path=seq.path(seq.first))
    if needs_analysis(job):
        return _solved_plate(job, seq, frames, width, height, progress)
    depth_seq = discover(job.depth.path) if job.depth.path else None
    camera = build_camera(job.camera, width, height, frames)
    return Plate(job.plate, job.depth, seq, depth_seq, frames, width, height, camera)


def needs_analysis(job: Job) -> bool:
    """True when the job asks for a solved camera or solved depth (``gvfx analyze`` runs first)."""
    return job.camera.solve or job.depth.source in ("sfm", "estimator")


def analysis_dir(job: Job, frames: list[int]) -> Path:
    """``OUTPUT/analysis/<hash>``: keyed by the plate path, frames and every analysis setting."""
    import hashlib
    import json

    key = {"plate": str(Path(job.plate.path).resolve()), "frames": [frames[0], frames[-1]],
           "view": job.plate.view, "colorspace": job.plate.colorspace,
           "camera": [job.camera.solve, job.camera.focal_mm, job.camera.haperture_mm, job.camera.height_m,
                      job.camera.proxy_width, job.camera.file],
           "depth": [job.depth.source, job.depth.model, job.depth.path]}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(job.output) / "analysis" / digest


def _solved_plate(job: Job, seq, frames: list[int], width: int, height: int, progress) -> Plate:
    """Run (or reuse) ``gvfx analyze`` and take its camera and/or depth."""
    from dataclasses import replace

    from gvfx.analyze import AnalyzeOptions, analyze
    from gvfx.analyze.report import is_complete
    from gvfx.sequence import discover, ranges_text

    out = analysis_dir(job, frames)
    src = job.depth.source or ("user" if job.depth.path else "sfm")
    if (job.depth.source is None and job.depth.layer) or src == "ground":
        src = "none"  # the plate's own depth layer, or a ground plane: analyze only the camera
    if not is_complete(out):
        opts = AnalyzeOptions(focal_mm=job.camera.focal_mm if job.camera.solve else None,
                              haperture_mm=job.camera.haperture_mm, camera_height_m=job.camera.height_m,
                              frames=(frames[0], frames[-1]), proxy_width=job.camera.proxy_width, depth=src,
                              depth_model=job.depth.model, depth_pass=job.depth.path,
                              colorspace=job.plate.colorspace, view=job.plate.view, fps=job.fps)
        log.info("analyzing the plate into %s", out)
        analyze(job.plate.path, out, opts, progress=progress)
    else:
        log.info("reusing the plate analysis in %s", out)
    if job.camera.solve:
        camera = load_camera(out / "camera.usda", width, height, frames=frames)
    else:
        camera = build_camera(job.camera, width, height, frames)
    depth_spec, depth_seq = job.depth, (discover(job.depth.path) if job.depth.path else None)
    if src in ("sfm", "estimator", "user") and (out / "depth").is_dir() and any((out / "depth").iterdir()):
        depth_seq = discover(out / "depth" / "depth.####.exr")
        depth_spec = replace(job.depth, path=str(out / "depth" / "depth.####.exr"), layer="Z", convention="z",
                             near=None, far=None, scale=1.0, far_clip=None)
    elif src in ("sfm", "estimator"):
        raise DepthError(f"the plate analysis wrote no depth ({out / 'report.txt'} says why)",
                         hint="a locked-off or nodal camera has no depth from the solve: use depth: "
                              "{source: estimator} or {source: user, path: ...}")
    return Plate(job.plate, depth_spec, seq, depth_seq, frames, width, height, camera)
