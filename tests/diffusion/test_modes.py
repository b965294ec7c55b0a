"""The engine through render_job (EXR metadata), its input checks, and the pieces every mode uses:
colour round trip, matte, memory plan, OOM message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import gvfx_image_testkit as kit
from gvfx.engines.diffusion import DiffusionEngine
from gvfx.errors import EngineError, InputError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return kit.tiny_store(tmp_path_factory)


def test_render_job_writes_model_metadata_into_every_exr(store, tmp_path):
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.scene import write_demo_plate
    from gvfx.exr import read_exr
    from gvfx.job import load_job
    from gvfx.render import render_job
    from gvfx.sequence import frame_path

    pattern, track, scene = write_demo_plate(tmp_path / "plate", 64, 48, [1001, 1002])
    write_usd_camera(tmp_path / "plate" / "camera.usda", track, fps=24.0)
    cx, top_y, cz = scene.table_top_center
    params = {"stack": "sd15_depth_ip", "models": str(store), "model_resolution": 64, "steps": 2,
              "prompt": "a brass lamp", "guidance": 5.0}
    job = {"version": 1, "name": "d", "plate": {"path": str(Path(pattern).relative_to(tmp_path)), "frames": "1001-1002"},
           "depth": {"layer": "Z"}, "camera": {"file": "plate/camera.usda"}, "output": "out",
           "elements": [{"name": "lamp", "engine": "diffusion", "effect": "insert", "seed": 11, "size_m": 0.4,
                         "placement": {"point": [cx, top_y, cz]}, "params": params}]}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    res = render_job(load_job(tmp_path / "job.yaml"), write_timeline_file=False)
    for f in (1001, 1002):
        meta = read_exr(frame_path(res.elements["lamp"].pattern, f)).metadata
        assert meta["gvfx:model"] == "sd15_depth_ip" and meta["gvfx:prompt"] == "a brass lamp"
        assert meta["gvfx:seed"] == 11 and meta["gvfx:steps"] == 2 and meta["gvfx:mode"] == "insert"
        hashes = json.loads(meta["gvfx:model_hashes"])
        assert len(hashes["unet/diffusion_pytorch_model.safetensors"]) == 12
        assert "apache-2.0" in meta["gvfx:licenses"] and "gvfx:license_warning" not in meta


def test_non_commercial_component_is_flagged(store, tmp_path, monkeypatch):
    from gvfx.engines.diffusion.stacks import load_manifest

    text = Path(load_manifest("sd15_depth_ip").path).read_text()
    nc = text.replace("name: sd15_depth_ip", "name: sd15_nc").replace("folder: sd15_depth_ip", "folder: sd15_depth_ip", 1)
    nc = nc.replace("license: {id: openrail, non_commercial: false}", "license: {id: CC-BY-NC-4.0, non_commercial: true}")
    (tmp_path / "sd15_nc.yaml").write_text(nc)
    monkeypatch.setenv("GVFX_STACKS", str(tmp_path))
    meta = DiffusionEngine().metadata(kit.spec("element", store, stack="sd15_nc"))
    assert "NON-COMMERCIAL" in meta["license_warning"] and "controlnet" in meta["license_warning"]
    from gvfx.engines.diffusion.store import list_stacks

    assert [s.non_commercial for s in list_stacks(store) if s.name == "sd15_nc"] == [("controlnet",)]


@pytest.mark.parametrize("params, message", [
    ({"prompt": ""}, "needs a prompt or a reference"),
    ({"model_resolution": 60}, "not a multiple of 8"),
    ({"stack": "nope"}, "unknown model stack"),
    ({"models": "/nonexistent/store"}, "not installed"),
])
def test_bad_input_is_one_clear_error(store, params, message):
    with pytest.raises(InputError, match=message):
        DiffusionEngine().validate(kit.spec("element", store, **params), kit.plate_ctx())


def test_bad_mode_inputs(store):
    eng, ctx = DiffusionEngine(), kit.plate_ctx()
    with pytest.raises(InputError, match="sim_effect"):
        eng.validate(kit.spec("refine", store, sim_effect="lava"), ctx)
    with pytest.raises(InputError, match="no matte sequence"):
        eng.validate(kit.spec("insert", store, mask="matte"), ctx)
    with pytest.raises(InputError, match="leaves no denoising step"):
        eng.validate(kit.spec("insert", store, steps=1, strength=0.5), ctx)
    with pytest.raises(EngineError, match="unknown diffusion effect"):
        eng.validate(kit.spec("element", store).__class__(name="x", effect="paint", engine="diffusion"), ctx)


def test_colour_round_trip_is_exact_and_highlights_survive():
    from gvfx.color import from_display
    from gvfx.engines.diffusion.colour import WHITE, from_model, inverse_tone_map, to_model, tone_map

    v = np.linspace(0.0, WHITE, 4001, dtype=np.float32)
    assert np.allclose(inverse_tone_map(tone_map(v)), v, atol=2e-5)
    assert tone_map(np.float32(WHITE)) == pytest.approx(1.0) and np.all(np.diff(tone_map(v)) > 0)
    disp = np.random.default_rng(0).uniform(0.0, 3.5, (16, 16, 3)).astype(np.float32)  # in the model's range
    lin = from_display(disp)  # scene-linear ACEScg, highlights up to ~10
    back = from_model(to_model(lin))
    assert np.allclose(back, lin, rtol=1e-4, atol=1e-5)
    assert lin.max() > 4.0 and to_model(lin).max() < 1.0  # highlights squeezed, not clipped


def test_key_matte_is_premultiplied_and_recovers_a_disc():
    from gvfx.engines.diffusion.matte import KEY_GREY, key_matte

    img = np.full((32, 32, 3), KEY_GREY, np.float32)
    y, x = np.mgrid[0:32, 0:32]
    disc = (x - 16) ** 2 + (y - 16) ** 2 < 64
    img[disc] = (0.9, 0.3, 0.1)
    alpha, straight = key_matte(img)
    assert np.all(alpha[disc] == 1.0) and np.all(alpha[~disc] == 0.0)
    assert np.allclose(straight[disc], (0.9, 0.3, 0.1)) and np.all(straight[~disc] == 0)


def test_memory_plan_fits_small_cards_and_oom_says_what_to_change():
    import torch

    from gvfx.engines.diffusion.runtime import Runtime, guard_oom, plan_memory

    assert plan_memory("sdxl", 24.0).offload == "none"
    ten = plan_memory("sdxl", 12.0)  # SDXL's real fp16 weights are ~10.6 GiB: a 12 GB card offloads
    assert ten.offload == "model" and ten.vae_tiling and ten.max_batch == 1
    assert plan_memory("sd15", 8.0).offload == "none"
    assert plan_memory("sdxl", 4.0).offload == "sequential"
    rt = Runtime("cuda", "fp16", plan_memory("sdxl", 18.0))
    with pytest.raises(EngineError, match=r"sdxl_depth_ip.*out of memory.*memory: (medium|low|minimum).*lower model_resolution"):
        with guard_oom("sdxl_depth_ip", rt, 1024, 1024):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
