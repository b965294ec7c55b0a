"""`gvfx doctor`: required checks pass here; simulated failures become FAIL/warn lines, not tracebacks."""

from __future__ import annotations

import sys
from collections import namedtuple

import pytest

from gvfx import doctor
from gvfx.doctor import Check, exit_code, format_checks, run_doctor


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for var in ("OCIO", "GVFX_MODELS", "NUKE_PATH", "BLENDER_USER_EXTENSIONS", "BLENDER_USER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_required_checks_pass_in_this_venv(tmp_path):
    checks = run_doctor(tmp_path, models_dir=tmp_path / "no_models")
    failed = [c for c in checks if c.required and not c.ok]
    assert failed == [], format_checks(failed)
    assert exit_code(checks) == 0
    names = _by_name(checks)
    for name in ("python", "numpy", "OpenImageIO", "opentimelineio", "usd-core", "torch", "diffusers",
                 "transformers", "safetensors", "PySide6", "ocio", "devices", "models", "disk",
                 "nuke adapter", "blender adapter"):
        assert name in names
    assert names["numpy"].detail.startswith("2.")
    assert "ACEScg" in names["ocio"].detail and "built-in" in names["ocio"].detail
    assert "cpu" in names["devices"].detail
    # missing model store and adapters are warnings with a fix, not failures
    for name in ("models", "nuke adapter", "blender adapter"):
        assert names[name].status == "warn" and names[name].fix
    assert str(tmp_path / "no_models") in names["models"].detail


def test_import_failure_is_a_fail_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    checks = run_doctor(tmp_path, models_dir=tmp_path)
    c = _by_name(checks)["diffusers"]
    assert c.status == "FAIL" and "pip install" in c.fix and "diffusers" in c.fix
    assert exit_code(checks) == 1
    line = [ln for ln in format_checks(checks).splitlines() if " diffusers " in ln][0]
    assert line.startswith("FAIL") and "pip install" in line


def test_optional_import_failure_is_a_warning(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PySide6", None)
    checks = run_doctor(tmp_path, models_dir=tmp_path)
    assert _by_name(checks)["PySide6"].status == "warn"
    assert exit_code(checks) == 0


def test_old_version_fails():
    pkg = doctor._Package("numpy", "numpy", "numpy", "99.0")
    c = doctor._check_package(pkg)
    assert not c.ok and "older" in c.detail and "numpy>=99.0" in c.fix


def test_bad_ocio_is_a_fail(monkeypatch, tmp_path):
    monkeypatch.setenv("OCIO", str(tmp_path / "missing.ocio"))
    c = doctor._check_ocio()
    assert c.status == "FAIL" and "missing.ocio" in c.detail and "$OCIO" in c.fix


def test_crashing_check_is_reported(monkeypatch, tmp_path):
    def boom() -> Check:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(doctor, "_check_python", boom)
    checks = run_doctor(tmp_path, models_dir=tmp_path)
    c = _by_name(checks)["python"]
    assert c.status == "FAIL" and "kaboom" in c.detail
    assert exit_code(checks) == 1


def test_model_store_from_env(monkeypatch, tmp_path):
    store = tmp_path / "store"
    (store / "sd15-controlnet").mkdir(parents=True)
    (store / "depth-anything").mkdir()
    (store / "README.txt").write_text("not a model")
    monkeypatch.setenv("GVFX_MODELS", str(store))
    assert doctor.models_dir_default() == store
    c = doctor._check_models(None)
    assert c.ok and "2 model folder(s)" in c.detail and "$GVFX_MODELS" in c.detail
    assert "depth-anything" in c.detail


def test_adapters_found(monkeypatch, tmp_path):
    nuke_dir = tmp_path / "gvfx" / "hosts" / "nuke"
    nuke_dir.mkdir(parents=True)
    monkeypatch.setenv("NUKE_PATH", f"/nonexistent{':' if sys.platform != 'win32' else ';'}{nuke_dir}")
    assert doctor._check_nuke().ok
    monkeypatch.setenv("NUKE_PATH", str(tmp_path))
    assert not doctor._check_nuke().ok

    ext = tmp_path / "home" / ".config" / "blender" / "5.0" / "extensions" / "user_default" / "gvfx"
    assert not doctor._check_blender().ok
    ext.mkdir(parents=True)
    if sys.platform.startswith("linux"):
        c = doctor._check_blender()
        assert c.ok and str(ext) in c.detail
    monkeypatch.setenv("BLENDER_USER_EXTENSIONS", str(ext.parent.parent))
    assert doctor._check_blender().ok


def test_low_disk_is_a_warning(monkeypatch, tmp_path):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: usage(10 * 2**30, 9 * 2**30, 2**30))
    c = doctor._check_disk(tmp_path / "not" / "yet" / "made")
    assert c.status == "warn" and "1.0 GiB free" in c.detail
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: usage(10 * 2**40, 0, 2**40))
    assert doctor._check_disk(tmp_path).ok


