"""The video stacks (Wan VACE, AnimateDiff + depth ControlNet + IP-Adapter) on tiny random models built
by ``model/tiny.py`` and loaded back through ``load_video_stack``: every mode, determinism, the window
cross-fade, cancel, and the loader's refusals (missing component, pickled weights)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from gvfx.engines.diffusion import video
from gvfx.engines.diffusion.runtime import Runtime
from gvfx.engines.diffusion.stacks import load_manifest
from gvfx.engines.diffusion.video import load_video_stack, run_video
from gvfx.engines.diffusion.video_windows import crossfade_into, depth_to_control, plan_windows
from gvfx.errors import CancelledError, EngineError, InputError

REPO = Path(__file__).resolve().parents[2]
STACKS = ("wan_vace", "animatediff_depth")
T, H, W = 8, 32, 32  # the clip; single-window runs use its first 5 frames (4k+1 for Wan)


def _tiny_module():
    spec = importlib.util.spec_from_file_location("gvfx_model_tiny", REPO / "model" / "tiny.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine run ~20x faster on one thread than fighting for two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stack_dirs(tmp_path_factory) -> dict[str, Path]:
    tiny = _tiny_module()
    root = tmp_path_factory.mktemp("video_stacks")
    return {name: tiny.build_tiny(name, root / name) for name in STACKS}


@pytest.fixture(scope="module", params=STACKS)
def loaded(request, stack_dirs):
    return load_video_stack(stack_dirs[request.param], load_manifest(request.param), runtime=Runtime())


def _clip() -> dict[str, np.ndarray]:
    """Plate frames, metric depth (a box 3 m away in front of sky, the same every frame, so depth
    normalisation does not depend on which frames a run sees), an insert mask and a reference."""
    rng = np.random.default_rng(7)
    frames = rng.random((T, H, W, 3), dtype=np.float32)
    depth = np.full((T, H, W), np.inf, np.float32)
    depth[:, 8:24, 10:26] = np.linspace(2.5, 3.5, 16, dtype=np.float32)[None, None, :]
    mask = np.zeros((T, H, W), np.float32)
    mask[:, 6:26, 8:28] = 1.0
    reference = rng.random((20, 24, 3), dtype=np.float32)
    return {"frames": frames, "depth": depth, "mask": mask, "reference": reference}


def _run(loaded, mode="element", *, frames=slice(0, 5), seed=3, reference=True, window=5, overlap=2,
         steps=2, strength=None, callback=None, cancel=None) -> np.ndarray:
    c = _clip()
    return run_video(loaded, mode=mode, frames_rgb=c["frames"][frames], depth=c["depth"][frames],
                     mask=c["mask"][frames], reference_rgb=c["reference"] if reference else None,
                     prompt="a red dragon", negative_prompt="blurry", seed=seed, steps=steps,
                     strength=strength if strength is not None else (0.5 if mode == "refine" else 1.0),
                     guidance=3.0, window=window, overlap=overlap, callback=callback, cancel=cancel)


_ELEMENT: dict[str, np.ndarray] = {}


def _element(loaded) -> np.ndarray:
    """The element run on the first 5 frames, computed once per stack and reused by several tests."""
    name = loaded.manifest.name
    if name not in _ELEMENT:
        _ELEMENT[name] = _run(loaded, "element")
    return _ELEMENT[name]


# ------------------------------------------------------------------------------------- pure helpers


def test_plan_windows():
    assert plan_windows(5, 8, 2) == [(0, 5)]
    assert plan_windows(8, 8, 2) == [(0, 8)]
    assert plan_windows(8, 5, 2) == [(0, 5), (3, 8)]
    assert plan_windows(20, 8, 2) == [(0, 8), (6, 14), (12, 20)]
    assert plan_windows(21, 8, 2) == [(0, 8), (6, 14), (12, 20), (13, 21)]  # last one ends on the last frame
    for bad in ((8, 0, 0), (8, 4, 4), (8, 4, -1), (0, 4, 1)):
        with pytest.raises(InputError):
            plan_windows(*bad)


def test_crossfade_is_convex_and_seamless():
    a = np.zeros((5, 2, 2, 3), np.float32)
    b = np.ones((5, 2, 2, 3), np.float32)
    out = crossfade_into(crossfade_into(None, a, 0), b, 3)
    assert out.shape == (8, 2, 2, 3)
    np.testing.assert_array_equal(out[:3], 0.0)
    np.testing.assert_allclose(out[3:5, 0, 0, 0], [1 / 3, 2 / 3], rtol=1e-6)  # weights ramp across the overlap
    np.testing.assert_array_equal(out[5:], 1.0)


def test_depth_to_control_near_is_white_sky_black():
    depth = np.full((2, 4, 4), np.inf, np.float32)
    depth[:, 1, :] = [1.0, 2.0, 4.0, 8.0]
    c = depth_to_control(depth)
    assert c.shape == (2, 4, 4, 3) and c.dtype == np.float32
    assert c[0, 0, 0, 0] == 0.0  # sky
    row = c[0, 1, :, 0]
    assert row[0] == pytest.approx(1.0) and np.all(np.diff(row) < 0) and row[-1] > 0  # near bright, far dim
    np.testing.assert_array_equal(c[0], c[1])


# ------------------------------------------------------------------------------------------ loading


def test_load_is_cached(loaded, stack_dirs):
    again = load_video_stack(stack_dirs[loaded.manifest.name], loaded.manifest, runtime=Runtime())
    assert again is loaded
    assert loaded.has_reference


def _copy_stack(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("name, role", [("wan_vace", "transformer"), ("wan_vace", "tokenizer"),
                                        ("animatediff_depth", "motion_adapter"),
                                        ("animatediff_depth", "controlnet")])
def test_missing_component_is_named(stack_dirs, tmp_path, name, role):
    manifest = load_manifest(name)
    d = _copy_stack(stack_dirs[name], tmp_path / name)
    shutil.rmtree(d / manifest.components[role].folder)
    with pytest.raises(InputError) as err:
        load_video_stack(d, manifest, runtime=Runtime())
    assert repr(role) in str(err.value) and manifest.components[role].folder in str(err.value)


def test_missing_shard_is_named(stack_dirs, tmp_path):
    manifest = load_manifest("wan_vace")
    d = _copy_stack(stack_dirs["wan_vace"], tmp_path / "wan")
    shard = sorted((d / "transformer").glob("diffusion_pytorch_model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(InputError, match=shard.name):
        load_video_stack(d, manifest, runtime=Runtime())


def test_pickled_component_refused_without_allow_pickle(stack_dirs, tmp_path):
    import torch
    from safetensors.torch import load_file

    manifest = load_manifest("animatediff_depth")
    d = _copy_stack(stack_dirs["animatediff_depth"], tmp_path / "ad")
    weights = d / "controlnet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(str(weights)), d / "controlnet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(InputError, match="pickle") as err:
        load_video_stack(d, manifest, runtime=Runtime())
    assert "'controlnet'" in str(err.value)
    loaded = load_video_stack(d, manifest, runtime=Runtime(), allow_pickle=True)  # the user's explicit choice
    assert loaded.pipes["element"].controlnet is not None


def test_image_manifest_is_refused(stack_dirs):
    from dataclasses import replace

    manifest = load_manifest("animatediff_depth")
    with pytest.raises(EngineError, match="video loader"):
        load_video_stack(stack_dirs["animatediff_depth"], replace(manifest, kind="image"), runtime=Runtime())


# ------------------------------------------------------------------------------------------ running


@pytest.mark.parametrize("mode", ["element", "insert", "refine"])
def test_modes(loaded, mode):
    steps: list[tuple[int, int]] = []
    out = _element(loaded) if mode == "element" else _run(loaded, mode, callback=lambda d, t: steps.append((d, t)))
    assert out.shape == (5, H, W, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert out.std() > 0.0
    if mode == "refine":  # strength 0.5 of 2 steps: one denoising step
        assert steps == [(1, 1)]
    elif mode == "insert":
        assert steps[-1][0] == steps[-1][1] == len(steps)


def test_deterministic_with_seed(loaded):
    first = _element(loaded)
    np.testing.assert_array_equal(_run(loaded, "element"), first)  # bitwise
    assert not np.array_equal(_run(loaded, "element", seed=4), first)


def test_reference_changes_the_result(loaded):
    assert not np.array_equal(_run(loaded, "element", reference=False), _element(loaded))


def test_window_covering_the_clip_is_one_call(loaded, monkeypatch):
    calls = []
    runner = video._RUNNERS[loaded.family]
    monkeypatch.setitem(video._RUNNERS, loaded.family, lambda *a: calls.append(1) or runner(*a))
    out = _run(loaded, "element", window=9)
    assert len(calls) == 1
    np.testing.assert_array_equal(out, _element(loaded))


def test_windows_cross_fade_seamlessly(loaded, monkeypatch):
    calls = []
    runner = video._RUNNERS[loaded.family]
    monkeypatch.setitem(video._RUNNERS, loaded.family, lambda *a: calls.append(1) or runner(*a))
    full = _run(loaded, "element", frames=slice(0, T), window=5, overlap=2)  # windows 0..5 and 3..8
    assert len(calls) == 2 and full.shape == (T, H, W, 3)
    first = _element(loaded)  # the same seed and inputs as window 0..5 alone
    second = _run(loaded, "element", frames=slice(3, T))
    np.testing.assert_allclose(full[:3], first[:3], atol=1e-6)
    np.testing.assert_allclose(full[5:], second[2:], atol=1e-6)
    weight = np.array([1 / 3, 2 / 3], np.float32)[:, None, None, None]
    np.testing.assert_allclose(full[3:5], (1 - weight) * first[3:5] + weight * second[:2], atol=1e-6)


def test_cancel_between_steps(loaded):
    steps: list[tuple[int, int]] = []
    with pytest.raises(CancelledError):
        _run(loaded, "element", frames=slice(0, T), callback=lambda d, t: steps.append((d, t)),
             cancel=lambda: len(steps) >= 1)
    assert steps == [(1, 4)]  # 2 windows x 2 steps planned, stopped after the first step


def test_bad_inputs_are_input_errors(loaded):
    with pytest.raises(InputError, match="mask"):
        c = _clip()
        run_video(loaded, mode="insert", frames_rgb=c["frames"], depth=c["depth"], mask=None, reference_rgb=None,
                  prompt="x", negative_prompt="", seed=0, steps=2, strength=1.0, guidance=1.0, window=5, overlap=1)
    with pytest.raises(InputError, match="mode"):
        _run(loaded, "outpaint")
    with pytest.raises(InputError, match="strength"):
        _run(loaded, "refine", strength=0.2)  # 0.2 x 2 steps: nothing to run
    with pytest.raises(InputError, match="overlap"):
        _run(loaded, window=4, overlap=4)


def test_non_multiple_size_is_resized_back(loaded):
    c = _clip()
    out = run_video(loaded, mode="element", frames_rgb=c["frames"][:5, :30, :27], depth=c["depth"][:5, :30, :27],
                    mask=None, reference_rgb=None, prompt="smoke", negative_prompt="", seed=0, steps=1,
                    strength=1.0, guidance=1.0, window=5, overlap=0)
    assert out.shape == (5, 30, 27, 3)


def test_refine_follows_the_plate(loaded):
    c = _clip()
    kw = dict(mode="refine", depth=c["depth"][:5], mask=None, reference_rgb=None, prompt="smoke", negative_prompt="",
              seed=0, steps=2, strength=0.5, guidance=1.0, window=5, overlap=0)
    a = run_video(loaded, frames_rgb=c["frames"][:5], **kw)
    b = run_video(loaded, frames_rgb=c["frames"][:5, ::-1].copy(), **kw)
    assert not np.array_equal(a, b)


def test_animatediff_insert_keeps_the_plate_latents_outside_the_mask(stack_dirs):
    """Latent blending: with nothing to regenerate, the last step's latents are the plate's, whatever the
    seed (the random VAE's reconstruction of the plate, not the plate itself)."""
    loaded = load_video_stack(stack_dirs["animatediff_depth"], load_manifest("animatediff_depth"), runtime=Runtime())
    c = _clip()
    kw = dict(mode="insert", frames_rgb=c["frames"][:5], depth=c["depth"][:5], mask=np.zeros((5, H, W), np.float32),
              reference_rgb=None, prompt="smoke", negative_prompt="", steps=2, strength=1.0, guidance=1.0,
              window=5, overlap=0)
    np.testing.assert_array_equal(run_video(loaded, seed=1, **kw), run_video(loaded, seed=2, **kw))
