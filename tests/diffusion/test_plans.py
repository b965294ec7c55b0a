"""Every memory plan on every tiny stack (image and video), the NaN guard, and the control/reference
strengths of the video stacks. Tiny stacks, 64 px images / 32 px 5-frame clips, 1-2 steps, one thread.

On the CPU ``low`` really installs model CPU offload (accelerate's hooks move each component to the
execution device when it runs); ``minimum``'s sequential offload is installed only on a GPU
(benchmarks/gpu_check.sh runs it there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gvfx_image_testkit as kit
from gvfx.engines.diffusion import DiffusionEngine, loader, video
from gvfx.engines.diffusion.memory import PLANS, estimate
from gvfx.engines.diffusion.runtime import Runtime, plan_memory
from gvfx.engines.diffusion.stacks import load_manifest
from gvfx.errors import EngineError

VIDEO = ("wan_vace", "animatediff_depth")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = kit.tiny_store(tmp_path_factory)
    tiny = kit.tiny_module()
    for name in VIDEO:
        if not (root / name).is_dir():
            tiny.build_tiny(name, root / name)
    return root


def _runtime(name: str, plan: str) -> Runtime:
    return Runtime("cpu", "fp32", plan_memory(name, None, "fp32", plan))


@pytest.mark.parametrize("stack", kit.STACKS)
def test_every_plan_runs_every_image_stack_with_the_ip_adapter(store, tmp_path, stack):
    ctx = kit.plate_ctx((1001,))
    out = {}
    for plan in PLANS:
        spec = kit.spec("element", store, stack, memory=plan, steps=1, ip_scale=0.8)
        eng = DiffusionEngine()
        eng.prepare(spec, ctx, tmp_path / plan)
        out[plan] = eng.render_frame(spec, ctx, 1001, tmp_path / plan).rgba
        assert np.isfinite(out[plan]).all() and out[plan][..., 3].max() > 0
    # the IP-Adapter's processors survived every plan (slicing used to replace them)
    for key, st in loader._CACHE.items():
        if key[0] == str((store / stack).resolve()):
            procs = {type(p).__name__ for p in st.pipeline("element").unet.attn_processors.values()}
            assert any("IPAdapter" in p for p in procs) and not any("Sliced" in p for p in procs), procs
    # offload moves weights, never changes the arithmetic: low gives high's bits on the CPU
    assert np.array_equal(out["high"], out["low"])


@pytest.mark.parametrize("stack", VIDEO)
def test_every_plan_runs_every_video_stack(store, stack):
    rng = np.random.default_rng(1)
    frames = rng.random((5, 32, 32, 3), dtype=np.float32)
    depth = np.full((5, 32, 32), 3.0, np.float32)
    depth[:, 8:24, 8:24] = 2.0
    out = {}
    for plan in PLANS:
        st = video.load_video_stack(store / stack, load_manifest(stack), runtime=_runtime(stack, plan))
        assert st.runtime.plan.level == plan
        out[plan] = video.run_video(st, mode="element", frames_rgb=frames, depth=depth, mask=None,
                                    reference_rgb=frames[0, :16, :16], prompt="a red dragon", negative_prompt="",
                                    seed=3, steps=1, strength=1.0, guidance=3.0, window=5, overlap=1)
        assert out[plan].shape == (5, 32, 32, 3) and np.isfinite(out[plan]).all()
    # offload and (untriggered at 32 px) VAE tiling change where weights live, not the result
    assert np.allclose(out["high"], out["low"], atol=1e-5) and np.allclose(out["high"], out["minimum"], atol=1e-5)


def test_nan_latents_stop_with_the_frame_and_the_fix(store, tmp_path):
    import torch

    ctx = kit.plate_ctx((1001, 1002))
    spec = kit.spec("element", store, "sd15_depth_ip", steps=2, memory="medium")
    eng = DiffusionEngine()
    eng.prepare(spec, ctx, tmp_path / "ok")  # loads the stack (cached) and fills frame 1001/1002
    st = next(s for k, s in loader._CACHE.items() if k[0] == str((store / "sd15_depth_ip").resolve())
              and k[1][2] == "medium")
    unet = st.pipeline("element").unet
    handle = unet.register_forward_hook(lambda mod, args, output: (output[0] * float("nan"),) + tuple(output[1:]))
    try:
        with pytest.raises(EngineError, match=r"frame 1001: the latents hold NaN/Inf after denoising step 1") as ei:
            DiffusionEngine().prepare(spec, ctx, tmp_path / "nan")
        assert "fp32" in ei.value.hint
    finally:
        handle.remove()
    assert not (tmp_path / "nan" / "frame.+001001.npz").exists()
    assert torch.isfinite(next(unet.parameters())).all()


def test_video_control_and_reference_strengths_change_the_result(store):
    rng = np.random.default_rng(2)
    frames = rng.random((5, 32, 32, 3), dtype=np.float32)
    depth = np.full((5, 32, 32), np.inf, np.float32)
    depth[:, 6:26, 10:22] = 1.5
    ref = rng.random((20, 20, 3), dtype=np.float32)
    for stack in VIDEO:
        st = video.load_video_stack(store / stack, load_manifest(stack), runtime=_runtime(stack, "high"))

        def run(**kw):
            return video.run_video(st, mode="element", frames_rgb=frames, depth=depth, mask=None, reference_rgb=ref,
                                   prompt="fire", negative_prompt="", seed=5, steps=2, strength=1.0, guidance=3.0,
                                   window=5, overlap=1, **kw)

        base = run(control_scale=1.0, ip_scale=0.6)
        assert np.array_equal(base, run(control_scale=1.0, ip_scale=0.6))  # deterministic
        assert not np.array_equal(base, run(control_scale=0.0, ip_scale=0.6)), f"{stack}: control_scale ignored"
        assert not np.array_equal(base, run(control_scale=1.0, ip_scale=0.0)), f"{stack}: ip_scale ignored"


def test_wan_runs_at_its_trained_sizes_never_square():
    from gvfx.engines.diffusion.common import model_canvas

    wan, wan14, sd = load_manifest("wan_vace"), load_manifest("wan_vace_14b"), load_manifest("sd15_depth_ip")
    assert model_canvas(wan, 832) == (832, 480)  # the element canvas (square content)
    assert model_canvas(wan, 832, (1080, 1920)) == (480, 832)  # a portrait crop
    assert model_canvas(wan14, 1280, (1920, 1080)) == (1280, 720)
    w, h = model_canvas(wan, 64)
    assert (w, h) == (64, 32) and w % 16 == 0 and h % 16 == 0  # scaled, trained aspect kept
    assert model_canvas(sd, 512) == (512, 512)


def test_memory_estimates_come_from_the_weight_files(store):
    m = load_manifest("sd15_depth_ip")
    # fp16 run: the fp16 variants where published, the rest (image encoder, fp32 storage) halved
    half = {"unet": 1.72e9, "vae": 0.167e9, "text_encoder": 0.246e9, "controlnet": 0.723e9, "ip_adapter": 0.0446e9,
            "image_encoder": 2528373448 / 2}
    assert estimate(m, "fp16").weights_gib == pytest.approx(sum(half.values()) / 2**30, abs=0.01)
    assert estimate(m, "fp32").weights_gib == pytest.approx(2 * sum(half.values()) / 2**30, abs=0.02)
    # installed: the files on disk, counted independently here
    root = store / "sd15_depth_ip"
    files = [p for p in root.rglob("*.safetensors")]
    est = estimate(m, "fp32", root=root)
    assert est.on_disk and est.disk_gib == pytest.approx(sum(p.stat().st_size for p in files) / 2**30, abs=0.005)
    real = estimate(m, "fp16").plans
    assert real["minimum"] < real["low"] < real["medium"] <= real["high"]
    # the case: a 16 GB card must not plan Wan 1.3B as high; the 14B needs more under every plan
    wan, wan14 = estimate(load_manifest("wan_vace"), "bf16"), estimate(load_manifest("wan_vace_14b"), "bf16")
    assert wan.weights_gib > 14.0 and wan.fits(16.0) in ("low", "minimum")
    assert plan_memory(wan, 16.0, "bf16").offload != "none"
    assert all(wan14.plans[p] > wan.plans[p] for p in PLANS)
    # more frames or pixels never need less
    more = estimate(load_manifest("wan_vace"), "bf16", 832, 480, 121)
    assert all(more.plans[p] >= wan.plans[p] for p in ("high", "medium", "low"))
    assert [plan_memory(wan, g, "bf16").level for g in (40, 20.5, 13, 5)] == list(PLANS)


def test_oom_while_loading_names_the_plan_that_fits():
    import torch

    from gvfx.engines.diffusion.runtime import guard_oom

    rt = Runtime("cpu", "bf16", plan_memory("wan_vace", 40.0, "bf16"))
    assert rt.plan.level == "high"
    with pytest.raises(EngineError, match=r"wan_vace.*out of memory.*plan high\) loading the stack") as ei:
        with guard_oom("wan_vace", rt, 832, 480, what="loading the stack"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 11.00 GiB")
    assert "set memory: medium" in ei.value.hint and "GiB" in ei.value.hint
