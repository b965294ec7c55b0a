"""Hostile and careless job files: names that are paths, links that lead out, NaN/Inf numbers, values
past the documented limits, wrong types, unknown colour spaces and camera prims — each one clear line
naming the field, before anything is written or allocated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from gvfx.errors import GvfxError, JobError
from gvfx.exr import write_layers
from gvfx.job import load_job, parse_job
from gvfx.render import render_job
from tests.pipeline.pipeline_shot import make_shot

GVFX = [sys.executable, "-m", "gvfx"]
FRAMES = [1001, 1002]


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> Path:
    return make_shot(tmp_path_factory.mktemp("hj") / "sh", FRAMES, size=(32, 18))


def _job(shot: Path, **changes) -> dict:
    d = yaml.safe_load(shot.read_text())
    for key, value in changes.items():
        target = d
        parts = key.split(".")
        for p in parts[:-1]:
            target = target[int(p)] if p.isdigit() else target[p]
        target[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = value
    return d


def _refused(shot: Path, field: str, **changes) -> str:
    with pytest.raises(JobError) as err:
        parse_job(_job(shot, **changes), shot.parent)
    text = str(err.value)
    assert field in text and "\n" not in text, text
    return text


@pytest.mark.parametrize("name", ["../..", "/tmp/evil", "a/b", "..", "", "x" * 101, "sh 1", "é", "1abc"])
def test_a_job_name_is_a_name(shot: Path, name: str) -> None:
    _refused(shot, "name", name=name)
    _refused(shot, "elements[0].name", **{"elements.0.name": name})


def test_confine_resolves_write_paths_through_links(shot: Path, tmp_path: Path) -> None:
    root = shot.parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "elements").mkdir(exist_ok=True)
    link = root / "elements" / "smoke"
    link.symlink_to(elsewhere)
    try:
        with pytest.raises(JobError, match=r"elements\[smoke\]\.name: .* outside the output root"):
            render_job(load_job(shot))
        assert not any(elsewhere.iterdir()) and not (root / "sh010.otio").exists()
    finally:
        link.unlink()


@pytest.mark.parametrize("key", ["fps", "elements.0.size_m", "elements.0.seed", "elements.0.shutter",
                                 "elements.0.placement.point.0", "depth.scale", "elements.1.motion_samples"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_name_the_field(shot: Path, key: str, value: float) -> None:
    field = key.split(".")[0] if key.split(".")[0] in ("fps", "depth") else "elements["
    text = _refused(shot, field, **{key: value})
    assert "finite" in text


def test_nan_in_yaml_and_json_files(shot: Path, tmp_path: Path) -> None:
    root = shot.parent
    (root / "nan.yaml").write_text(shot.read_text().replace("size_m: 0.5", "size_m: .nan"))
    with pytest.raises(JobError, match=r"elements\[smoke\]\.size_m: nan is not a finite number"):
        load_job(root / "nan.yaml")
    (root / "inf.json").write_text('{"plate": {"path": "plates/plate/plate.####.exr"}, "fps": Infinity,'
                                   ' "elements": [{"effect": "sparks"}]}')
    with pytest.raises(JobError, match="fps: inf is not a finite number"):
        load_job(root / "inf.json")


@pytest.mark.parametrize("changes, field, limit", [
    ({"plate": {"path": "plates/plate/plate.####.exr", "frames": "1-200000"}}, "plate.frames", "100000"),
    ({"plate": {"path": "plates/plate/plate.####.exr", "frames": [1, 99999999]}}, "plate.frames", "9999999"),
    ({"elements.1.motion_samples": 10**9}, "motion_samples", "64"),
    ({"elements.1.seed": 2**40}, "seed", "4.29497e+09"),
    ({"elements.1.seed": -1}, "seed", "minimum 0"),
    ({"elements.1.params": {"count": 10**9}}, "params.count", "200000"),
    ({"elements.1.params": {"substeps": 10**6}}, "params.substeps", "16"),
    ({"camera": {"file": "cam.usda", "proxy_width": 10**6}}, "camera.proxy_width", "16384"),
    ({"fps": 1e9}, "fps", "1000"),
])
def test_limits_name_the_field_and_the_limit(shot: Path, changes: dict, field: str, limit: str) -> None:
    text = _refused(shot, field, **changes)
    assert limit in text


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (7, 40)])
def test_a_tiny_plate_is_refused_with_its_minimum(tmp_path: Path, size: tuple[int, int]) -> None:
    w, h = size
    for f in FRAMES:
        write_layers(tmp_path / f"p.{f:04d}.exr", rgba=np.full((h, w, 4), 0.5, np.float32),
                     z=np.full((h, w), 3.0, np.float32))
    job = parse_job({"plate": {"path": "p.####.exr"}, "output": "out",
                     "elements": [{"name": "a", "effect": "sparks"}]}, tmp_path)
    with pytest.raises(GvfxError, match=rf"plate: {w}x{h} is smaller than the minimum of 8x8 pixels"):
        render_job(job)
    assert not (tmp_path / "out" / "elements").exists()


@pytest.mark.parametrize("changes, field, words", [
    ({"depth": {"layer": "Z", "near_is_one": "no"}}, "depth.near_is_one", "true or false"),
    ({"comp": "yes"}, "comp", "true or false"),
    ({"confine": 1}, "confine", "true or false"),
    ({"camera": {"file": "cam.usda", "solve": "false"}}, "camera.solve", "true or false"),
    ({"plate": {"path": "plates/plate/plate.####.exr", "colorspace": "Bogus"}}, "plate.colorspace", "Bogus"),
    ({"plate": {"path": "plates/plate/plate.####.exr", "colorspace": ["ACEScg"]}}, "plate.colorspace", "text"),
    ({"plate": {"path": "plates/plate/plate.####.exr", "view": ["left"]}}, "plate.view", "text"),
    ({"depth": {"layer": ["Z"]}}, "depth.layer", "text"),
    ({"depth": {"layer": "Z", "convention": "metres"}}, "depth.convention", "z, distance"),
    ({"depth": {"layer": "Z", "source": ["sfm"]}}, "depth.source", "sfm, estimator, user"),
    ({"elements.0.effect": ["smoke"]}, "effect", "text"),
    ({"elements.0.engine": 3}, "engine", "text"),
    ({"camera": {"file": "cam.usda", "prim": 5}}, "camera.prim", "text"),
    ({"camera": {"prim": "/World/Camera"}}, "camera.prim", "USD camera.file"),
    ({"version": True}, "version", "not supported"),
    ({"plate": {"path": "plates/plate/plate.####.exr", "frames": True}}, "plate.frames", "frame range"),
])
def test_every_field_is_typed(shot: Path, changes: dict, field: str, words: str) -> None:
    text = _refused(shot, field, **changes)
    assert words in text


def test_a_camera_prim_that_does_not_exist_is_an_error_listing_the_cameras(shot: Path) -> None:
    job = parse_job(_job(shot, camera={"file": "cam.usda", "prim": "/World/Nope"}), shot.parent)
    with pytest.raises(GvfxError) as err:
        render_job(job)
    assert "camera.prim: no prim at /World/Nope" in str(err.value) and "/World/Camera" in str(err.value)
    from gvfx.plate import open_plate

    found = open_plate(parse_job(_job(shot, camera={"file": "cam.usda", "prim": "/World/Camera"}), shot.parent))
    assert found.camera.metadata["prim"] == "/World/Camera"


def test_cli_lines_without_tracebacks(shot: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_job(shot, name="../../escape")).replace("plates/", f"{shot.parent}/plates/")
                   .replace("cam.usda", str(shot.parent / "cam.usda")))
    cases = [GVFX + ["render", str(bad)], GVFX + ["demo", "--resolution", "2x2", "--out", str(tmp_path / "d")],
             GVFX + ["demo", "--resolution", "99999x99999", "--out", str(tmp_path / "d")],
             GVFX + ["demo", "--frames", "100000000", "--out", str(tmp_path / "d")]]
    for cmd in cases:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("gvfx: error:"), (cmd, r.stderr)
    assert not (tmp_path / "d").exists() and not list(tmp_path.parent.glob("escape*"))
    assert os.listdir(tmp_path) == ["bad.yaml"]