def test_format_and_exit_code():
    checks = [Check("a", True, "fine"), Check("bb", False, "broken", "do x"),
              Check("c", False, "meh", "do y", required=False)]
    lines = format_checks(checks).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("ok") and "fine" in lines[0] and "fix" not in lines[0]
    assert lines[1].startswith("FAIL") and "bb" in lines[1] and "do x" in lines[1]
    assert lines[2].startswith("warn") and "do y" in lines[2]
    assert exit_code(checks) == 1
    assert exit_code([checks[0], checks[2]]) == 0


def _fake_stack(manifests, store, name: str, licence: str, non_commercial: bool, complete: bool = True) -> None:
    """A one-component stack manifest and its folder (the store only checks the files are there)."""
    import yaml

    manifests.mkdir(exist_ok=True)
    (manifests / f"{name}.yaml").write_text(yaml.safe_dump({
        "manifest_version": 2, "name": name, "kind": "image", "family": "sd15",
        "pipelines": {"element": "StableDiffusionControlNetPipeline"},
        "components": {"unet": {"folder": "unet", "class": "diffusers.UNet2DConditionModel",
                                "files": ["config.json", "diffusion_pytorch_model.safetensors"],
                                "license": {"id": licence, "non_commercial": non_commercial}}}}))
    unet = store / name / "unet"
    unet.mkdir(parents=True)
    (unet / "config.json").write_text("{}")
    if complete:
        (unet / "diffusion_pytorch_model.safetensors").write_bytes(b"")


def test_stacks_check_lists_installed_stacks_from_the_store(monkeypatch, tmp_path):
    manifests, store = tmp_path / "manifests", tmp_path / "store"
    monkeypatch.setenv("GVFX_STACKS", str(manifests))
    _fake_stack(manifests, store, "studio_ok", "apache-2.0", False)
    c = _by_name(run_doctor(tmp_path, models_dir=store))["stacks"]
    assert c.ok and "installed: studio_ok" in c.detail
    _fake_stack(manifests, store, "half_there", "apache-2.0", False, complete=False)
    c = doctor._check_stacks(store)
    assert c.status == "warn" and "incomplete: half_there" in c.detail and "gvfx models verify half_there" in c.fix


def test_stacks_check_warns_about_non_commercial_weights(monkeypatch, tmp_path):
    manifests, store = tmp_path / "manifests", tmp_path / "store"
    monkeypatch.setenv("GVFX_STACKS", str(manifests))
    _fake_stack(manifests, store, "studio_ok", "apache-2.0", False)
    _fake_stack(manifests, store, "research_only", "CC-BY-NC-4.0", True)
    monkeypatch.setenv("GVFX_MODELS", str(store))  # the default store is the one the stacks are in
    checks = run_doctor(tmp_path)
    c = _by_name(checks)["stacks"]
    assert c.status == "warn" and "research_only (unet)" in c.detail and "NON-COMMERCIAL" in c.detail
    assert "studio_ok" in c.detail and "paid work" in c.fix
    line = [ln for ln in format_checks(checks).splitlines() if " stacks " in ln][0]
    assert line.startswith("warn") and "research_only" in line
    assert exit_code(checks) == 0  # a warning, not a failure
