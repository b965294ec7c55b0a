"""Benchmark `gvfx analyze`'s camera solve beside bare pycolmap, on plates of different character:
``demo`` (the demo's table scene, a 36° orbit with dolly and rise, 35 mm) and ``raycast:<move>`` (the
ray-cast ground, wall and boxes of tests/analyze/raycast_plates.py, 32 mm; moves: sideways, dolly,
orbit, crane, handheld, pan, locked, dolly_straight). Default: 48 frames at 1920x1080, 960 px proxies.

Prints, per plate, seconds per stage and the accuracy against the true camera (centres after a
similarity fit, rotations after the best world rotation, focal), then the same for bare pycolmap with
its default options (``extract_features``, ``match_sequential``, ``incremental_mapping``: SIMPLE_RADIAL,
all threads) on the very proxies gvfx wrote, and the time ratio gvfx / bare. Run:
``.venv/bin/python benchmarks/analyze_bench.py --plates demo,raycast:sideways``
(``--frames``, ``--width``, ``--height``, ``--proxy-width`` to change the shot; ``--repeat 2`` solves twice
and reports the largest pose difference between the runs: 0.0 when the solve is reproducible). Timings
are noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analyze"))

from analyze_plates import pose_similarity_errors, wide_track  # noqa: E402

from gvfx.analyze.solve import SolveOptions, colmap_to_cam_to_world, solve_camera  # noqa: E402
from gvfx.camera import CameraTrack  # noqa: E402
from gvfx.demo.scene import default_scene, render_plate_frame  # noqa: E402

#: bare pycolmap, defaults only, in its own process (pycolmap loaded breaks OIIO's PNG writer)
_BARE = """
import json, sys, time, pycolmap
from pathlib import Path
images, work = Path(sys.argv[1]), Path(sys.argv[2])
t0 = time.perf_counter()
db = work / "bare.db"
pycolmap.extract_features(db, images, camera_mode=pycolmap.CameraMode.SINGLE)
pycolmap.match_sequential(db)
recs = pycolmap.incremental_mapping(db, images, work / "bare_sparse")
out = {"seconds": time.perf_counter() - t0, "models": len(recs), "images": {}, "focal_px": None, "points": 0}
if recs:
    rec = max(recs.values(), key=lambda r: r.num_reg_images())
    cam = next(iter(rec.cameras.values()))
    out["focal_px"], out["width"], out["points"] = float(cam.params[0]), int(cam.width), rec.num_points3D()
    for im in rec.images.values():
        if im.has_pose:
            m = im.cam_from_world() if callable(im.cam_from_world) else im.cam_from_world
            m = m.matrix()
            out["images"][im.name] = {"R": m[:3, :3].tolist(), "t": m[:3, 3].tolist()}
