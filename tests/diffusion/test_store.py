"""The model store: list, verify, import; pickle refused; a missing component and a ControlNet for the
wrong base model named; manifests parsed; nothing trusts remote code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import gvfx_image_testkit as kit
from gvfx.engines.diffusion import store
from gvfx.engines.diffusion.stacks import load_manifest, manifest_names
from gvfx.errors import InputError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return kit.tiny_store(tmp_path_factory)


def _copy_sd15(tiny: Path, dst_root: Path) -> Path:
    dst = dst_root / "sd15_depth_ip"
    shutil.copytree(tiny / "sd15_depth_ip", dst)
    return dst


def test_manifests_parse_with_licences_and_pipelines():
    assert {"sd15_depth_ip", "sdxl_depth_ip"} <= set(manifest_names())
    for name, fam in (("sd15_depth_ip", "sd15"), ("sdxl_depth_ip", "sdxl")):
        m = load_manifest(name)
        assert m.kind == "image" and m.family == fam and set(m.pipelines) == {"element", "insert", "refine"}
        assert {"unet", "vae", "controlnet", "ip_adapter", "image_encoder"} <= set(m.components)
        assert m.components["ip_adapter"].license_id == "apache-2.0"
        assert m.components["image_encoder"].license_id == "MIT"
        assert m.non_commercial == ()


def test_list_and_verify_tiny_stacks(tiny):
    listed = {s.name: s for s in store.list_stacks(tiny)}
    assert listed["sd15_depth_ip"].installed and listed["sdxl_depth_ip"].installed
    for name in kit.STACKS:
        st = store.verify(name, tiny)
        assert st.ok, st.problems
    hashes = store.component_hashes(load_manifest("sd15_depth_ip"), tiny / "sd15_depth_ip")
    assert len(hashes["unet/diffusion_pytorch_model.safetensors"]) == 12


def test_import_copy_and_link(tiny, tmp_path):
    st = store.import_stack(tiny / "sd15_depth_ip", "sd15_depth_ip", tmp_path / "a")
    assert st.ok and (tmp_path / "a" / "sd15_depth_ip" / "unet" / "config.json").is_file()
    st = store.import_stack(tiny / "sdxl_depth_ip", "sdxl_depth_ip", tmp_path / "b", link=True)
    assert st.ok and (tmp_path / "b" / "sdxl_depth_ip").is_symlink()
    with pytest.raises(InputError, match="already in the store"):
        store.import_stack(tiny / "sd15_depth_ip", "sd15_depth_ip", tmp_path / "a")
    with pytest.raises(InputError, match="sd15_depth_ip.*(ip_adapter|another base model)"):  # an SDXL folder
        store.import_stack(tiny / "sdxl_depth_ip", "sd15_depth_ip", tmp_path / "c")


def test_pickle_weights_refused_unless_allowed(tiny, tmp_path):
    root = _copy_sd15(tiny, tmp_path)
    w = root / "unet" / "diffusion_pytorch_model.safetensors"
    w.rename(w.with_suffix(".bin"))
    m = load_manifest("sd15_depth_ip")
    with pytest.raises(InputError, match=r"sd15_depth_ip.*'unet'.*pickled.*allow_pickle"):
        store.check_stack(m, root)
    store.check_stack(m, root, allow_pickle=True)


def test_missing_component_and_stack_named(tiny, tmp_path):
    root = _copy_sd15(tiny, tmp_path)
    shutil.rmtree(root / "controlnet")
    m = load_manifest("sd15_depth_ip")
    with pytest.raises(InputError, match=r"component 'controlnet' is missing.*lllyasviel"):
        store.check_stack(m, root)
    with pytest.raises(InputError, match="not installed"):
        store.check_stack(m, tmp_path / "nowhere")
    (root / "unet" / "config.json").unlink()
    assert "missing unet/config.json" in store.verify("sd15_depth_ip", tmp_path).problems[0]


def test_wrong_base_controlnet_named_by_engine_validate(tiny, tmp_path):
    from gvfx.engines.diffusion import DiffusionEngine

    root = _copy_sd15(tiny, tmp_path)
    shutil.rmtree(root / "controlnet")
    shutil.copytree(tiny / "sdxl_depth_ip" / "controlnet", root / "controlnet")
    with pytest.raises(InputError, match=r"controlnet has cross_attention_dim 64 but the stack's unet has 32"):
        DiffusionEngine().validate(kit.spec("element", tmp_path), kit.plate_ctx())
    assert any("controlnet" in p for p in store.verify("sd15_depth_ip", tmp_path).problems)


def test_unreadable_safetensors_and_bad_manifest(tiny, tmp_path):
    root = _copy_sd15(tiny, tmp_path)
    (root / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    st = store.verify("sd15_depth_ip", tmp_path)
    assert not st.ok and "vae" in st.problems[0] and "safetensors" in st.problems[0]
    bad = tmp_path / "bad.yaml"
    text = (Path(load_manifest("sd15_depth_ip").path).read_text()
            .replace("trust_remote_code: false", "trust_remote_code: true"))
    bad.write_text(text)
    with pytest.raises(InputError, match="trust_remote_code"):
        load_manifest(bad)
    with pytest.raises(InputError, match="unknown model stack"):
        load_manifest("no_such_stack")


def test_offline_is_forced_while_loading_and_restored(monkeypatch):
    import os

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with store.offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ


def test_no_code_sets_trust_remote_code():
    src = Path(kit.REPO / "gvfx" / "engines" / "diffusion")
    for f in src.glob("*.py"):
        assert "trust_remote_code=True" not in f.read_text(), f


def test_cli_models_list_verify_import(tiny, tmp_path, capsys):
    from gvfx.cli import main

    assert main(["models", "--models", str(tiny), "list"]) == 0
    out = capsys.readouterr().out
    assert "sd15_depth_ip" in out and "installed" in out and "apache-2.0" in out
    assert main(["models", "--models", str(tiny), "verify", "sdxl_depth_ip"]) == 0
    assert main(["models", "--models", str(tmp_path), "import", str(tiny / "sd15_depth_ip"), "--as",
                 "sd15_depth_ip", "--link"]) == 0
    assert "imported" in capsys.readouterr().out
