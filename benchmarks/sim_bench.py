"""Sim engine benchmark. Fluid part: gvfx's voxel solver steps per second at 64^3 and 128^3 against
PhiFlow's 3D smoke plume (torch backend) on the same grid in the same run (PhiFlow's sparse CG fails
at >= 64^3 here: reported as failed and compared at 32^3 too); peak RSS of simulating N and 2N frames
(each in its own subprocess) to show memory stays flat in sequence length. Then the particle part
(``particle_bench.py``) when present. All timings are medians of per-step wall times; the machine is
shared, so they are noisy.

Before/after in the same run: the pressure solve at 128^3 (the original allocating solver, kept as
``solve_pressure_baseline``, against the in-place warm-started one, on the same plume's right-hand sides),
the whole step (original solver + semi-Lagrangian against today's), and with ``--effects`` each volume
effect's seconds per frame (simulate + render) at 960x540 and 1920x1080, the "before" being the code of
a git revision (``--before``, default the merge-base with main's first i13 commit) extracted by
``git archive`` and run in a subprocess with the same child script.

    .venv/bin/python benchmarks/sim_bench.py [--sizes 32 64 128] [--steps 8] [--frames 12] [--effects]
"""

from __future__ import annotations

import argparse
import os
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

if os.environ.get("GVFX_BENCH_TREE"):  # an effect child timing another revision's code
    sys.path.insert(0, os.environ["GVFX_BENCH_TREE"])

from gvfx.engines.sim.fluid import SMALL_GRID_CELLS, FluidParams, FluidSim, torch_threads  # noqa: E402

BEFORE_REV = "9b0d2e0"  # main before issue 13's volume work


def gvfx_step_times(n: int, steps: int, warmup: int = 2, baseline: bool = False) -> list[float]:
    """Seconds per step of a smoke plume on an n^3 grid (inflow sphere near the floor, buoyancy,
    vorticity, multigrid-PCG projection); ``baseline``: the original solver and semi-Lagrangian."""
    sim = FluidSim((n, n, n), voxel_m=1.0 / n, params=FluidParams(buoyancy=1.0, vorticity=1.0, maccormack=not baseline),
                   baseline_solver=baseline)
    ax = torch.arange(n, dtype=torch.float32) + 0.5
    x, y, z = torch.meshgrid(ax, ax, ax, indexing="ij")
    src = ((x - n / 2) ** 2 + (y - n * 0.1) ** 2 + (z - n / 2) ** 2 < (n * 0.05) ** 2).float()
    with torch_threads(n ** 3):  # as the engine runs it: small grids single-threaded
        return _timed_steps(sim, src, steps, warmup)