print(json.dumps(out))
"""


def _plate(name: str, width: int, height: int, frames: int) -> tuple[CameraTrack, dict, float]:
    """(true track, {frame: ACEScg rgb}, true focal mm) of a named plate."""
    if name == "demo":
        track = wide_track(width, height, frames)
        scene = default_scene()
        return track, {f: render_plate_frame(scene, track, f)[0] for f in track.frames}, 35.0
    if name.startswith("raycast:"):
        from raycast_plates import render, track as raycast_track

        track = raycast_track(name.split(":", 1)[1], width, height, frames)
        return track, render(track)[0], 32.0
    raise SystemExit(f"unknown plate {name!r}: demo or raycast:<move>")


def _bare(work: Path, track: CameraTrack, true_focal: float, proxy_width: int) -> dict:
    """Bare pycolmap on gvfx's proxies in ``work/images``: time, registered frames, accuracy."""
    run = subprocess.run([sys.executable, "-c", _BARE, str(work / "images"), str(work)], capture_output=True,
                         text=True, timeout=3600)
    if run.returncode != 0:
        return {"error": run.stderr.strip().splitlines()[-1:]}
    r = json.loads(run.stdout.strip().splitlines()[-1])
    res = {"seconds": round(r["seconds"], 1), "registered": len(r["images"]), "points": r["points"]}
    if len(r["images"]) >= 3:
        names = sorted(r["images"])
        frames = [track.frames[int(n[1:6])] for n in names]
        mats = np.stack([colmap_to_cam_to_world(np.asarray(r["images"][n]["R"]), np.asarray(r["images"][n]["t"]))
                         for n in names])
        sub = CameraTrack(track.camera, tuple(frames), np.stack([track.transform(f) for f in frames]))
        err = pose_similarity_errors(CameraTrack(track.camera, tuple(frames), mats), sub)
        f_mm = r["focal_px"] / r["width"] * track.camera.haperture_mm
        res.update(centre_error_of_path=round(err["centre_rel"], 5), rotation_error_deg=round(err["rotation_deg"], 3),
                   focal_mm=round(f_mm, 3), focal_error=round(f_mm / true_focal - 1, 5))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plates", default="demo,raycast:sideways", help="comma-separated: demo, raycast:<move>")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--proxy-width", type=int, default=960)
    ap.add_argument("--focal-mm", type=float, default=None, help="give the focal (default: estimated)")
    ap.add_argument("--repeat", type=int, default=1, help="solve this many times and compare the poses")
    ap.add_argument("--no-bare", action="store_true", help="skip bare pycolmap")
    a = ap.parse_args()
    for name in a.plates.split(","):
        _bench_plate(name.strip(), a)
    return 0


def _bench_plate(name: str, a) -> None:
    t0 = time.perf_counter()
    track, plate, true_focal = _plate(name, a.width, a.height, a.frames)
    render_s = time.perf_counter() - t0
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(max(1, a.repeat)):
            seconds: dict[str, float] = {}
            work = Path(tmp) / str(k)
            t0 = time.perf_counter()
            solve = solve_camera(list(track.frames), plate.__getitem__, a.width, a.height,
                                 SolveOptions(proxy_width=a.proxy_width, focal_mm=a.focal_mm, camera_height_m=1.45),
                                 work_dir=work, stage_seconds=seconds)
            total = time.perf_counter() - t0
            runs.append((solve, seconds, total))
        bare = None if a.no_bare else _bare(Path(tmp) / "0", track, true_focal, a.proxy_width)
    solve, seconds, total = runs[0]
    moving = solve.static == "moving"
    err = pose_similarity_errors(solve.track, track) if moving else None
    result = {
        "plate": name,
        "shot": f"{a.frames} frames {a.width}x{a.height}, proxy {a.proxy_width}",
        "plate_render_s (not part of analyze)": round(render_s, 1),
        "solve_total_s": round(total, 1),
        "stages_s": {k: round(v, 1) for k, v in seconds.items()},
        "registered": len(solve.registered), "interpolated": len(solve.interpolated),
        "static": solve.static, "motion": solve.motion, "tries": [t["try"] for t in solve.attempts],
        "focal_mm": round(solve.focal_mm, 3), "focal_error": round(solve.focal_mm / true_focal - 1, 5),
        "points": len(solve.points),
    }
    if err is not None:
        result.update(centre_error_of_path=round(err["centre_rel"], 5), rotation_error_deg=round(err["rotation_deg"], 3),
                      scale_vs_truth=round(err["scale"], 4),
                      reprojection_error_px=round(solve.reprojection_error_px, 3))
    if len(runs) > 1:
        result["repeat_solve_total_s"] = [round(r[2], 1) for r in runs]
        result["repeat_max_pose_difference"] = float(max(
            np.abs(r[0].track.cam_to_world - solve.track.cam_to_world).max() for r in runs[1:]))
    if bare is not None:
        result["bare_pycolmap"] = bare
        if bare.get("seconds"):
            result["time_ratio_gvfx_over_bare"] = round(total / bare["seconds"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
