"""Per-frame cost of an effect on the demo plate, before and after, in the same run: seconds per frame of
the engine's render, the match stage (``match_frame``), the comp (``as_stored`` + ``rebuild_comp``) and
the whole frame loop (render + match + comp + EXR writes, which overlap in two threads), at 960x540 and
1920x1080, for each effect given (default ``rain`` and ``tiny``: a 3-spark element, so the frame loop is
the fixed per-frame overhead of match, comp and write).

Baseline: the same job rendered by another tree, a ``git archive`` of BASE (default: the merge-base with
``main``) unpacked into a temporary folder, run in a subprocess with that folder first on PYTHONPATH;
the current tree runs in a subprocess alike. Each child times the functions by wrapping them (names that
exist in both trees), renders ``--frames`` frames and reports per-call medians, skipping the first frame
(imports, caches). The machine is shared (2 cores): figures are medians of noisy runs.

    .venv/bin/python benchmarks/frame_bench.py [--effects rain tiny] [--sizes 960x540 1920x1080]
        [--frames 4] [--base REF]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the element the ``tiny`` pseudo-effect renders: a few sparks (the overhead of the frame loop)
TINY = {"effect": "sparks", "params": {"count": 3, "emit_frames": 0}}


def _child(effect: str, width: int, height: int, frames: int, work: Path) -> dict:
    """In a fresh process: render one effect with defaults on the demo plate and time the frame loop."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    import yaml

    import gvfx.render as render_mod
    import gvfx.match.stage as stage
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.all_effects import effect_job_dict
    from gvfx.demo.run import FIRST_FRAME, reference_image
    from gvfx.demo.scene import write_demo_plate
    from gvfx.engines.sim import SimEngine
    from gvfx.job import load_job

    fr = list(range(FIRST_FRAME, FIRST_FRAME + frames))
    pattern, track, scene = write_demo_plate(work / "plate", width, height, fr)
    cam_file = work / "plate" / "camera.usda"
    write_usd_camera(cam_file, track, fps=24.0)
    real = TINY["effect"] if effect == "tiny" else effect
    job = effect_job_dict(real, scene, os.path.relpath(pattern, work), os.path.relpath(cam_file, work), fr,
                          str(reference_image()))
    if effect == "tiny":
        job["elements"][0]["params"] = dict(TINY["params"])
    (work / "job.yaml").write_text(yaml.safe_dump(job, sort_keys=False))
    times: dict[str, list[float]] = {}

    def timed(name: str, fn):
        def wrap(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                times.setdefault(name, []).append(time.perf_counter() - t0)
        return wrap

    stage.match_frame = timed("match", stage.match_frame)
    stage.as_stored = timed("as_stored", stage.as_stored)
    stage.rebuild_comp = timed("rebuild_comp", stage.rebuild_comp)
    render_mod._render_frames = timed("loop", render_mod._render_frames)
    orig_render = SimEngine.render_frame
    in_loop = {"on": False}

    def engine_render(self, *a, **k):
        t0 = time.perf_counter()
        out = orig_render(self, *a, **k)
        if in_loop["on"]:
            times.setdefault("render", []).append(time.perf_counter() - t0)
        return out

    SimEngine.render_frame = engine_render
    orig_loop = render_mod._render_frames

    def loop(*a, **k):
        in_loop["on"] = True
        try:
            return orig_loop(*a, **k)
        finally:
            in_loop["on"] = False

    render_mod._render_frames = loop
    t0 = time.perf_counter()
    render_mod.render_job(load_job(work / "job.yaml"))
    total = time.perf_counter() - t0

    def med(name: str) -> float:
        v = times.get(name, [])
        return statistics.median(v[1:] if len(v) > 1 else v) if v else 0.0

    return {"render": med("render"), "match": med("match"), "comp": med("as_stored") + med("rebuild_comp"),
            "frame": med("loop") / frames, "total": total}


def _export(ref: str, dest: Path) -> Path:
    """``git archive REF`` of the gvfx package into ``dest`` (the baseline tree)."""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "gvfx"], check=True, capture_output=True).stdout
    tar = dest / "base.tar"
    tar.write_bytes(blob)
    with tarfile.open(tar) as t:
        t.extractall(dest / "tree", filter="data")
    return dest / "tree"


def _run(tree: Path, effect: str, w: int, h: int, frames: int, work: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT / 'benchmarks'}"}
    code = (f"import json, pathlib, frame_bench as b; print('RESULT', json.dumps(b._child({effect!r}, {w}, {h}, "
            f"{frames}, pathlib.Path({str(work)!r}))))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=str(work))
    if out.returncode != 0:
        raise RuntimeError(f"{tree} {effect} {w}x{h} failed:\n{out.stderr[-3000:]}")
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--effects", nargs="+", default=["rain", "tiny"])
    ap.add_argument("--sizes", nargs="+", default=["960x540", "1920x1080"])
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--base", default=None, help="git ref of the baseline (default: merge-base with main)")
    args = ap.parse_args(argv)
    base = args.base or subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], check=True,
                                       capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gvfx-frame-bench-") as tmp:
        tmp = Path(tmp)
        base_tree = _export(base, tmp)
        print(f"baseline: {base[:10]} (git archive in a temporary folder); current: {ROOT}")
        print(f"{'effect':8s} {'size':>9s}  {'':6s} {'render':>7s} {'match':>7s} {'comp':>6s} {'frame':>7s}  (s/frame, "
              f"medians of frames 2..{args.frames})")
        for size in args.sizes:
            w, h = (int(x) for x in size.split("x"))
            for effect in args.effects:
                res = {}
                for label, tree in (("before", base_tree), ("after", ROOT)):
                    work = tmp / f"{label}-{effect}-{size}"
                    work.mkdir()
                    res[label] = r = _run(tree, effect, w, h, args.frames, work)
                    print(f"{effect:8s} {size:>9s}  {label:6s} {r['render']:7.3f} {r['match']:7.3f} {r['comp']:6.3f} "
                          f"{r['frame']:7.3f}", flush=True)
                b, a = res["before"], res["after"]
                ratio = {k: (b[k] / a[k] if a[k] > 0 else float("nan")) for k in ("render", "match", "comp", "frame")}
                print(f"{'':8s} {'':>9s}  {'speed':6s} " + " ".join(f"{ratio[k]:6.2f}x" for k in ("render", "match"))
                      + f" {ratio['comp']:5.2f}x {ratio['frame']:6.2f}x", flush=True)
                rows.append({"effect": effect, "size": size, "before": b, "after": a, "speedup": ratio})
    return rows


if __name__ == "__main__":
    main()
