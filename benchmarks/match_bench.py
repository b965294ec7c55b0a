"""Match-stage benchmark: seconds per frame of ``match_frame`` + ``rebuild_comp`` at 2048x1152 and
4096x2160, against the baseline of writing and reading the same frame's layers (element EXR with every
match layer, and the comp) with gvfx.exr in the same run; peak RSS after each size.

The scene: a ground-plane plate with grain and depth, a 20%-of-height element with Z, a moving camera,
every match step on (colour, haze, defocus, holdout, shadow, grain, light wrap, motion vectors), 5%
overscan. Timings are medians; the machine is shared (2 cores), so they are noisy. The platelight
column is gvfx.match.emitted_light alone for an emissive element of MAX_LIGHTS point lights (the cost
``match_frame`` adds for fire, sparks or an explosion), on the display window.

    .venv/bin/python benchmarks/match_bench.py [--sizes 2048x1152 4096x2160] [--frames 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gvfx.camera import Camera, CameraTrack, look_at  # noqa: E402
from gvfx.engines.base import ElementFrame  # noqa: E402
from gvfx.exr import read_exr, write_layers  # noqa: E402
from gvfx.match import emitted_light  # noqa: E402
from gvfx.match.lens import overscan_camera, overscan_margin, pad_edge  # noqa: E402
from gvfx.match.stage import (MatchSettings, PlateSample, estimate, layer_dict, match_frame,  # noqa: E402
                              rebuild_comp, write_matched)


def scene(w: int, h: int, m: int):
    cam = Camera(35.0, 36.0, w, h)
    mats = np.stack([look_at(np.array([0.02 * i, 1.6, 5.0]), np.array([0.0, 0.5, 0.0])) for i in range(3)])
    track = CameraTrack(cam, (1, 2, 3), mats)
    big = CameraTrack(overscan_camera(cam, m), (1, 2, 3), mats)
    rays = cam.ray_directions() @ mats[0][:3, :3].T
    t = -mats[0][1, 3] / np.minimum(rays[..., 1], -1e-6)
    z = np.where(rays[..., 1] < -1e-3, t, np.inf).astype(np.float32)  # ground plane, sky above
    rng = np.random.default_rng(0)
    rgb = (0.18 + 0.02 * rng.standard_normal((h, w, 3))).astype(np.float32)
    rgb[~np.isfinite(z)] = (2.0, 2.2, 2.5)
    plate = np.concatenate([rgb, np.ones((h, w, 1), np.float32)], -1)
    H, W = h + 2 * m, w + 2 * m
    v, u = np.mgrid[0:H, 0:W] + 0.5
    r = np.hypot(u - W / 2, v - H * 0.6)
    a = np.clip((0.1 * h - r) / 2.0, 0, 1).astype(np.float32)
    el = np.concatenate([np.repeat(0.5 * a[..., None], 3, -1), a[..., None]], -1)
    zp = pad_edge(z, m)
    ez = np.where(a > 0, np.where(np.isfinite(zp), zp, 6.0) - 0.3, np.inf).astype(np.float32)
    return track, big, plate, z, ElementFrame(el, ez, np.zeros((H, W), np.float32))


def run(w: int, h: int, frames: int) -> dict:
    m = overscan_margin(w, None)
    track, big, plate, z, ef = scene(w, h, m)
    st = MatchSettings()
    t0 = time.perf_counter()
    est = estimate(st, PlateSample(1, plate[..., :3], z, track), element_rgba=ef.rgba[m:-m, m:-m])
    t_est = time.perf_counter() - t0
    prgb, pz = pad_edge(plate[..., :3], m), pad_edge(z, m)
    match_t, io_t = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for f in range(frames):
            t0 = time.perf_counter()
            mf = match_frame(ef, frame=1, plate_rgb=prgb, plate_z=pz, track=big, settings=st, estimates=est,
                             seed=f, element_shutter_frames=0.5, margin=m)
            comp = rebuild_comp(plate, [layer_dict(mf)])
            match_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()  # baseline: write and read back the same frame's files
            write_matched(Path(tmp) / "el.exr", mf, width=w, height=h, metadata={})
            write_layers(Path(tmp) / "comp.exr", rgba=comp)
            read_exr(Path(tmp) / "el.exr")
            read_exr(Path(tmp) / "comp.exr")
            io_t.append(time.perf_counter() - t0)
    rng = np.random.default_rng(1)
    lights = np.array([0.0, 0.5, 0.0]) + rng.uniform(-0.3, 0.3, (emitted_light.MAX_LIGHTS, 3))
    inten = np.full((emitted_light.MAX_LIGHTS, 3), 0.05, np.float32)
    light_t = []
    for f in range(frames):
        t0 = time.perf_counter()
        emitted_light.plate_light(lights, inten, plate[..., :3], z, track.camera_at(1), track.transform(1))
        light_t.append(time.perf_counter() - t0)
    return {"size": f"{w}x{h}", "estimate_s": t_est, "match_s": statistics.median(match_t),
            "light_s": statistics.median(light_t),
            "io_s": statistics.median(io_t), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def defocus_alone(w: int = 2048, h: int = 1152, repeats: int = 5) -> float:
    """Median seconds of ``defocus`` alone on a 2K elliptical element over a 2–22 m depth ramp (f/2.8)."""
    from gvfx.match.defocus import coc_radius_px, defocus

    yy, xx = np.mgrid[:h, :w]
    m = ((xx - 1000) / 400.0) ** 2 + ((yy - 600) / 300.0) ** 2 < 1
    el = np.zeros((h, w, 4), np.float32)
    el[m] = (0.5, 0.3, 0.1, 1.0)
    z = np.where(m, 2.0 + (xx - 600) / 800.0 * 20.0, np.inf)
    r = coc_radius_px(z, focus_m=5.0, focal_mm=35.0, fstop=2.8, haperture_mm=36.0, width_px=w)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        defocus(el, z, r)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["2048x1152", "4096x2160"])
    ap.add_argument("--frames", type=int, default=3)
    args = ap.parse_args()
    print(f"{'size':>10} {'estimate s':>11} {'match s/frame':>14} {'write+read s/frame':>19} {'ratio':>6} "
          f"{'platelight s/frame':>19} {'peak RSS MB':>12}")
    for size in args.sizes:
        w, h = (int(x) for x in size.split("x"))
        r = run(w, h, args.frames)
        print(f"{r['size']:>10} {r['estimate_s']:>11.2f} {r['match_s']:>14.2f} {r['io_s']:>19.2f} "
              f"{r['match_s'] / r['io_s']:>6.2f} {r['light_s']:>19.2f} {r['peak_rss_mb']:>12.0f}", flush=True)
    print(f"defocus alone, 2048x1152 ellipse over a 2-22 m ramp at f/2.8: {defocus_alone():.2f} s (median of 5)")


if __name__ == "__main__":
    main()
