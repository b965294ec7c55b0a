"""Scale-out throughput: frames/s of the chunk phase of ``render_with_executor`` (the part that runs on
workers; the sim step and the finalise step are timed apart) for the local executor with 1 and 2
processes and Ray with 1 and 2 workers, on the same CPU-bound job (a smoke plume ray-marched with
motion blur plus sparks over a demo plate). Medians of repeated runs; prints the 2-vs-1 ratios.

Every worker runs with ONE thread (OMP/MKL/OpenBLAS env, ``torch.set_num_threads(1)``, OIIO
``threads=1``, see ``gvfx.executors.base.limit_threads``): otherwise each worker's libraries size
their pools to every core and two workers oversubscribe two cores, which hides the scaling.

The sim cache is built once and copied into each run's output root, so every run's sim step only
loads it. The local executor spawns fresh processes per run (its start-up is in its numbers); Ray
keeps its worker processes between runs of one ``ray.init`` (the first run of each Ray configuration
is a warm-up, reported but not in the median).

    .venv/bin/python benchmarks/scale_bench.py             # 24 frames at 480x270, 3 repeats
    .venv/bin/python benchmarks/scale_bench.py --quick     # 12 frames at 320x180, 1 repeat
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import yaml

log = logging.getLogger("scale_bench")


def build_shot(root: Path, width: int, height: int, frames: int) -> Path:
    """A demo plate with a CPU-bound smoke element and sparks; returns the job file."""
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.scene import write_demo_plate

    fr = list(range(1001, 1001 + frames))
    _, track, scene = write_demo_plate(root / "plate", width, height, fr)
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    cx, top, cz = scene.table_top_center
    job = {"name": "bench", "plate": {"path": "plate/plate.####.exr"}, "depth": {"layer": "Z"},
           "camera": {"file": "cam.usda"}, "output": "out",
           "elements": [
               {"name": "smoke", "effect": "smoke", "placement": {"point": [cx - 0.2, top, cz]}, "size_m": 0.9,
                "seed": 1, "motion_samples": 3, "params": {"resolution": 40, "preroll_frames": 4}},
               {"name": "sparks", "effect": "sparks", "placement": {"point": list(scene.table_edge_point)},
                "size_m": 0.4, "seed": 2, "motion_samples": 3}]}
    path = root / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def _fresh_output(base_cache: Path, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(base_cache, out / "cache")


def run_config(job, executor: str, workers: int, repeats: int, chunk_size: int, work: Path,
               base_cache: Path) -> dict:
    """Throughput of one configuration: ``repeats`` runs (+1 warm-up for Ray), chunk-phase frames/s."""
    from gvfx.executors import ExecutorOptions, render_with_executor

    ray_started = False
    if executor == "ray":
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR")
        ray_started = True
    fps, phases, cores, warm = [], [], [], None
    load0 = os.getloadavg()[0]
    try:
        for i in range(repeats + (1 if executor == "ray" else 0)):
            out = work / f"{executor}{workers}-{i}"
            _fresh_output(base_cache, out)
            run = render_with_executor(replace(job, output=out), executor, chunk_size=chunk_size,
                                       options=ExecutorOptions(workers=workers))
            if executor == "ray" and i == 0:
                warm = run.frames_per_second
                continue
            fps.append(run.frames_per_second)
            phases.append((run.sim_seconds, run.chunks_seconds, run.finalize_seconds))
            # the cores the workers really got: chunk CPU over chunk-phase wall time (2.0 = two full cores)
            cores.append(sum(c.cpu_seconds for c in run.chunks) / run.chunks_seconds)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        if ray_started:
            import ray

            ray.shutdown()
    med = statistics.median(fps)
    row = {"executor": executor, "workers": workers, "fps": med, "runs": fps, "warmup_fps": warm,
           "sim_s": statistics.median(p[0] for p in phases), "chunks_s": statistics.median(p[1] for p in phases),
           "finalize_s": statistics.median(p[2] for p in phases), "cores_used": statistics.median(cores),
           "load": (load0, os.getloadavg()[0])}
    print(f"{executor:5s} x{workers}: {med:6.2f} frames/s (runs {', '.join(f'{x:.2f}' for x in fps)}"
          f"{'' if warm is None else f'; warm-up {warm:.2f}'}) chunk phase {row['chunks_s']:.1f}s, "
          f"sim step {row['sim_s']:.1f}s, finalize {row['finalize_s']:.1f}s; chunks used {row['cores_used']:.2f} "
          f"cores; load average {row['load'][0]:.1f} -> {row['load'][1]:.1f}", flush=True)
    return row


def in_process_baseline(job, work: Path, base_cache: Path, frames: tuple[int, int]) -> float:
    """One process, default threads (torch uses every core): frames/s of the frame loop, warm."""
    from gvfx.render import render_job

    out = work / "inproc"
    _fresh_output(base_cache, out)
    j = replace(job, output=out)
    render_job(j, sim_only=True, write_timeline_file=False)
    t0 = time.perf_counter()
    render_job(j, frames=frames, resume=True, write_timeline_file=False)
    fps = (frames[1] - frames[0] + 1) / (time.perf_counter() - t0)
    shutil.rmtree(out, ignore_errors=True)
    print(f"in-process, all threads (reference): {fps:.2f} frames/s", flush=True)
    return fps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--resolution", default="480x270")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="12 frames at 320x180, 1 repeat")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.frames, args.resolution, args.repeats = 12, "320x180", 1
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(levelname)s: %(message)s")
    logging.getLogger("gvfx.match.colour").setLevel(logging.ERROR)
    w, h = (int(x) for x in args.resolution.split("x"))

    from gvfx.job import load_job
    from gvfx.render import render_job

    with tempfile.TemporaryDirectory(prefix="gvfx-scale-") as tmp:
        work = Path(tmp)
        job_path = build_shot(work / "shot", w, h, args.frames)
        job = replace(load_job(job_path), output=work / "base")
        t0 = time.perf_counter()
        render_job(job, sim_only=True, write_timeline_file=False)
        print(f"shot: {args.frames} frames at {w}x{h}, smoke (40 voxels, 3 motion samples) + sparks; "
              f"chunks of {args.chunk_size}; sim once in {time.perf_counter() - t0:.1f}s; "
              f"{os.cpu_count()} CPUs (shared machine: timings are noisy)", flush=True)
        base_cache = work / "base" / "cache"
        in_process_baseline(job, work, base_cache, (1001, 1000 + args.frames))
        rows = {}
        configs = [("local", 1), ("local", 2)] + ([] if args.no_ray else [("ray", 1), ("ray", 2)])
        for ex, n in configs:
            rows[(ex, n)] = run_config(job, ex, n, args.repeats, args.chunk_size, work, base_cache)
        for ex in ("local", "ray"):
            if (ex, 1) in rows:
                r = rows[(ex, 2)]["fps"] / rows[(ex, 1)]["fps"]
                print(f"{ex}: 2 workers / 1 worker = {r:.2f}x (target >= 1.7x); cores the chunks got: "
                      f"{rows[(ex, 1)]['cores_used']:.2f} -> {rows[(ex, 2)]['cores_used']:.2f}")


if __name__ == "__main__":
    main()
