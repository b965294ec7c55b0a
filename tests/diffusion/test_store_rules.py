"""Store rules: one model-store location for every model (``$GVFX_MODELS``, else ``~/.cache/gvfx/models``),
and ``verify``'s base-model check comparing components with each other (so tiny stacks verify), while a
deliberately mismatched ControlNet or a missing shard is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import gvfx_image_testkit as kit
from gvfx.engines.diffusion import store
from gvfx.engines.diffusion.stacks import load_manifest, manifest_dirs

VIDEO = ("wan_vace", "animatediff_depth")


@pytest.fixture(scope="module")
def video_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rules_store")
    tiny = kit.tiny_module()
    for name in VIDEO:
        tiny.build_tiny(name, root / name)
    return root


@pytest.mark.parametrize("env", [True, False])
def test_one_store_location_everywhere(monkeypatch, tmp_path, env):
    from gvfx import doctor
    from gvfx.analyze.depth_estimator import default_model_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GVFX_DEPTH_MODEL", raising=False)
    monkeypatch.delenv("GVFX_STACKS", raising=False)
    if env:
        monkeypatch.setenv("GVFX_MODELS", str(tmp_path / "studio_models"))
        expected = tmp_path / "studio_models"
    else:
        monkeypatch.delenv("GVFX_MODELS", raising=False)
        expected = tmp_path / "home" / ".cache" / "gvfx" / "models"
    assert doctor.models_dir_default() == expected
    assert store.models_root() == expected
    assert store.stack_dir(load_manifest("wan_vace")) == expected / "wan_vace"
    assert default_model_dir() == expected / "depth_anything_v2_small"
    assert expected / "stacks" in manifest_dirs()
    assert str(expected) in doctor._check_models(None).detail
    assert store.models_root(tmp_path / "job_models") == tmp_path / "job_models"  # the element's `models`
    monkeypatch.setenv("GVFX_DEPTH_MODEL", str(tmp_path / "da"))
    assert default_model_dir() == tmp_path / "da"


def test_docs_and_params_state_the_same_rule():
    from gvfx.engines.diffusion.common import COMMON_PARAMS

    rule = "~/.cache/gvfx/models"
    assert rule in next(p for p in COMMON_PARAMS if p.name == "models").help
    for rel in ("model/README.md", "docs/diffusion.md", "model/depth_anything_v2_small.yaml"):
        text = (kit.REPO / rel).read_text()
        assert rule in text and "./models" not in text, rel


def test_verify_passes_on_tiny_stacks_whatever_the_manifest_dims(video_store, capsys):
    from gvfx.cli import main

    m = load_manifest("animatediff_depth")
    assert m.components["controlnet"].cross_attention_dim == 768  # the real checkpoint's width
    tiny_dim = json.loads((video_store / "animatediff_depth" / "unet" / "config.json").read_text())["cross_attention_dim"]
    assert tiny_dim != 768  # ...which the tiny stack does not have, and still verifies
    for name in VIDEO:
        st = store.verify(name, video_store)
        assert st.ok, st.problems
    assert main(["models", "--models", str(video_store), "verify"]) == 0
    out = capsys.readouterr().out
    assert "ok   animatediff_depth" in out and "ok   wan_vace" in out


def test_verify_names_a_mismatched_controlnet_and_a_missing_shard(video_store, tmp_path, capsys):
    from gvfx.cli import main

    bad = tmp_path / "store"
    shutil.copytree(video_store, bad)
    cfg = bad / "animatediff_depth" / "controlnet" / "config.json"
    data = json.loads(cfg.read_text())
    data["cross_attention_dim"] = int(data["cross_attention_dim"]) * 2  # a ControlNet for another base model
    cfg.write_text(json.dumps(data))
    st = store.verify("animatediff_depth", bad)
    assert not st.ok and any(p.startswith("controlnet has cross_attention_dim") for p in st.problems)
    assert main(["models", "--models", str(bad), "verify", "animatediff_depth"]) == 1
    assert "controlnet has cross_attention_dim" in capsys.readouterr().out

    index = json.loads((bad / "wan_vace" / "transformer" / "diffusion_pytorch_model.safetensors.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[-1]
    before = store.component_hashes(load_manifest("wan_vace"), bad / "wan_vace")
    assert f"transformer/{shard}" in before  # sharded weights are part of the provenance hashes
    (bad / "wan_vace" / "transformer" / shard).unlink()
    st = store.verify("wan_vace", bad)
    assert not st.ok and any(shard in p and "missing" in p for p in st.problems)
