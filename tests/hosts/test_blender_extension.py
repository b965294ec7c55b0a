"""The Blender extension by Blender's own rules, in both Blender environments: Blender's validator
(``bl_pkg/cli/blender_ext.py validate``, shipped in the bpy module) accepts the zip build.py makes and
refuses an over-long permission reason; build.py's self-hosted repository index is the one Blender's
``server-generate`` writes; and real Blender installs gvfx from that repository (docs/blender.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "hosts" / "blender" / "build.py"
SCRIPTS = Path(__file__).resolve().parent / "blender_scripts"
BLENDERS = {"blender5": ("GVFX_BLENDER_PYTHON", 5), "blender4": ("GVFX_BLENDER4_PYTHON", 4)}


@pytest.fixture(scope="module", params=list(BLENDERS))
def blender(request) -> dict:
    var, major = BLENDERS[request.param]
    exe = os.environ.get(var, "").strip()
    if not exe or not Path(exe).is_file():
        pytest.skip(f"{var} is not set to a Python with bpy {major}.x (see tests/hosts/test_blender_addon.py)")
    site = Path(subprocess.run([exe, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    tools = sorted(site.glob("bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    assert tools, f"no bl_pkg/cli/blender_ext.py under {site}/bpy"
    return {"id": request.param, "python": exe, "major": major, "blender_ext": tools[-1]}


def _build(out: Path, *extra: str) -> list[str]:
    run = subprocess.run([sys.executable, str(BUILD), "-o", str(out), *extra], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


def _validate(blender: dict, zip_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([blender["python"], str(blender["blender_ext"]), "validate", str(zip_path)],
                          capture_output=True, text=True, timeout=60)


def test_blenders_validator_accepts_the_zip(blender, tmp_path):
    zip_path = Path(_build(tmp_path / "dist")[0])
    run = _validate(blender, zip_path)
    assert run.returncode == 0 and "FATAL" not in run.stdout + run.stderr, run.stdout + run.stderr
    with zipfile.ZipFile(zip_path) as zf:
        manifest = zf.read("blender_manifest.toml").decode()
    reasons = re.findall(r'^\w+\s*=\s*"([^"]*)"', manifest.split("[permissions]", 1)[1].split("[", 1)[0], re.M)
    assert reasons and all(len(r) <= 64 for r in reasons)


def test_blenders_validator_refuses_a_long_permission_reason(blender, tmp_path):
    """The validator is a real check: the 73-character reason gvfx once shipped is FATAL."""
    good = Path(_build(tmp_path / "dist")[0])
    bad = tmp_path / "long_reason.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "blender_manifest.toml":
                data = re.sub(rb'^files = ".*"$', b'files = "Read plates and write job, camera and element files under '
                              b'the output root"', data, flags=re.M)
            dst.writestr(item, data)
    run = _validate(blender, bad)
    assert run.returncode != 0 and "64 characters" in run.stdout + run.stderr, run.stdout + run.stderr


def test_repository_index_is_blenders(blender, tmp_path):
    """build.py --repo writes the index Blender's own server-generate writes (and can use that tool)."""
    ours = json.loads(Path(_build(tmp_path / "a", "--repo", str(tmp_path / "repo_a"))[-1]).read_text())
    theirs_path = _build(tmp_path / "b", "--repo", str(tmp_path / "repo_b"), "--blender-ext", str(blender["blender_ext"]))[-1]
    theirs = json.loads(Path(theirs_path).read_text())
    assert ours["version"] == theirs["version"] == "v1"
    assert ours["data"][0]["permissions"] == theirs["data"][0]["permissions"]
    assert ours == theirs


def test_installs_from_the_self_hosted_repository(blender, tmp_path):
    index = Path(_build(tmp_path / "dist", "--repo", str(tmp_path / "repo"))[-1])
    cfg = {"url": index.as_uri(), "result": str(tmp_path / "result.json")}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    env.pop("PYTHONPATH", None)
    run = subprocess.run([blender["python"], str(SCRIPTS / "repo_install.py"), "--", str(tmp_path / "cfg.json")],
                         env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads((tmp_path / "result.json").read_text())
    assert out["blender_version"][0] == blender["major"]
    assert out["add"] == out["sync"] == out["install"] == ["FINISHED"]
    assert out["addons"] == [f"bl_ext.{out['module']}.gvfx"]
    assert "blender_manifest.toml" in out["installed"] and "vendor" in out["installed"]
    assert out["operator"] is True  # registered: the add-on is enabled, not only unpacked