def pressure_solve_times(n: int, steps: int) -> tuple[list[float], list[float], list[int], list[int]]:
    """Seconds per pressure solve at n^3, baseline vs fast, on the right-hand sides of a plume's steps
    (the fast one warm-started from its previous solution, as in the sim)."""
    from gvfx.engines.sim import fluid as fl
    from gvfx.engines.sim.pressure import BaselineMultigrid, solve_pressure_baseline

    sim = FluidSim((n, n, n), voxel_m=1.0 / n, params=FluidParams(buoyancy=1.0, vorticity=1.0))
    mg = BaselineMultigrid(sim.shape, sim.device)
    ax = torch.arange(n, dtype=torch.float32) + 0.5
    x, y, z = torch.meshgrid(ax, ax, ax, indexing="ij")
    src = ((x - n / 2) ** 2 + (y - n * 0.1) ** 2 + (z - n / 2) ** 2 < (n * 0.05) ** 2).float()
    tb, tf, ib, itf = [], [], [], []
    with torch_threads(n ** 3):
        for i in range(steps + 2):
            sim.density = sim.density + 0.2 * src
            sim.temperature = sim.temperature + 0.2 * src
            sim.combust(1 / 24)
            sim.add_forces(1 / 24)
            b = fl.divergence(sim.u, sim.v, sim.w) - sim.expansion * sim.h
            t = time.perf_counter()
            _, it_b = solve_pressure_baseline(b, mg, sim.params.cg_tolerance, sim.params.cg_max_iter)
            t1 = time.perf_counter()
            sim.project(1 / 24)
            t2 = time.perf_counter()
            sim.advect(1 / 24)
            if i >= 2:
                tb.append(t1 - t)
                tf.append(t2 - t1)
                ib.append(it_b)
                itf.append(sim.last_cg_iterations)
    return tb, tf, ib, itf


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
    if 128 in sizes:
        tb, tf, ib, itf = pressure_solve_times(128, max(4, steps // 2))
        mb, mf = statistics.median(tb), statistics.median(tf)
        print(f" 128^3 pressure solve: baseline {mb:.3f} s ({statistics.median(ib)} CG it), fast {mf:.3f} s "
              f"({statistics.median(itf)} CG it, warm start): {mb / mf:.2f}x")
    for n in sizes:
        g = gvfx_step_times(n, steps)
        g0 = gvfx_step_times(n, steps, baseline=True)
        print(f"{n:4d}^3 gvfx    {_fmt(g)}  [{1 if n ** 3 < SMALL_GRID_CELLS else torch.get_num_threads()} thread(s)]")
        print(f"{n:4d}^3 before  {_fmt(g0)}  (original solver, semi-Lagrangian): "
              f"{statistics.median(g0) / statistics.median(g):.2f}x")
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


def _effect_child(effect: str, width: int, height: int, frames: int) -> None:
    """(subprocess) simulate and render ``effect`` with its defaults over a floor plate; print the
    simulate and render seconds per frame."""
    from gvfx.camera import Camera, CameraTrack, look_at
    from gvfx.engines.base import ElementSpec, PlateContext
    from gvfx.engines.sim import volume
    from gvfx.engines.sim.common import Anchor, SimCache

    fr = list(range(1, frames + 1))
    cam = Camera(35.0, 36.0, width, height)
    track = CameraTrack.static(cam, fr, look_at(np.array([0.0, 1.2, 3.5]), np.array([0.0, 0.8, 0.0])))
    m = track.transform(1)
    d = cam.ray_directions() @ m[:3, :3].T
    with np.errstate(divide="ignore"):
        floor = np.where(d[..., 1] < 0, -m[1, 3] / d[..., 1], np.inf).astype(np.float32)
    ctx = PlateContext(fr, track, lambda f: floor, width, height)
    anchor = Anchor(np.zeros(3), np.array([0, 1.0, 0]), np.array([0, 1.0, 0]), 0.5)
    spec = ElementSpec("bench", effect, size_m=0.5)
    with tempfile.TemporaryDirectory() as tmp:
        cache = SimCache(Path(tmp))
        t = time.perf_counter()
        volume.simulate(spec, ctx, anchor, cache)
        t_sim = time.perf_counter() - t
        t = time.perf_counter()
        for f in fr:
            volume.render(spec, ctx, anchor, f, cache)
        t_render = time.perf_counter() - t
    print(f"{t_sim / frames:.3f} {t_render / frames:.3f}")


def effects_bench(frames: int, before_rev: str) -> None:
    """Seconds per frame of each volume effect at 960x540 and 1920x1080, the ``before_rev`` code
    against this tree's, in the same run (subprocesses)."""
    root = Path(__file__).resolve().parent.parent
    print(f"== volume effects, seconds per frame (simulate incl. pre-roll / render), {frames} frames; "
          f"before = {before_rev} ==")
    with tempfile.TemporaryDirectory() as old:
        try:
            tar = subprocess.run(["git", "-C", str(root), "archive", before_rev, "gvfx"], capture_output=True,
                                 check=True).stdout
            subprocess.run(["tar", "-x", "-C", old], input=tar, check=True)
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            print(f"(before revision {before_rev} not available: {exc})")
            old = None
        for effect in ("smoke", "fire", "explosion"):
            for w, h in ((960, 540), (1920, 1080)):
                row = []
                for tree in ([old] if old else []) + [str(root)]:
                    env = dict(os.environ, GVFX_BENCH_TREE=tree, PYTHONPATH=tree)
                    out = subprocess.run([sys.executable, __file__, "--effect-child", effect, str(w), str(h),
                                          str(frames)], capture_output=True, text=True, check=True, env=env)
                    sim_s, ren_s = (float(x) for x in out.stdout.split()[-2:])
                    row.append((sim_s, ren_s))
                text = "  ".join(f"{lab} {a:6.2f} + {b:6.2f} = {a + b:6.2f} s"
                                 for lab, (a, b) in zip(["before", "after"][-len(row):], row))
                ratio = f"  after/before {sum(row[-1]) / sum(row[0]):.2f}x" if len(row) == 2 else ""
                print(f"  {effect:9s} {w}x{h}: {text}{ratio}")


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
    ap.add_argument("--effect-child", nargs=4, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--effects", action="store_true", help="per-effect seconds per frame, before vs after")
    ap.add_argument("--effect-frames", type=int, default=6)
    ap.add_argument("--before", default=BEFORE_REV, help="git revision timed as 'before'")
    ap.add_argument("--no-particles", action="store_true")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-memory part")
    ap.add_argument("--demo", action="store_true", help="also time the demo at 960x540 and 2048x1152")
    ap.add_argument("--demo-frames", type=int, default=24)
    args = ap.parse_args()
    if args.mem_child is not None:
        _mem_child(args.mem_child, 56)
        return
    if args.effect_child is not None:
        e, w, h, n = args.effect_child
        _effect_child(e, int(w), int(h), int(n))
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
    if args.effects:
        effects_bench(args.effect_frames, args.before)
    if args.demo:
        demo_bench([(960, 540), (2048, 1152)], args.demo_frames)


if __name__ == "__main__":
    main()
