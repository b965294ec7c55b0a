"""Per-frame cost of gvfx's diffusion modes against a bare diffusers call on the same tiny model.

For the tiny SD 1.5 stack (built locally, random weights) at ``--size`` (default 512x512) and
``--steps``: (1) the bare ``StableDiffusionControlNetPipeline`` / ``...InpaintPipeline`` call alone,
(2) gvfx's ``element`` and ``insert`` modes through ``DiffusionEngine.prepare`` for ``--frames``
frames, with consistency off (every frame a full-strength generation, the same work as the bare
call). Reports the load time, per-frame medians and gvfx's overhead per frame; N frames should cost
about one load plus N frame times (the stack is loaded once per process).

    python benchmarks/diffusion_bench.py --size 512 --steps 4 --frames 4
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "diffusion"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--frames", type=int, default=4)
    args = ap.parse_args()

    import torch

    import gvfx_image_testkit as kit
    from gvfx.engines.base import ElementSpec, Placement
    from gvfx.engines.diffusion import DiffusionEngine
    from gvfx.engines.diffusion.loader import load_count, load_image_stack
    from gvfx.engines.diffusion.runtime import choose_runtime
    from gvfx.engines.diffusion.stacks import load_manifest

    tmp = Path(tempfile.mkdtemp(prefix="gvfx_dbench_"))
    spec_t = importlib.util.spec_from_file_location("tiny", REPO / "model" / "tiny.py")
    tiny = importlib.util.module_from_spec(spec_t)
    spec_t.loader.exec_module(tiny)
    store = tmp / "models"
    tiny.build_tiny("sd15_depth_ip", store / "sd15_depth_ip")
    n, s = args.frames, args.size
    frames = tuple(range(1001, 1001 + n))
    ctx = kit.plate_ctx(frames, width=s, height=s)

    t0 = time.perf_counter()
    m = load_manifest("sd15_depth_ip")
    stack = load_image_stack(store / "sd15_depth_ip", m, choose_runtime(m.family))
    load_s = time.perf_counter() - t0
    from PIL import Image

    ctrl = Image.fromarray((np.random.default_rng(0).random((s, s, 3)) * 255).astype(np.uint8))
    ref = Image.new("RGB", (32, 32), (128, 128, 128))
    stack.pipeline("element").set_ip_adapter_scale(0.0)

    def bare(mode: str) -> float:
        kw = dict(prompt="a fire", num_inference_steps=args.steps, guidance_scale=7.0, output_type="np",
                  generator=torch.Generator().manual_seed(0), height=s, width=s, ip_adapter_image=ref)
        if mode == "element":
            kw["image"] = ctrl
        else:
            kw.update(image=ctrl, mask_image=ctrl, control_image=ctrl, strength=1.0)
        t = time.perf_counter()
        with torch.inference_mode():
            stack.pipeline(mode)(**kw)
        return time.perf_counter() - t

    results = {}
    for mode in ("element", "insert"):
        bare(mode)  # warm-up
        bare_t = [bare(mode) for _ in range(n)]
        params = {"stack": "sd15_depth_ip", "models": str(store), "model_resolution": s, "steps": args.steps,
                  "prompt": "a fire", "consistency": False, "crop_margin": 4.0}
        # the insert's mask spans the frame so its crop is the model's full size, like the bare call
        size_m = 3.0 if mode == "element" else 6.0
        spec = ElementSpec(name=f"b_{mode}", effect=mode, engine="diffusion", placement=Placement(screen=(s / 2, s * 0.6)),
                           size_m=size_m, seed=3, params=params)
        eng = DiffusionEngine()
        eng.validate(spec, ctx)
        stamps = []
        t = time.perf_counter()
        eng.prepare(spec, ctx, tmp / f"cache_{mode}",
                    progress=lambda d, tot, msg="": stamps.append((d, time.perf_counter())))
        total = time.perf_counter() - t
        per_frame = [stamps[i][1] for i in range(len(stamps)) if stamps[i][0] % args.steps == 0]
        gv = np.diff([t] + per_frame).tolist()
        results[mode] = (statistics.median(bare_t), statistics.median(gv), total)

    # tiled refinement (tile_refine): the element at ~2x the model's size in a plate twice the model's size
    big = kit.plate_ctx((1001,), width=2 * s, height=2 * s)
    tiled_t = {}
    for tiled in (False, True):
        params = {"stack": "sd15_depth_ip", "models": str(store), "model_resolution": s, "steps": max(args.steps, 4),
                  "prompt": "a fire", "consistency": False, "tile_refine": tiled, "tile_strength": 0.3}
        spec = ElementSpec(name=f"t_{tiled}", effect="element", engine="diffusion",
                           placement=Placement(screen=(s, s * 1.2)), size_m=3.0, seed=3, params=params)
        runs, passes = [], []
        for k in range(3):
            t = time.perf_counter()
            DiffusionEngine().prepare(spec, big, tmp / f"tile_{tiled}_{k}",
                                      progress=lambda d, tot, msg="": passes.append(msg))
            runs.append(time.perf_counter() - t)
        tiled_t[tiled] = statistics.median(runs)
        tile_calls = sum("refine" in m and " step 1/" in m for m in passes) // len(runs)

    print(f"tiny sd15_depth_ip, {s}x{s}, {args.steps} steps, {n} frames, CPU ({torch.get_num_threads()} threads)")
    print(f"  stack load (once per process): {load_s:.2f} s; loads this run: {load_count()}")
    for mode, (b, g, total) in results.items():
        print(f"  {mode:8s} bare diffusers {b:.3f} s/frame | gvfx {g:.3f} s/frame | overhead {100 * (g / b - 1):+.1f}% "
              f"| {n} frames {total:.2f} s (= {total / b:.1f} bare frame times)")
    print(f"  element at plate size {2 * s}x{2 * s} plate: plain {tiled_t[False]:.3f} s/frame | tile_refine "
          f"{tiled_t[True]:.3f} s/frame (x{tiled_t[True] / tiled_t[False]:.2f}; {tile_calls} tiles of {s} px, {max(args.steps, 4)} steps x strength 0.3)")


if __name__ == "__main__":
    main()
