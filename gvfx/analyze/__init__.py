"""``gvfx analyze``: solve a plate's camera and depth from its pixels.

One call, :func:`analyze`, runs the stages in order and writes into ``OUT``:

- ``camera.usda`` (Y up, metres, lens and film back in USD's tenths of a metre, a transform per plate frame) and ``camera.chan``;
- ``depth/depth.####.exr`` (``Z`` float32 metric depth and ``confidence.A``) from a depth back-end;
- ``points.ply`` (the sparse SfM points, world metres, with colours);
- ``report.json`` + ``report.txt`` (registered/interpolated frames, reprojection error, focal, scale
  source, static detection, seconds per stage, warnings). ``report.json`` is written last.

Stages report ``progress(stage, done, total)``. See docs/analyze.md.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gvfx.analyze.solve import ScalePoints, Solve, SolveOptions, solve_camera
from gvfx.errors import AnalyzeError, InputError

log = logging.getLogger(__name__)

__all__ = ["AnalyzeOptions", "AnalyzeResult", "analyze", "analyze_plate", "ScalePoints", "Solve", "SolveOptions",
           "solve_camera", "DEPTH_SOURCES", "AnalyzeError"]

DEPTH_SOURCES = ("sfm", "estimator", "user")
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class AnalyzeOptions:
    """Everything ``gvfx analyze`` takes besides the plate and the output folder."""

    focal_mm: float | None = None
    haperture_mm: float = 36.0
    matte: str | None = None               # frame pattern, white = moving things to ignore
    camera_height_m: float | None = None
    scale_points: ScalePoints | None = None
    frames: tuple[int, int] | None = None  # inclusive range; None = every plate frame
    proxy_width: int = 960
    depth: str = "sfm"                     # sfm | estimator | user | none (camera only)
    depth_model: str | None = None         # estimator: model folder
    depth_pass: str | None = None          # user: depth pass frame pattern
    depth_options: dict[str, Any] = field(default_factory=dict)
    colorspace: str = "ACEScg"
    view: str | None = None
    fps: float = 24.0

    def settings(self) -> dict[str, Any]:
        """The options as plain data (for the report and the cache key)."""
        d = asdict(self)
        if self.scale_points is not None:
            d["scale_points"] = asdict(self.scale_points)
        return d


@dataclass
class AnalyzeResult:
    out: Path
    solve: Solve
    camera_usd: Path
    camera_chan: Path
    depth_pattern: str | None
    points_ply: Path
    report_json: Path
    report_txt: Path
    seconds: dict[str, float]


def _atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    """Write through a temporary file beside ``path`` (same extension, for USD) and rename."""
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _frames_of(seq, wanted: tuple[int, int] | None, pattern: str) -> list[int]:
    from gvfx.errors import SequenceError
    from gvfx.sequence import ranges_text

    if wanted is None:
        if seq.missing:
            raise SequenceError(f"plate has missing frames {ranges_text(list(seq.missing))}", path=pattern,
                                hint="render the missing frames or give --frames with a complete range")
        return list(seq.frames)
    frames = list(range(wanted[0], wanted[1] + 1))
    absent = [f for f in frames if f not in set(seq.frames)]
    if absent:
        raise SequenceError(f"plate frames {ranges_text(absent)} are missing on disk", path=pattern,
                            hint=f"frames on disk: {seq.first}-{seq.last}; fix --frames")
    return frames


def _image_reader(seq, colorspace: str, view: str | None) -> Callable[[int], np.ndarray]:
    """``images(frame)`` -> (H, W, 3) float32 ACEScg, keeping the last two frames."""
    from gvfx.color import convert, resolve
    from gvfx.exr import read_exr

    cache: dict[int, np.ndarray] = {}
    linear = resolve(colorspace) == resolve("ACEScg")

    def images(frame: int) -> np.ndarray:
        if frame not in cache:
            rgb = read_exr(seq.path(frame), view=view, frame=frame).rgba()[..., :3]
            cache[frame] = rgb if linear else convert(rgb, colorspace, "ACEScg").astype(np.float32)
            while len(cache) > 2:
                cache.pop(next(iter(cache)))
        return cache[frame]

    return images


def _matte_reader(pattern: str) -> Callable[[int], np.ndarray]:
    """``matte(frame)`` -> (H, W) 0..1 from an EXR (alpha, else red) or an 8/16-bit image."""
    from gvfx.sequence import discover

    seq = discover(pattern)

    def matte(frame: int) -> np.ndarray:
        path = seq.path(frame if not seq.is_still else seq.first)
        if str(path).lower().endswith(".exr"):
            from gvfx.exr import read_exr

            img = read_exr(path, frame=frame)
            return img.channels["A"] if "A" in img.channels else img.rgba()[..., 0]
        from PIL import Image

        with Image.open(path) as im:
            a = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        return a

    return matte


def _depth_options(options: AnalyzeOptions) -> dict[str, Any]:
    opts = dict(options.depth_options)
    if options.depth == "estimator" and options.depth_model:
        opts.setdefault("model_dir", options.depth_model)
    if options.depth == "user":
        if not options.depth_pass:
            raise InputError("--depth user needs a depth pass", hint="give --depth-pass depth.####.exr")
        opts.setdefault("pattern", options.depth_pass)
    return opts


def analyze(plate: str | Path, out: str | Path, options: AnalyzeOptions = AnalyzeOptions(), *,
            progress: ProgressFn | None = None) -> AnalyzeResult:
    """Solve ``plate``'s camera (and depth) and write every output into ``out`` (see the module doc)."""
    from gvfx.analyze.pointcloud import write_ply
    from gvfx.analyze.report import build_report, write_report
    from gvfx.camera_io import write_chan, write_usd_camera
    from gvfx.exr import write_layers
    from gvfx.exr_info import read_info
    from gvfx.sequence import discover, frame_path

    t_all = time.perf_counter()
    if options.depth not in DEPTH_SOURCES + ("none",):
        raise InputError(f"unknown depth source {options.depth!r}", hint="use sfm, estimator or user")
    depth_opts = _depth_options(options)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    seq = discover(plate)
    frames = _frames_of(seq, options.frames, str(plate))
    info = read_info(seq.path(frames[0]), frame=frames[0])
    width, height = info.width, info.height
    images = _image_reader(seq, options.colorspace, options.view)
    matte = _matte_reader(options.matte) if options.matte else None
    seconds: dict[str, float] = {}
    from gvfx.analyze.ladder import focal_from_attributes

    meta_focal = focal_from_attributes(info.parts[0].attributes)
    sopts = SolveOptions(focal_mm=options.focal_mm, metadata_focal_mm=meta_focal, haperture_mm=options.haperture_mm,
                         proxy_width=options.proxy_width, camera_height_m=options.camera_height_m,
                         scale_points=options.scale_points)
    t0 = time.perf_counter()
    solve = solve_camera(frames, images, width, height, sopts, matte=matte, work_dir=out / "work",
                         progress=progress, stage_seconds=seconds, plate=str(seq.pattern))
    seconds["solve"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    usd = _atomic(out / "camera.usda", lambda p: write_usd_camera(p, solve.track, fps=options.fps))
    chan = _atomic(out / "camera.chan", lambda p: write_chan(p, solve.track))
    ply = _atomic(out / "points.ply", lambda p: write_ply(p, solve.points, solve.point_colors))
    seconds["write_camera"] = time.perf_counter() - t0

    depth_pattern: str | None = None
    depth_frames = 0
    if options.depth == "none":
        pass
    elif solve.is_static and options.depth == "sfm":
        solve.warnings.append("no depth written: the sfm depth back-end needs a moving camera; "
                              "rerun with --depth estimator or --depth user --depth-pass PATTERN")
    else:
        from gvfx.analyze.depth_backends import get_depth_backend

        t0 = time.perf_counter()
        backend = get_depth_backend(options.depth)
        (out / "depth").mkdir(exist_ok=True)
        depth_pattern = str(out / "depth" / "depth.####.exr")
        meta = {"gvfx:depth_source": options.depth, "gvfx:analyze": "camera solve depth"}
        prog = (lambda d, t, m="": progress("depth", d, t)) if progress else None
        for frame, z, conf in backend.estimate_sequence(frames, images, solve, progress=prog, **depth_opts):
            write_layers(frame_path(depth_pattern, frame), z=z, layers={"confidence": conf},
                         metadata={**meta, "gvfx:frame": int(frame)}, frame=frame)
            depth_frames += 1
        seconds["depth"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_all

    report = build_report(solve, plate=str(seq.pattern), frames=frames, width=width, height=height,
                          settings=options.settings(), seconds=seconds,
                          outputs={"camera_usd": str(usd), "camera_chan": str(chan), "points": str(ply),
                                   "depth": depth_pattern},
                          depth_source=options.depth if depth_pattern else "none", depth_frames=depth_frames)
    js, txt = write_report(out, report)
    log.info("analyze: %s camera, focal %.2f mm, %d/%d frames registered -> %s", solve.static, solve.focal_mm,
             len(solve.registered), len(frames), out)
    return AnalyzeResult(out, solve, usd, chan, depth_pattern, ply, js, txt, seconds)


def analyze_plate(plate: str | Path, out: str | Path, options: AnalyzeOptions | None = None,
                  **fields: Any) -> AnalyzeResult:
    """Solve a plate's camera and depth into ``out``, as ``gvfx analyze`` does.

    Options as an ``AnalyzeOptions`` or as its fields by keyword (``focal_mm=35``, ``depth="sfm"``...).
    """
    from dataclasses import replace

    try:
        opts = replace(options or AnalyzeOptions(), **fields)
    except TypeError as exc:
        raise InputError(f"analyze_plate: {exc}", hint="see gvfx.AnalyzeOptions for the fields") from None
    return analyze(plate, out, opts)
