"""Sim engine benchmark. Fluid part: gvfx's voxel solver steps per second at 64^3 and 128^3 against
PhiFlow's 3D smoke plume (torch backend) on the same grid in the same run (PhiFlow's sparse CG fails
at >= 64^3 here: reported as failed and compared at 32^3 too); peak RSS of simulating N and 2N frames
(each in its own subprocess) to show memory stays flat in sequence length. Then the particle part
(``particle_bench.py``) when present. All timings are medians of per-step wall times; the machine is
shared, so they are noisy.

    .venv/bin/python benchmarks/sim_bench.py [--sizes 32 64 128] [--steps 8] [--frames 12]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gvfx.engines.sim.fluid import SMALL_GRID_CELLS, FluidParams, FluidSim, torch_threads  # noqa: E402


def gvfx_step_times(n: int, steps: int, warmup: int = 2) -> list[float]:
    """Seconds per step of a smoke plume on an n^3 grid (inflow sphere near the floor, buoyancy,
    vorticity, multigrid-PCG projection)."""
    sim = FluidSim((n, n, n), voxel_m=1.0 / n, params=FluidParams(buoyancy=1.0, vorticity=1.0))
    ax = torch.arange(n, dtype=torch.float32) + 0.5
    x, y, z = torch.meshgrid(ax, ax, ax, indexing="ij")
    src = ((x - n / 2) ** 2 + (y - n * 0.1) ** 2 + (z - n / 2) ** 2 < (n * 0.05) ** 2).float()
    with torch_threads(n ** 3):  # as the engine runs it: small grids single-threaded
        return _timed_steps(sim, src, steps, warmup)


def _timed_steps(sim: FluidSim, src: torch.Tensor, steps: int, warmup: int) -> list[float]:
    out = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        sim.density = sim.density + 0.2 * src
        sim.temperature = sim.temperature + 0.2 * src
        sim.step(1.0 / 24)
        if i >= warmup:
            out.append(time.perf_counter() - t)
    return out


def phiflow_step_times(n: int, steps: int, warmup: int = 2) -> list[float]:
    """Seconds per step of PhiFlow's smoke plume example in 3D (torch backend, jit_compile)."""
    from phi.torch.flow import (ZERO_GRADIENT, Box, CenteredGrid, Solve, Sphere, StaggeredGrid, advect, fluid,
                                jit_compile, resample, vec)

    bounds = Box(x=100, y=100, z=100)
    smoke = CenteredGrid(0, ZERO_GRADIENT, bounds, x=n, y=n, z=n)
    velocity = StaggeredGrid(0, 0, bounds, x=n, y=n, z=n)
    inflow = 0.2 * resample(Sphere(x=50, y=9.5, z=50, radius=5), to=smoke, soft=True)
    pressure = None

    @jit_compile
    def step(v, s, p, dt=1.0):
        s = advect.mac_cormack(s, v, dt) + inflow
        buoyancy = resample(s * vec(x=0, y=0.1, z=0), to=v)
        v = advect.semi_lagrangian(v, v, dt) + buoyancy * dt
        v, p = fluid.make_incompressible(v, (), Solve("CG", 1e-5, 1e-5, x0=p))
        return v, s, p

    out = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        velocity, smoke, pressure = step(velocity, smoke, pressure)
        if i >= warmup:
            out.append(time.perf_counter() - t)
    return out


def _mem_child(frames: int, resolution: int) -> None:
    """(subprocess) simulate the fire for ``frames`` frames into a temporary cache; print peak RSS."""
    from gvfx.camera import Camera, CameraTrack, look_at
    from gvfx.engines.base import ElementSpec, PlateContext
    from gvfx.engines.sim import volume
    from gvfx.engines.sim.common import Anchor, SimCache

    fr = list(range(1, frames + 1))
    cam = Camera(35.0, 36.0, 960, 540)
    track = CameraTrack.static(cam, fr, look_at(np.array([0.0, 1.5, 3.0]), np.array([0.0, 1.0, 0.0])))
    ctx = PlateContext(fr, track, lambda f: np.full((540, 960), np.inf, np.float32), 960, 540)
    anchor = Anchor(np.array([0.0, 0.75, 0.0]), np.array([0, 1.0, 0]), np.array([0, 1.0, 0]), 0.5)
    spec = ElementSpec("bench", "fire", size_m=0.5, params={"resolution": resolution})
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        volume.simulate(spec, ctx, anchor, SimCache(Path(tmp)))
        dt = time.perf_counter() - t
    print(f"{_peak_rss_mib():.1f} {dt:.2f}")


def _peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that across fork+exec, so a child
    of a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fmt(times: list[float]) -> str:
    med = statistics.median(times)
    return f"{1.0 / med:7.2f} steps/s (median {med * 1000:7.1f} ms/step over {len(times)})"


def fluid_bench(sizes: list[int], steps: int, frames: int) -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"== fluid: gvfx (torch {torch.__version__}, {torch.get_num_threads()} threads) vs PhiFlow 3.4 smoke plume ==")
    for n in sizes:
        g = gvfx_step_times(n, steps)
        print(f"{n:4d}^3 gvfx    {_fmt(g)}  [{1 if n ** 3 < SMALL_GRID_CELLS else torch.get_num_threads()} thread(s)]")
        try:
            p = phiflow_step_times(n, steps)
            print(f"{n:4d}^3 phiflow {_fmt(p)}")
            print(f"{n:4d}^3 speed ratio gvfx/phiflow: {statistics.median(p) / statistics.median(g):.2f}x")
        except Exception as exc:  # PhiFlow's CG is known to fail at >= 64^3 in 3D here
            msg = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
            print(f"{n:4d}^3 phiflow FAILED: {type(exc).__name__}: {msg}")
    print("== peak memory (VmHWM) simulating the fire (resolution 56) into a cache, a subprocess each ==")
    for nf in (frames, 2 * frames):
        out = subprocess.run([sys.executable, __file__, "--mem-child", str(nf)], capture_output=True, text=True,
                             check=True).stdout.split()
        print(f"{nf:4d} frames: peak RSS {float(out[0]):8.1f} MiB, simulate {float(out[1]):6.2f} s")


def demo_bench(resolutions: list[tuple[int, int]], frames: int) -> None:
    """Seconds per frame of the whole demo (plate, three sims, render, match, comp, previews), each
    resolution in its own subprocess so one does not warm the other's caches."""
    print(f"== gvfx demo, {frames} frames (everything: plate, sims, render, match, comp, previews) ==")
    for w, h in resolutions:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "gvfx", "demo", "--quiet", "--frames", str(frames),
                            "--resolution", f"{w}x{h}", "--out", tmp], check=True, stdout=subprocess.DEVNULL)
            dt = time.perf_counter() - t0
        print(f"  {w}x{h}: {dt:7.1f} s total, {dt / frames:6.2f} s/frame")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--mem-child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--no-particles", action="store_true")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-memory part")
    ap.add_argument("--demo", action="store_true", help="also time the demo at 960x540 and 2048x1152")
    ap.add_argument("--demo-frames", type=int, default=24)
    args = ap.parse_args()
    if args.mem_child is not None:
        _mem_child(args.mem_child, 56)
        return
    fluid_bench([] if args.memory_only else args.sizes, args.steps, args.frames)
    if not args.no_particles:
        try:
            from particle_bench import particle_bench  # the particle engineer's half
        except ImportError as exc:
            print(f"(particle benchmark not available: {exc})")
        else:
            print("== particles ==")
            particle_bench()
    if args.demo:
        demo_bench([(960, 540), (2048, 1152)], args.demo_frames)


if __name__ == "__main__":
    main()
