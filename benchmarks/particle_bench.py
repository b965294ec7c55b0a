"""Particle throughput of the sim engine's particle effects: sparks simulated and rendered at 960x540
over a table + floor plate, in particles per second (medians of repeated runs). Baseline in the same
process: a bare numpy gravity integration of the same particles (no collisions, no rendering)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.engines.base import ElementSpec, PlateContext
from gvfx.engines.sim import particles
from gvfx.engines.sim.common import Anchor, SimCache
from gvfx.surface import Plane, raycast_depth


def _plate(frames: list[int], w: int = 960, h: int = 540) -> PlateContext:
    cam = Camera(30.0, 36.0, w, h)
    mats = np.stack([look_at(np.array([0.3 + 0.02 * i, 1.5, 3.5]), np.array([0.0, 0.4, 0.0]))
                     for i in range(len(frames))])
    floor = Plane(np.array([0.0, 1.0, 0.0]), 0.0)
    depths = {f: raycast_depth(cam, mats[i], planes=(floor,), boxes=(((-0.6, 0, -0.5), (0.6, 0.8, 0.5)),))
              for i, f in enumerate(frames)}
    return PlateContext(frames, CameraTrack(cam, tuple(frames), mats), depth=lambda f: depths[f], width=w, height=h)


def particle_bench(count: int = 20000, frames: int = 12, repeats: int = 3) -> dict:
    """Simulate and render ``count`` sparks over ``frames`` frames at 960x540; prints and returns
    particles/s for simulation (particle-steps per frame) and rendering (live particles per frame)."""
    fr = list(range(1, frames + 1))
    ctx = _plate(fr)
    anchor = Anchor(np.array([0.3, 0.8, 0.2]), np.array([0, 1.0, 0]), np.array([0, 1.0, 0]), 1.0)
    spec = ElementSpec("bench", "sparks", seed=1, params={"count": count, "emit_frames": 0, "substeps": 4})
    sim_s, render_s, live = [], [], 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cache = SimCache(Path(tmp))
            t0 = time.perf_counter()
            particles.simulate(spec, ctx, anchor, cache)
            sim_s.append(time.perf_counter() - t0)
            f = fr[len(fr) // 2]
            live = int(cache.read(f)["alive"].sum())
            t0 = time.perf_counter()
            particles.render(spec, ctx, anchor, f, cache)
            render_s.append(time.perf_counter() - t0)
    # Baseline: bare gravity integration of the same count and sub-steps.
    base_s = []
    for _ in range(repeats):
        pos, vel = np.zeros((count, 3)), np.ones((count, 3))
        t0 = time.perf_counter()
        for _ in range(frames * 4):
            vel[:, 1] -= 9.81 / 96
            pos += vel / 96
        base_s.append(time.perf_counter() - t0)
    sim_med, render_med, base_med = (statistics.median(x) for x in (sim_s, render_s, base_s))
    out = {
        "particles": count,
        "frames": frames,
        "sim_particles_per_s": count * frames / sim_med,
        "render_particles_per_s": live / render_med,
        "render_s_per_frame": render_med,
        "sim_s_per_frame": sim_med / frames,
        "baseline_particles_per_s": count * frames / base_med,
    }
    out["sim_vs_baseline"] = out["sim_particles_per_s"] / out["baseline_particles_per_s"]
    print(f"sparks x{count}, {frames} frames @960x540 (medians of {repeats}):")
    print(f"  simulate: {out['sim_particles_per_s']:.3g} particle-frames/s ({out['sim_s_per_frame'] * 1e3:.0f} ms/frame, "
          f"{out['sim_vs_baseline']:.3f}x bare numpy integration at {out['baseline_particles_per_s']:.3g}/s)")
    print(f"  render:   {out['render_particles_per_s']:.3g} particles/s ({render_med * 1e3:.0f} ms/frame, {live} live, "
          f"5 motion samples, streaks)")
    return out


if __name__ == "__main__":
    particle_bench()
