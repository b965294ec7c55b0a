"""Each tiny stack on a CUDA GPU at fp16 and bf16 under every memory plan: peak memory measured
(torch.cuda.max_memory_allocated) against the plan's computed estimate. Run by gpu_check.sh; prints
``SKIP`` and exits 0 without a CUDA GPU. Tiny stacks: the figures prove every plan runs on a real card
and show the estimator's fixed costs; they are not the real checkpoints' peaks."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STACKS = ("sd15_depth_ip", "sdxl_depth_ip", "animatediff_depth", "wan_vace")


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("SKIP: no CUDA GPU (torch.cuda.is_available() is False); nothing measured")
        return 0
    sys.path.insert(0, str(REPO))
    from gvfx.engines.diffusion import loader, video
    from gvfx.engines.diffusion.memory import PLANS, estimate
    from gvfx.engines.diffusion.runtime import Runtime, plan_memory
    from gvfx.engines.diffusion.stacks import load_manifest

    spec = importlib.util.spec_from_file_location("gvfx_model_tiny", REPO / "model" / "tiny.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    dtypes = ["fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    t0 = time.perf_counter()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'stack':18s} {'dtype':5s} {'plan':8s} {'peak GiB':>9s} {'estimate GiB':>13s}  result")
        for name in STACKS:
            m = load_manifest(name)
            root = tiny.build_tiny(name, Path(tmp) / name)
            for dtype in dtypes:
                est = estimate(m, dtype, 64, 64, 5, root=root)
                for plan in PLANS:
                    rt = Runtime("cuda", dtype, plan_memory(est, None, dtype, plan))
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                    try:
                        _run_one(m, root, rt, loader, video)
                        result = "ok"
                    except Exception as exc:  # noqa: BLE001 - report every combination
                        result = f"FAIL {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
                        failed += 1
                    peak = torch.cuda.max_memory_allocated() / 2**30
                    print(f"{name:18s} {dtype:5s} {plan:8s} {peak:9.3f} {est.plans[plan]:13.2f}  {result}")
                    loader.clear_cache()
                    video.clear_cache()
    print(f"{time.perf_counter() - t0:.0f} s, {failed} failure(s)")
    return 1 if failed else 0


def _run_one(m, root, rt, loader, video) -> None:
    from gvfx.engines.diffusion.common import call_pipeline
    from PIL import Image

    if m.kind == "image":
        st = loader.load_image_stack(root, m, rt)
        pipe = st.pipeline("element")
        pipe.set_ip_adapter_scale(0.5)
        img = Image.new("RGB", (64, 64), (128, 128, 128))
        out = call_pipeline(pipe, dict(prompt="a fire", image=img, ip_adapter_image=img, num_inference_steps=2,
                                       generator=rt.generator(0)), stack=m.name, runtime=rt, width=64, height=64)
        assert np.isfinite(out).all()
        return
    st = video.load_video_stack(root, m, runtime=rt)
    rng = np.random.default_rng(0)
    out = video.run_video(st, mode="element", frames_rgb=rng.random((5, 32, 32, 3), dtype=np.float32),
                          depth=np.full((5, 32, 32), 3.0, np.float32), mask=None,
                          reference_rgb=rng.random((16, 16, 3), dtype=np.float32), prompt="a fire",
                          negative_prompt="", seed=0, steps=2, strength=1.0, guidance=3.0, window=5, overlap=1)
    assert np.isfinite(out).all()


if __name__ == "__main__":
    sys.exit(main())
