"""The camera solve: what it produces (:class:`Solve`) and how it is computed from a plate.

A :class:`Solve` is the camera and sparse structure recovered from the plate itself, in gvfx's
conventions: world Y-up in metres (ground plane at y=0), camera-to-world matrices per plate frame,
intrinsics at plate resolution.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gvfx.analyze.colmap_run import run_worker, worker_environment, write_proxies
from gvfx.analyze.orient import align_to_ground, camera_depths, scale_from_points
from gvfx.camera import DEFAULT_FOCAL_MM, DEFAULT_HAPERTURE_MM, Camera, CameraTrack
from gvfx.errors import AnalyzeError

log = logging.getLogger(__name__)

__all__ = ["Solve", "SolveOptions", "ScalePoints", "solve_camera", "proxy_size", "colmap_to_cam_to_world",
           "run_worker", "worker_environment", "write_proxies"]


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
    motion: str = ""  # the motion class and its evidence (gvfx.analyze.motion_class)
    attempts: list[dict] = field(default_factory=list)  # the retry ladder's tries: name, registered, points

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
    metadata_focal_mm: float | None = None  # from the plate header: the ladder's last rung holds it
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
                 stage_seconds: dict[str, float] | None = None, plate: str | None = None) -> Solve:
    """Solve the plate camera from its pixels.

    ``images(frame)`` gives (H, W, 3) float32 scene-linear ACEScg at plate resolution ``width x height``;
    ``matte(frame)`` (optional) gives (H, W) 0..1 with white on moving things to ignore. The motion class
    comes from the matches (:mod:`gvfx.analyze.motion_class`); a moving camera is mapped with the retry
    ladder of :mod:`gvfx.analyze.ladder`. Raises :class:`AnalyzeError` (naming ``plate``) with what to give
    instead when the plate cannot be solved.
    """
    from gvfx.analyze.ladder import enough_registered, ladder

    frames = [int(f) for f in frames]
    if len(frames) < MIN_FRAMES:
        raise AnalyzeError(f"cannot solve a camera from {len(frames)} frame(s); at least {MIN_FRAMES} are needed",
                           path=plate, hint="give a longer frame range, or give the camera (--focal-mm / camera.file) "
                           "and a depth pass (--depth user --depth-pass)")
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
        meta_px = (None if options.metadata_focal_mm is None
                   else options.metadata_focal_mm / options.haperture_mm * pw)
        base = {"version": 1, "image_dir": str(work / "images"), "image_names": names, "work_dir": str(work / "colmap"),
                "out_json": str(work / "colmap" / "result.json"), "out_npz": str(work / "colmap" / "result.npz"),
                "focal_px": focal_px, "camera_model": options.camera_model,
                "mask_dir": str(work / "masks") if matte is not None else None,
                "max_features": options.max_features, "overlap": options.overlap, "num_threads": options.num_threads,
                "mapping_threads": 1,  # mapping in one thread: no order of thread completion can steer it
                "max_runtime_s": options.timeout_for(len(frames)) * 0.7, "seed": options.seed}
        rungs = ladder(len(frames), max_features=options.max_features, overlap=options.overlap,
                       focal_px=focal_px, metadata_focal_px=meta_px)
        attempts: list[dict] = []
        best: tuple[dict, dict[str, np.ndarray]] | None = None
        motion = None
        t_all = time.perf_counter()
        for k, rung in enumerate(rungs):
            t0 = time.perf_counter()
            result, arrays = run_worker({**base, **rung.args}, timeout_s=options.timeout_for(len(frames)),
                                        n_images=len(frames), progress=progress)
            n_reg = len(result.get("images") or {})
            attempts.append({"try": rung.name, "registered": n_reg, "points": int(len(arrays.get("points_xyz", ()))),
                             "message": result.get("message", ""), "seconds": round(time.perf_counter() - t0, 3)})
            log.info("camera solve try %d/%d (%s): %d of %d frames registered, %d points%s", k + 1, len(rungs),
                     rung.name, n_reg, len(frames), attempts[-1]["points"],
                     f" ({result['message']})" if result.get("message") else "")
            for key, v in result.get("seconds", {}).items():
                seconds[f"colmap_{key}"] = seconds.get(f"colmap_{key}", 0.0) + float(v)
            if k == 0:
                motion = _classify(result, arrays, names, plate, seed=options.seed)
                if motion.kind != "moving":
                    best = (result, arrays)
                    break
            if best is None or n_reg > len(best[0].get("images") or {}):
                best = (result, arrays)
            if enough_registered(n_reg, len(frames)) and _baseline(result, arrays, names) >= MIN_BASELINE_RATIO:
                break
        seconds["colmap"] = time.perf_counter() - t_all
        assert best is not None
        return _build_solve(frames, names, width, height, (pw, ph), options, best[0], best[1], motion=motion,
                            attempts=attempts, plate=plate)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _pair_matches(arrays: dict[str, np.ndarray], prefix: str = "match") -> list:
    """Per-pair matches from the worker's arrays: ``match`` (verified inliers) or ``raw``."""
    from gvfx.analyze.static import PairMatches

    mp = arrays.get(f"{prefix}_pair", np.zeros((0, 2), np.int32))
    out = []
    if len(mp) == 0:
        return out
    keys, inverse = np.unique(mp, axis=0, return_inverse=True)
    for k, (i, j) in enumerate(keys):
        sel = inverse.ravel() == k
        out.append(PairMatches(int(i), int(j), arrays[f"{prefix}_uv1"][sel].astype(np.float64),
                               arrays[f"{prefix}_uv2"][sel].astype(np.float64)))
    return out


