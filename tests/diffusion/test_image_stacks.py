"""Each tiny image stack (SD 1.5, SDXL) loaded through the real loading code, every mode at 64x64 for
2 steps on the CPU: shapes, alpha, premultiplication, bitwise determinism, the plate untouched outside
an insert mask."""

from __future__ import annotations

import numpy as np
import pytest

import gvfx_image_testkit as kit
from gvfx.engines.diffusion import DiffusionEngine


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return kit.tiny_store(tmp_path_factory)


@pytest.fixture(scope="module")
def ctx():
    return kit.plate_ctx()


def _render(spec, ctx, cache_dir):
    eng = DiffusionEngine()
    eng.validate(spec, ctx)
    eng.prepare(spec, ctx, cache_dir)
    return [eng.render_frame(spec, ctx, f, cache_dir) for f in ctx.frames]


def test_loader_loads_once_offline_with_every_pipeline(store):
    from gvfx.engines.diffusion.loader import load_image_stack
    from gvfx.engines.diffusion.runtime import choose_runtime
    from gvfx.engines.diffusion.stacks import load_manifest

    for name in kit.STACKS:
        m = load_manifest(name)
        rt = choose_runtime(m.family)
        a = load_image_stack(store / name, m, rt)
        assert load_image_stack(store / name, m, rt) is a  # cached per process
        assert a.has_ip_adapter and set(a.hashes) >= {"unet/diffusion_pytorch_model.safetensors"}
        for mode, cls in m.pipelines.items():
            assert type(a.pipeline(mode)).__name__ == cls
        assert a.pipeline("insert").unet is a.pipeline("element").unet  # shared, never loaded twice


@pytest.mark.parametrize("stack", kit.STACKS)
@pytest.mark.parametrize("effect", ["element", "insert", "refine"])
def test_mode_outputs_are_valid_and_deterministic(store, ctx, tmp_path, stack, effect):
    spec = kit.spec(effect, store, stack)
    first = _render(spec, ctx, tmp_path / "a")
    again = _render(spec, ctx, tmp_path / "b")
    kit.check_mode_outputs(ctx, effect, first, again)


def test_chunks_read_the_cache_and_equal_a_full_render(store, tmp_path):
    ctx = kit.plate_ctx((1001, 1002, 1003))
    spec = kit.spec("element", store)
    eng = DiffusionEngine()
    eng.prepare(spec, ctx, tmp_path / "c")
    full = [eng.render_frame(spec, ctx, f, tmp_path / "c").rgba for f in ctx.frames]
    eng2 = DiffusionEngine()  # a farm chunk: another engine, same cache, prepare is a no-op
    eng2.prepare(spec, ctx, tmp_path / "c")
    assert np.array_equal(eng2.render_frame(spec, ctx, 1003, tmp_path / "c").rgba, full[2])
    # a partial cache (the last frame lost) resumes from the previous frame and gives the same bits
    (tmp_path / "c" / "frame.+001003.npz").unlink()
    eng2.prepare(spec, ctx, tmp_path / "c")
    assert np.array_equal(eng2.render_frame(spec, ctx, 1003, tmp_path / "c").rgba, full[2])


def test_progress_per_step_and_cancel_between_steps(store, tmp_path):
    from gvfx.errors import CancelledError

    ctx = kit.plate_ctx()
    spec = kit.spec("element", store, steps=3)
    seen = []
    DiffusionEngine().prepare(spec, ctx, tmp_path / "p", progress=lambda d, t, m="": seen.append((d, t)))
    assert seen[-1] == (6, 6) and len(seen) >= 4 and [d for d, _ in seen] == sorted(d for d, _ in seen)
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] >= 2

    with pytest.raises(CancelledError):
        DiffusionEngine().prepare(spec, ctx, tmp_path / "q", cancel=cancel)
    assert not (tmp_path / "q" / "frame.+001001.npz").exists()
