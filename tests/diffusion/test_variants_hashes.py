"""fp16 variant files, the on-disk weight-hash cache, `gvfx models list`'s plan table, and
benchmarks/gpu_check.sh's clean skip without a GPU."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gvfx_image_testkit as kit
from gvfx.engines.diffusion import DiffusionEngine
from gvfx.engines.diffusion.stacks import load_manifest
from gvfx.errors import InputError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fp16_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp16_store")
    kit.tiny_module().build_tiny("sd15_depth_ip_fp16", root / "sd15_depth_ip")
    return root


def test_a_store_holding_only_fp16_files_verifies_loads_and_runs(fp16_store, tmp_path):
    import torch

    from gvfx.engines.diffusion import store
    from gvfx.engines.diffusion.loader import load_image_stack
    from gvfx.engines.diffusion.runtime import Runtime

    unet_dir = fp16_store / "sd15_depth_ip" / "unet"
    assert (unet_dir / "diffusion_pytorch_model.fp16.safetensors").is_file()
    assert not (unet_dir / "diffusion_pytorch_model.safetensors").exists()
    st = store.verify("sd15_depth_ip", fp16_store)
    assert st.ok, st.problems
    m = load_manifest("sd15_depth_ip")
    root = fp16_store / "sd15_depth_ip"
    assert store.resolve_variant(m, root, "unet", "auto", "fp32") == "fp16"  # the only files there
    assert store.resolve_variant(m, root, "tokenizer", "auto", "fp32") is None
    with pytest.raises(InputError, match=r"no fp16 variant file ip_adapter/models/ip-adapter_sd15.fp16.safetensors"):
        store.resolve_variant(m, root, "ip_adapter", "fp16", "fp32")
    stack = load_image_stack(root, m, Runtime(), variant="auto")
    assert stack.components["unet"].dtype == torch.float32  # fp16 files, loaded at the run dtype
    assert any(k.endswith(".fp16.safetensors") for k in stack.hashes)
    ctx = kit.plate_ctx((1001,))
    spec = kit.spec("element", fp16_store, steps=1)
    eng = DiffusionEngine()
    eng.validate(spec, ctx)
    eng.prepare(spec, ctx, tmp_path / "c")
    assert eng.render_frame(spec, ctx, 1001, tmp_path / "c").rgba[..., 3].max() > 0


def test_full_files_win_at_fp32_fp16_files_at_half(tmp_path):
    from gvfx.engines.diffusion.store import resolve_variant

    m = load_manifest("sd15_depth_ip")
    unet = tmp_path / "unet"
    unet.mkdir()
    (unet / "config.json").write_text("{}")
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"):
        (unet / name).write_bytes(b"x")
    assert resolve_variant(m, tmp_path, "unet", "auto", "fp32") is None
    assert resolve_variant(m, tmp_path, "unet", "auto", "bf16") == "fp16"
    assert resolve_variant(m, tmp_path, "unet", "full", "fp16") is None


def test_weight_hashes_are_cached_on_disk_by_size_and_mtime(tmp_path, monkeypatch):
    from gvfx.engines.diffusion import hashcache

    cache = tmp_path / "h.json"
    monkeypatch.setenv("GVFX_HASH_CACHE", str(cache))
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"a" * 1000)
    st = f.stat()
    assert hashcache.sha256_file(f) == hashlib.sha256(b"a" * 1000).hexdigest()
    assert cache.is_file() and hashlib.sha256(b"a" * 1000).hexdigest() in cache.read_text()
    # same size and mtime, other bytes: a new process (memory cleared) trusts the disk cache, no re-hash
    f.write_bytes(b"b" * 1000)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    hashcache.clear_memory()
    assert hashcache.sha256_file(f) == hashlib.sha256(b"a" * 1000).hexdigest()
    # a new mtime is a new file: hashed again
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert hashcache.sha256_file(f) == hashlib.sha256(b"b" * 1000).hexdigest()
    cache.write_text("{not json")  # a corrupt cache is rebuilt, never an error
    hashcache.clear_memory()
    assert hashcache.sha256_file(f) == hashlib.sha256(b"b" * 1000).hexdigest()


def _gvfx(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gvfx", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def test_models_list_shows_sizes_vram_per_plan_and_the_plan_for_free_memory(tmp_path):
    out = _gvfx("models", "--models", str(tmp_path), "list", "--free-gb", "16", "--dtype", "bf16")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    wan = text[text.index("\nwan_vace "):]
    assert "weights (1.3B): 17.7 GiB to download" in wan
    assert "VRAM GiB at 832x480x81f bf16 (computed): high 20.3" in wan and "16 GiB free -> low" in wan
    assert "(14B)" in text and "does not fit" in text[text.index("wan_vace_14b"):]
    sd = text[text.index("\nsd15_depth_ip"):]
    assert "16 GiB free -> high" in sd.split("\n", 5)[4]
    small = _gvfx("models", "--models", str(tmp_path), "list", "--free-gb", "6", "--dtype", "fp16").stdout
    assert "6 GiB free -> minimum" in small[small.index("\nsdxl_depth_ip"):].split("\n", 5)[4]


def test_doctor_prints_the_plan_it_would_choose_here(tmp_path):
    from gvfx.doctor import _check_diffusion_plan

    line = _check_diffusion_plan(tmp_path).detail
    assert "sd15_depth_ip" in line and "wan_vace_14b" in line
    assert ("cpu fp32 (memory is not the limit)" in line) or ("GiB free" in line)


def test_gpu_check_skips_cleanly_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: run benchmarks/gpu_check.sh itself")
    out = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), sys.executable], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("SKIP: no CUDA GPU")
