"""Benchmark `gvfx analyze`'s camera solve: 48 frames of a 1920x1080 synthetic plate, 960 px proxies.

Prints seconds per stage and the accuracy against the true camera (centres after a similarity fit,
rotations after the best world rotation, focal). Run: ``.venv/bin/python benchmarks/analyze_bench.py``
(``--frames``, ``--width``, ``--height``, ``--proxy-width`` to change the shot; ``--repeat 2`` solves twice
and reports the largest pose difference between the runs: 0.0 when the solve is reproducible). Timings
are noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analyze"))

from analyze_plates import pose_similarity_errors, wide_track  # noqa: E402

from gvfx.analyze.solve import SolveOptions, solve_camera  # noqa: E402
from gvfx.demo.scene import default_scene, render_plate_frame  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--proxy-width", type=int, default=960)
    ap.add_argument("--focal-mm", type=float, default=None, help="give the focal (default: estimated)")
    ap.add_argument("--repeat", type=int, default=1, help="solve this many times and compare the poses")
    a = ap.parse_args()

    track = wide_track(a.width, a.height, a.frames)
    scene = default_scene()
    t0 = time.perf_counter()
    plate = {f: render_plate_frame(scene, track, f)[0] for f in track.frames}
    render_s = time.perf_counter() - t0
    runs = []
    for _ in range(max(1, a.repeat)):
        seconds: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as work:
            t0 = time.perf_counter()
            solve = solve_camera(list(track.frames), plate.__getitem__, a.width, a.height,
                                 SolveOptions(proxy_width=a.proxy_width, focal_mm=a.focal_mm, camera_height_m=1.45),
                                 work_dir=work, stage_seconds=seconds)
            total = time.perf_counter() - t0
        runs.append((solve, seconds, total))
    solve, seconds, total = runs[0]
    err = pose_similarity_errors(solve.track, track)
    result = {
        "shot": f"{a.frames} frames {a.width}x{a.height}, proxy {a.proxy_width}",
        "plate_render_s (not part of analyze)": round(render_s, 1),
        "solve_total_s": round(total, 1),
        "stages_s": {k: round(v, 1) for k, v in seconds.items()},
        "registered": len(solve.registered), "interpolated": len(solve.interpolated),
        "static": solve.static,
        "centre_error_of_path": round(err["centre_rel"], 5),
        "rotation_error_deg": round(err["rotation_deg"], 3),
        "focal_mm": round(solve.focal_mm, 3), "focal_error": round(solve.focal_mm / 35.0 - 1, 5),
        "scale_vs_truth": round(err["scale"], 4),
        "reprojection_error_px": round(solve.reprojection_error_px, 3),
        "points": len(solve.points),
    }
    if len(runs) > 1:
        result["repeat_solve_total_s"] = [round(r[2], 1) for r in runs]
        result["repeat_max_pose_difference"] = float(max(
            np.abs(r[0].track.cam_to_world - solve.track.cam_to_world).max() for r in runs[1:]))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
