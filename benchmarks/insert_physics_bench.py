"""Insert physics benchmark: simulation seconds per frame of the proxy's own rigid body (``collider:
hull``) against the ``box`` collider in the same run, on a tall lathe can pushed over (the active
case: every sub-step has contacts until it rests) and a cube mesh dropped tilted, on a ray-cast
floor-and-table plate. Medians of several runs (the proxy build is warmed up first); the machine is
shared: figures are noisy.

    .venv/bin/python benchmarks/insert_physics_bench.py [--frames 48] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from gvfx.camera import Camera, CameraTrack, look_at  # noqa: E402
from gvfx.engines.base import ElementSpec, PlateContext  # noqa: E402
from gvfx.engines.sim import insert  # noqa: E402
from gvfx.engines.sim.common import Anchor, SimCache  # noqa: E402
from gvfx.surface import Plane, raycast_depth  # noqa: E402

UP = np.array([0.0, 1.0, 0.0])


def _plate(frames: list[int]) -> PlateContext:
    cam = Camera(30.0, 36.0, 960, 540)
    m = look_at(np.array([0.3, 1.6, 3.8]), np.array([0.0, 0.4, 0.0]))
    z = raycast_depth(cam, m, planes=(Plane(UP, 0.0),), boxes=(((-0.6, 0.0, -0.5), (0.6, 0.8, 0.5)),))
    return PlateContext(frames, CameraTrack.static(cam, frames, m), depth=lambda f: z, width=960, height=540)


def _refs(d: Path) -> dict[str, str]:
    img = np.zeros((120, 60, 3), np.uint8)
    img[:] = (40, 200, 60)
    img[12:108, 14:46] = (220, 60, 40)
    Image.fromarray(img).save(d / "can.png")
    v = [(x, y, z) for x in (-0.5, 0.5) for y in (0.0, 1.0) for z in (-0.5, 0.5)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    (d / "cube.obj").write_text("".join("v %g %g %g\n" % p for p in v)
                                + "".join("f %d %d %d %d\n" % tuple(i + 1 for i in q) for q in quads))
    return {"can": str(d / "can.png"), "cube": str(d / "cube.obj")}


CASES = {
    "can pushed over": ("can", 0.30, (0.0, 0.0, 1.2), {"velocity_mps": (1.5, 0.0, 0.0), "friction": 0.8}),
    "cube dropped tilted": ("cube", 0.20, (0.0, 1.05, 0.0), {"tilt_deg": (25.0, 0.0, 35.0), "restitution": 0.4}),
}


def sim_seconds(ref: str, size: float, point, params: dict, ctx, tmp: Path, runs: int) -> float:
    spec = ElementSpec("obj", "insert", reference=ref, size_m=size, params=params)
    anchor = Anchor(np.asarray(point, np.float64), UP, UP, size)
    insert.simulate(spec, ctx, anchor, SimCache(tmp / "warm"))  # proxy build, support field code paths
    out = []
    for i in range(runs):
        t = time.perf_counter()
        insert.simulate(spec, ctx, anchor, SimCache(tmp / f"run{i}-{time.monotonic_ns()}"))
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("GVFX_PROXIES", str(tmp / "proxies"))
        refs = _refs(tmp)
        frames = list(range(1, args.frames + 1))
        ctx = _plate(frames)
        for name, (ref, size, point, params) in CASES.items():
            hull = sim_seconds(refs[ref], size, point, {**params, "collider": "hull"}, ctx, tmp, args.runs)
            box = sim_seconds(refs[ref], size, point, {**params, "collider": "box"}, ctx, tmp, args.runs)
            n = len(frames)
            print(f"{name:20s} hull {hull / n * 1000:6.2f} ms/frame  box {box / n * 1000:6.2f} ms/frame  "
                  f"hull / box = {hull / box:.2f}x  (whole shot: hull {hull:.2f} s, box {box:.2f} s, {n} frames, "
                  "support field included)")


if __name__ == "__main__":
    main()