def _classify(result: dict, arrays: dict[str, np.ndarray], names: list[str], plate: str | None, *, seed: int = 0):
    """The motion class from the first try's matches; a textureless or unmatched plate is an error."""
    from gvfx.analyze.motion_class import classify_motion

    kp = [result["num_keypoints"].get(n, 0) for n in names]
    median_kp = float(np.median(kp)) if kp else 0.0
    if median_kp < MIN_FEATURES:
        raise AnalyzeError(f"the plate is textureless: {median_kp:.0f} features per frame (at least {MIN_FEATURES} "
                           "needed)", path=plate, hint="give the camera (--focal-mm for a locked-off shot, or "
                           "camera.file) and a depth pass (--depth user --depth-pass), or a plate with visible detail")
    # raw matches: the verified inliers of a pair COLMAP found planar are a homography's, parallax removed
    # of the pairs COLMAP verified (the raw matches of frames that do not overlap are noise)
    verified = [p for p in _pair_matches(arrays) if len(p.uv_i) >= 15]
    if "raw_pair" in arrays:
        keep = {(p.i, p.j) for p in verified}
        verified = [p for p in _pair_matches(arrays, "raw") if (p.i, p.j) in keep]
    motion = classify_motion(verified, seed=seed)
    if motion.kind == "unknown":
        raise AnalyzeError("no two frames of the plate match each other", path=plate,
                           hint="check that the frames are one continuous shot; give the camera instead")
    return motion


def _baseline(result: dict, arrays: dict[str, np.ndarray], names: list[str]) -> float:
    """Camera-centre spread over the median point depth of a reconstruction (0 without one)."""
    images = result.get("images") or {}
    pts = arrays.get("points_xyz", np.zeros((0, 3)))
    if len(images) < 2 or len(pts) < 10:
        return 0.0
    mats = [colmap_to_cam_to_world(np.asarray(v["R"]), np.asarray(v["t"])) for v in images.values()]
    centres = np.stack([m[:3, 3] for m in mats])
    depth = float(np.median(np.concatenate([camera_depths(m, pts) for m in mats[:: max(1, len(mats) // 8)]])))
    spread = float(np.max(np.linalg.norm(centres - centres.mean(axis=0), axis=1)) * 2)
    return spread / max(abs(depth), 1e-12)


def _failure(n_frames: int, attempts: list[dict], baseline: float, n_reg: int) -> str:
    """Why a moving camera could not be solved, with every try."""
    tries = "; ".join(f"{a['try']}: {a['registered']}/{n_frames} frames" for a in attempts)
    if n_reg == 0:
        why = "COLMAP found no pair of frames to start a reconstruction from"
    elif n_reg < max(2, n_frames // 2):
        why = f"only {n_reg} of {n_frames} frames registered"
    else:
        why = f"the solved cameras barely move ({baseline:.4f} of the scene depth)"
    return (f"the camera solve failed: the matches show parallax (a moving camera, not a nodal one), but {why} "
            f"after {len(attempts)} tr{'y' if len(attempts) == 1 else 'ies'} ({tries})")


def _build_solve(frames: list[int], names: list[str], width: int, height: int, proxy: tuple[int, int],
                 options: SolveOptions, result: dict, arrays: dict[str, np.ndarray], *, motion=None,
                 attempts: list[dict] | None = None, plate: str | None = None) -> Solve:
    pw, ph = proxy
    to_plate = width / pw
    if motion is None:
        motion = _classify(result, arrays, names, plate, seed=options.seed)
    attempts = attempts if attempts is not None else []
    warnings: list[str] = []
    pairs = _pair_matches(arrays)
    if motion.kind in ("locked_off", "nodal"):
        solve = _static_solve(motion.kind, frames, width, height, proxy, options, pairs, motion, warnings)
        solve.motion = motion.describe()
        solve.attempts = attempts
        return solve
    images = result.get("images") or {}
    index = {n: k for k, n in enumerate(names)}
    c2w_colmap = {frames[index[n]]: colmap_to_cam_to_world(np.asarray(v["R"]), np.asarray(v["t"]))
                  for n, v in images.items()}
    baseline = _baseline(result, arrays, names)
    if len(images) < max(2, len(frames) // 2) or baseline < MIN_BASELINE_RATIO:
        raise AnalyzeError(_failure(len(frames), attempts or [{"try": "default", "registered": len(images)}],
                                    baseline, len(images)), path=plate,
                           hint="give the focal length (--focal-mm), a matte of moving objects (--matte), another "
                                "frame range (--frames), or the camera itself (camera.file); the log of the last "
                                "try is in the work folder's colmap/colmap.log")
    if len(attempts) > 1:
        warnings.append(f"the first camera solve registered {attempts[0]['registered']} of {len(frames)} frames; "
                        f"solved on try {len(attempts)} ({attempts[-1]['try']})")
    kp = [result["num_keypoints"].get(n, 0) for n in names]
    solve = _moving_solve(frames, names, width, height, proxy, options, result, arrays, c2w_colmap, warnings,
                          float(np.median(kp)) if kp else 0.0, to_plate)
    solve.motion = motion.describe()
    solve.attempts = attempts
    return solve


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
