"""The camera solve: what it produces (:class:`Solve`) and how it is computed from a plate.

A :class:`Solve` is the camera and sparse structure recovered from the plate itself, in gvfx's
conventions: world Y-up in metres (ground plane at y=0), camera-to-world matrices per plate frame,
intrinsics at plate resolution.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gvfx.analyze.orient import align_to_ground, camera_depths, scale_from_points
from gvfx.camera import DEFAULT_FOCAL_MM, DEFAULT_HAPERTURE_MM, Camera, CameraTrack
from gvfx.errors import AnalyzeError

log = logging.getLogger(__name__)


@dataclass
class Solve:
    """A solved plate camera plus its sparse point cloud.

    ``observations`` maps a plate frame to (point ids (M,) int into ``points``, uv (M, 2) float64 plate
    pixels, origin top-left, centres at i+0.5). ``static`` is ``"moving"``, ``"locked_off"`` or ``"nodal"``;
    a static solve has no usable parallax, so ``points`` may be empty and depth must come from an
    estimator or a depth pass.
    """

    track: CameraTrack
    points: np.ndarray
    point_colors: np.ndarray | None
    point_errors: np.ndarray
    observations: dict[int, tuple[np.ndarray, np.ndarray]]
    registered: list[int]
    interpolated: list[int]
    focal_mm: float
    focal_estimated: bool
    static: str
    scale_source: str
    reprojection_error_px: float
    warnings: list[str] = field(default_factory=list)

    @property
    def frames(self) -> list[int]:
        """The plate frames the track covers."""
        return list(self.track.frames)

    @property
    def is_static(self) -> bool:
        return self.static != "moving"


# ----------------------------------------------------------------------------------------- options

#: A moving solve below this many frames is refused: too little to register and check.
MIN_FRAMES = 3
#: Median SIFT keypoints per proxy frame below which the plate counts as textureless.
MIN_FEATURES = 60
#: Camera-centre spread / median point depth below which a solve has no usable baseline (nodal).
MIN_BASELINE_RATIO = 0.004
#: The documented default scale: the first frame's camera this high above the fitted ground.
DEFAULT_CAMERA_HEIGHT_M = 1.6

ImagesFn = Callable[[int], np.ndarray]
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ScalePoints:
    """Two plate pixels on ``frame`` whose world distance is ``distance_m``."""

    uv1: tuple[float, float]
    uv2: tuple[float, float]
    distance_m: float
    frame: int


@dataclass(frozen=True)
class SolveOptions:
    """How to solve. ``focal_mm`` None: estimated. ``proxy_width``: solve-image width in pixels."""

    focal_mm: float | None = None
    haperture_mm: float = DEFAULT_HAPERTURE_MM
    proxy_width: int = 960
    camera_height_m: float | None = None
    scale_points: ScalePoints | None = None
    camera_model: str = "SIMPLE_PINHOLE"
    max_features: int = 4096
    overlap: int = 8
    seed: int = 0
    timeout_s: float | None = None  # default: scaled by frame count and proxy size
    num_threads: int = 1

    def timeout_for(self, n_frames: int) -> float:
        if self.timeout_s is not None:
            return float(self.timeout_s)
        size = (self.proxy_width / 960.0) ** 2
        return 90.0 + 8.0 * n_frames * max(size, 0.25)


# ------------------------------------------------------------------------------- proxies + worker

def proxy_size(width: int, height: int, proxy_width: int) -> tuple[int, int]:
    """The proxy resolution: ``proxy_width`` wide (never upscaled), same aspect, even sizes."""
    pw = min(int(proxy_width), int(width))
    ph = max(2, int(round(height * pw / width)))
    return pw, ph


def write_proxies(frames: list[int], images: ImagesFn, folder: Path, size: tuple[int, int], *,
                  matte: ImagesFn | None = None, progress: ProgressFn | None = None) -> list[str]:
    """Write display-referred 8-bit PNG proxies (and COLMAP masks from the matte); returns image names.

    Runs in the main process (never where pycolmap is loaded: see FIELD_NOTES). Masks: COLMAP reads
    ``masks/<image name>.png`` and ignores features where the mask is 0, so white matte -> 0.
    """
    from PIL import Image
    from scipy.ndimage import maximum_filter

    from gvfx.color import preview_srgb

    img_dir = folder / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    mask_dir = folder / "masks"
    if matte is not None:
        mask_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for k, f in enumerate(frames):
        name = f"f{k:05d}.png"
        rgb = np.asarray(images(f), dtype=np.float32)[..., :3]
        im = Image.fromarray(preview_srgb(rgb)).resize(size, Image.Resampling.LANCZOS)
        im.save(img_dir / name)
        if matte is not None:
            m = np.asarray(matte(f), dtype=np.float32)
            m = m[..., 0] if m.ndim == 3 else m
            small = np.asarray(Image.fromarray((np.clip(m, 0, 1) * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR))
            ignore = maximum_filter(small > 127, size=5)  # no features on the matte's edge either
            Image.fromarray(np.where(ignore, 0, 255).astype(np.uint8)).save(mask_dir / f"{name}.png")
        names.append(name)
        if progress:
            progress("proxies", k + 1, len(frames))
    return names


_LOG_PATTERNS = (
    ("features", re.compile(r"Processed file \[(\d+)/(\d+)\]")),
    ("matching", re.compile(r"Processing image \[(\d+)/(\d+)\]")),
    ("mapping", re.compile(r"num_reg_frames=(\d+)\)")),
)


def worker_environment() -> dict[str, str]:
    """The worker's environment: one OpenMP/BLAS thread, so sparse solves sum in one order on any CPU.

    COLMAP's own thread pools are sized by the protocol's ``*_threads``; the bundled OpenMP runtime and
    BLAS would otherwise split reductions across threads in an order that varies between machines."""
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = "1"
    if _cpu_has("avx2", "fma"):
        # pycolmap's static OpenBLAS picks its kernels by CPU (Haswell, SkylakeX, Zen…), and the kernels
        # round descriptor distances differently: pin the one every AVX2 machine runs, for the same matches.
        env["OPENBLAS_CORETYPE"] = "Haswell"
    return env


def _cpu_has(*flags: str) -> bool:
    """Whether /proc/cpuinfo lists every one of these CPU flags (False where there is no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    have = set(line.split(":", 1)[-1].split())
    return all(f in have for f in flags)


def run_worker(args: dict, *, timeout_s: float, n_images: int, progress: ProgressFn | None = None
               ) -> tuple[dict, dict[str, np.ndarray]]:
    """Run ``gvfx.analyze.colmap_worker`` in a subprocess, reporting progress from its log; kill it on timeout."""
    work = Path(args["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    args_path = work / "worker_args.json"
    args_path.write_text(json.dumps(args))
    log_path = work / "colmap.log"
    Path(args["out_json"]).unlink(missing_ok=True)
    t0 = time.monotonic()
    with open(log_path, "wb") as log_fh:
        proc = subprocess.Popen([sys.executable, "-m", "gvfx.analyze.colmap_worker", str(args_path)],
                                stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True,
                                env=worker_environment())
        seen: dict[str, int] = {}
        try:
            while proc.poll() is None:
                if time.monotonic() - t0 > timeout_s:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    raise AnalyzeError(f"the camera solve took longer than {timeout_s:.0f} s and was stopped",
                                       path=log_path, hint="solve fewer frames (--frames) or a smaller proxy "
                                       "(--proxy-width), or give the camera")
                if progress:
                    _report_log(log_path, n_images, seen, progress)
                time.sleep(0.25)
        except BaseException:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
    if progress:
        _report_log(log_path, n_images, seen, progress)
    out_json = Path(args["out_json"])
    if not out_json.is_file():
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise AnalyzeError(f"the COLMAP worker died (exit code {proc.returncode}): {' | '.join(tail)}",
                           path=log_path, hint="run `gvfx doctor`; check memory and the proxy size")
    result = json.loads(out_json.read_text())
    if result.get("status") != "ok":
        log.debug("worker traceback:\n%s", result.get("traceback", ""))
        raise AnalyzeError(f"the COLMAP solve failed: {result.get('message')}", path=log_path,
                           hint="see the log; check the plate frames")
    with np.load(args["out_npz"]) as z:
        arrays = {k: z[k] for k in z.files}
    return result, arrays


def _report_log(path: Path, n_images: int, seen: dict[str, int], progress: ProgressFn) -> None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    for stage, rx in _LOG_PATTERNS:
        hits = rx.findall(text)
        if not hits:
            continue
        done = int(hits[-1][0] if isinstance(hits[-1], tuple) else hits[-1])
        if seen.get(stage) != done:
            seen[stage] = done
            progress(stage, min(done, n_images), n_images)


# ---------------------------------------------------------------------------------- conversions

_FLIP = np.diag([1.0, -1.0, -1.0])  # OpenCV camera (Y down, Z forward) <-> gvfx camera (Y up, -Z forward)


def colmap_to_cam_to_world(r_cw: np.ndarray, t_cw: np.ndarray) -> np.ndarray:
    """COLMAP's world-to-camera (OpenCV axes) -> gvfx's 4x4 camera-to-world (Y up, looking down -Z)."""
    r = np.asarray(r_cw, dtype=np.float64)
    m = np.eye(4)
    m[:3, :3] = r.T @ _FLIP
    m[:3, 3] = -r.T @ np.asarray(t_cw, dtype=np.float64)
    return m


def _interpolate(frames: list[int], known: dict[int, np.ndarray]) -> np.ndarray:
    """(N, 4, 4) matrices for every frame: known ones kept, others interpolated (held past the ends)."""
    kf = sorted(known)
    partial = CameraTrack(Camera(DEFAULT_FOCAL_MM, DEFAULT_HAPERTURE_MM, 2, 2), tuple(kf),
                          np.stack([known[f] for f in kf]))
    return np.stack([known[f] if f in known else partial.transform(f) for f in frames])


# ------------------------------------------------------------------------------------- the solve

def solve_camera(frames: list[int], images: ImagesFn, width: int, height: int,
                 options: SolveOptions = SolveOptions(), *, matte: ImagesFn | None = None,
                 work_dir: str | Path | None = None, progress: ProgressFn | None = None,
                 stage_seconds: dict[str, float] | None = None) -> Solve:
    """Solve the plate camera from its pixels.

    ``images(frame)`` gives (H, W, 3) float32 scene-linear ACEScg at plate resolution ``width x height``;
    ``matte(frame)`` (optional) gives (H, W) 0..1 with white on moving things to ignore. Raises
    :class:`AnalyzeError` with what to give instead when the plate cannot be solved.
    """
    frames = [int(f) for f in frames]
    if len(frames) < MIN_FRAMES:
        raise AnalyzeError(f"cannot solve a camera from {len(frames)} frame(s); at least {MIN_FRAMES} are needed",
                           hint="give a longer frame range, or give the camera (--focal-mm / camera.file) and a "
                                "depth pass (--depth user --depth-pass)")
    if options.focal_mm is not None and options.focal_mm <= 0:
        raise AnalyzeError(f"focal length {options.focal_mm} mm must be positive", hint="e.g. --focal-mm 35")
    seconds = stage_seconds if stage_seconds is not None else {}
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="gvfx-solve-")
        work_dir = tmp.name
    work = Path(work_dir)
    try:
        pw, ph = proxy_size(width, height, options.proxy_width)
        t0 = time.perf_counter()
        names = write_proxies(frames, images, work, (pw, ph), matte=matte, progress=progress)
        seconds["proxies"] = time.perf_counter() - t0
        focal_px = None if options.focal_mm is None else options.focal_mm / options.haperture_mm * pw
        args = {"version": 1, "image_dir": str(work / "images"), "image_names": names, "work_dir": str(work / "colmap"),
                "out_json": str(work / "colmap" / "result.json"), "out_npz": str(work / "colmap" / "result.npz"),
                "focal_px": focal_px, "camera_model": options.camera_model,
                "mask_dir": str(work / "masks") if matte is not None else None,
                "max_features": options.max_features, "overlap": options.overlap, "num_threads": options.num_threads,
                "mapping_threads": 1,  # mapping in one thread: no order of thread completion can steer it
                "max_runtime_s": options.timeout_for(len(frames)) * 0.7, "seed": options.seed}
        t0 = time.perf_counter()
        result, arrays = run_worker(args, timeout_s=options.timeout_for(len(frames)), n_images=len(frames),
                                    progress=progress)
        seconds["colmap"] = time.perf_counter() - t0
        for k, v in result.get("seconds", {}).items():
            seconds[f"colmap_{k}"] = float(v)
        return _build_solve(frames, names, width, height, (pw, ph), options, result, arrays)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _pair_matches(arrays: dict[str, np.ndarray]) -> list:
    from gvfx.analyze.static import PairMatches

    mp = arrays.get("match_pair", np.zeros((0, 2), np.int32))
    out = []
    if len(mp) == 0:
        return out
    keys, inverse = np.unique(mp, axis=0, return_inverse=True)
    for k, (i, j) in enumerate(keys):
        sel = inverse.ravel() == k
        out.append(PairMatches(int(i), int(j), arrays["match_uv1"][sel].astype(np.float64),
                               arrays["match_uv2"][sel].astype(np.float64)))
    return out


def _build_solve(frames: list[int], names: list[str], width: int, height: int, proxy: tuple[int, int],
                 options: SolveOptions, result: dict, arrays: dict[str, np.ndarray]) -> Solve:
    from gvfx.analyze.static import motion_stats

    pw, ph = proxy
    to_plate = width / pw
    kp = [result["num_keypoints"].get(n, 0) for n in names]
    median_kp = float(np.median(kp)) if kp else 0.0
    if median_kp < MIN_FEATURES:
        raise AnalyzeError(f"the plate is textureless: {median_kp:.0f} features per frame (at least {MIN_FEATURES} "
                           "needed)", hint="give the camera (--focal-mm for a locked-off shot, or camera.file) "
                           "and a depth pass (--depth user --depth-pass), or a plate with visible detail")
    pairs = _pair_matches(arrays)
    good_pairs = [p for p in pairs if len(p.uv_i) >= 15]
    if not good_pairs:
        raise AnalyzeError("no two frames of the plate match each other",
                           hint="check that the frames are one continuous shot; give the camera instead")
    stats = motion_stats(good_pairs)
    log.info("motion: median %.2f px, homography residual %.2f px over %d pairs", stats.median_motion_px,
             stats.homography_residual_px, stats.pairs_used)
    warnings: list[str] = []
    if stats.locked_off:
        return _static_solve("locked_off", frames, width, height, proxy, options, pairs, stats, warnings)

    images = result.get("images") or {}
    index = {n: k for k, n in enumerate(names)}
    registered_idx = sorted(index[n] for n in images)
    c2w_colmap = {frames[index[n]]: colmap_to_cam_to_world(np.asarray(v["R"]), np.asarray(v["t"]))
                  for n, v in images.items()}
    pts = arrays.get("points_xyz", np.zeros((0, 3)))
    if len(registered_idx) >= 2 and len(pts) >= 10:
        centres = np.stack([m[:3, 3] for m in c2w_colmap.values()])
        depth = float(np.median(np.concatenate(
            [camera_depths(m, pts) for m in list(c2w_colmap.values())[:: max(1, len(c2w_colmap) // 8)]])))
        spread = float(np.max(np.linalg.norm(centres - centres.mean(axis=0), axis=1)) * 2)
        baseline = spread / max(abs(depth), 1e-12)
    else:
        baseline = 0.0
    if baseline < MIN_BASELINE_RATIO:
        if stats.homography_fits or len(registered_idx) < 2:
            return _static_solve("nodal", frames, width, height, proxy, options, pairs, stats, warnings)
        raise AnalyzeError(f"the camera solve failed: {len(registered_idx)} of {len(frames)} frames registered, "
                           f"baseline {baseline:.4f} of the scene depth",
                           hint="give a longer frame range, a focal length (--focal-mm), or the camera itself")
    if len(registered_idx) < max(2, len(frames) // 2):
        raise AnalyzeError(f"only {len(registered_idx)} of {len(frames)} frames registered in the camera solve",
                           hint="give a focal length (--focal-mm), a matte of moving objects (--matte), "
                                "or a shorter range")
    return _moving_solve(frames, names, width, height, proxy, options, result, arrays, c2w_colmap, warnings,
                         median_kp, to_plate)


def _moving_solve(frames, names, width, height, proxy, options, result, arrays, c2w_colmap, warnings,
                  median_kp, to_plate) -> Solve:
    pw, _ = proxy
    cam_info = result["camera"]
    f_proxy = float(cam_info["params"][0])
    focal_mm = f_proxy / pw * options.haperture_mm
    camera = Camera(focal_mm, options.haperture_mm, width, height)
    reg = sorted(c2w_colmap)
    pts = np.asarray(arrays["points_xyz"], dtype=np.float64)
    index = {n: k for k, n in enumerate(names)}
    del index
    # observations in plate pixels
    observations: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    obs_img, obs_pt, obs_uv = arrays["obs_image"], arrays["obs_point"], arrays["obs_uv"].astype(np.float64)
    for k in np.unique(obs_img):
        sel = obs_img == k
        observations[frames[int(k)]] = (obs_pt[sel].astype(np.int64), obs_uv[sel] * to_plate)
    mats = np.stack([c2w_colmap[f] for f in reg])
    rot, foot, h0 = align_to_ground(mats, pts, warnings)
    if options.scale_points is not None:
        scale = scale_from_points(options.scale_points, reg, mats, camera, pts, observations)
        scale_source = "hint:points"
    elif options.camera_height_m is not None:
        scale = options.camera_height_m / max(h0, 1e-12)
        scale_source = "hint:camera_height"
    else:
        scale = DEFAULT_CAMERA_HEIGHT_M / max(h0, 1e-12)
        scale_source = f"default:camera_height_{DEFAULT_CAMERA_HEIGHT_M:g}m"
        warnings.append(f"no scale hint: the world is scaled so the first camera is {DEFAULT_CAMERA_HEIGHT_M:g} m "
                        "above the ground; give --camera-height or --scale-points for true metres")
    if h0 <= 1e-9 and options.scale_points is None:
        warnings.append("the first camera sits on the fitted ground plane: the scale is unreliable")

    def to_world(p: np.ndarray) -> np.ndarray:
        return scale * ((p - foot) @ rot.T)

    known = {}
    for f in reg:
        m = c2w_colmap[f].copy()
        m[:3, :3] = rot @ m[:3, :3]
        m[:3, 3] = to_world(m[:3, 3][None])[0]
        known[f] = m
    interpolated = [f for f in frames if f not in known]
    if interpolated:
        warnings.append(f"{len(interpolated)} frame(s) did not register and were interpolated: "
                        f"{', '.join(map(str, interpolated[:20]))}{' ...' if len(interpolated) > 20 else ''}")
    track = CameraTrack(camera, tuple(frames), _interpolate(frames, known),
                        metadata={"source": "gvfx analyze (COLMAP)", "scale_source": scale_source})
    rgb = arrays.get("points_rgb")
    errors = np.asarray(arrays["points_err"], dtype=np.float64) * to_plate
    return Solve(track=track, points=to_world(pts), point_colors=None if rgb is None else rgb.astype(np.float32) / 255.0,
                 point_errors=errors, observations=observations, registered=reg, interpolated=interpolated,
                 focal_mm=float(focal_mm), focal_estimated=options.focal_mm is None, static="moving",
                 scale_source=scale_source, reprojection_error_px=float(errors.mean()) if len(errors) else float("nan"),
                 warnings=warnings)


def _static_solve(kind: str, frames, width, height, proxy, options, pairs, stats, warnings) -> Solve:
    """Locked-off or nodal: rotation only (and the focal from homographies for a pan), no points."""
    from gvfx.analyze.static import solve_rotations

    pw, ph = proxy
    height_m = options.camera_height_m or DEFAULT_CAMERA_HEIGHT_M
    focal_px = None if options.focal_mm is None else options.focal_mm / options.haperture_mm * pw
    if kind == "locked_off":
        rots = [np.eye(3)] * len(frames)
        f_px = focal_px
        if f_px is None:
            warnings.append(f"locked-off camera: the focal length cannot be measured; assumed {DEFAULT_FOCAL_MM:g} mm "
                            "(give --focal-mm)")
    else:
        rots, f_px, rw = solve_rotations(len(frames), pairs, pw, ph, focal_px=focal_px)
        warnings.extend(rw)
    focal_mm = options.focal_mm if options.focal_mm else (
        f_px / pw * options.haperture_mm if f_px else DEFAULT_FOCAL_MM)
    estimated = options.focal_mm is None and f_px is not None
    camera = Camera(float(focal_mm), options.haperture_mm, width, height)
    known = {}
    for f, r in zip(frames, rots):
        if r is None:
            continue
        m = np.eye(4)
        m[:3, :3] = _FLIP @ r.T @ _FLIP
        m[:3, 3] = (0.0, height_m, 0.0)
        known[f] = m
    interpolated = [f for f in frames if f not in known]
    what = "locked off (no camera motion)" if kind == "locked_off" else "nodal (rotation only, no parallax)"
    warnings.append(f"the camera is {what}: there is no depth from the solve; take depth from an estimator or "
                    "a depth pass (depth: estimator|user, --depth estimator|user)")
    source = "hint:camera_height" if options.camera_height_m else f"static:camera_height_{height_m:g}m"
    track = CameraTrack(camera, tuple(frames), _interpolate(frames, known),
                        metadata={"source": f"gvfx analyze ({kind})", "scale_source": source})
    resid = stats.homography_residual_px * width / pw if np.isfinite(stats.homography_residual_px) else float("nan")
    return Solve(track=track, points=np.zeros((0, 3)), point_colors=None, point_errors=np.zeros(0), observations={},
                 registered=sorted(known), interpolated=interpolated, focal_mm=float(focal_mm), focal_estimated=estimated,
                 static=kind, scale_source=source, reprojection_error_px=float(resid), warnings=warnings)
