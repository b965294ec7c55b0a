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
from tests.pipeline.pipeline_shot import make_shot, set_job

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
    ({"match": {"overscan_px": 10**6}}, "match.overscan_px", "4096"),  # a 2e6-pixel canvas: 14.6 TiB before
    ({"match": {"lightwrap_width_px": 1e9}}, "match.lightwrap_width_px", "256"),
    ({"elements.0.match": {"shadow_softness": 50.0}}, "elements[smoke].match.shadow_softness", "1.0"),
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


def test_a_timeline_link_to_another_shot_is_refused_and_that_shot_is_untouched(tmp_path: Path) -> None:
    """The issue's serious case: NAME.otio (or its lock) pointed at another shot's timeline. The link is
    followed before anything is created: the other shot's timeline keeps its bytes and its versions."""
    other = make_shot(tmp_path / "other", FRAMES, size=(32, 18), name="sh020")
    render_job(load_job(other))
    theirs = other.parent / "sh020.otio"
    before = theirs.read_bytes()
    for link_name, confine in (("sh010.otio", True), ("sh010.otio.lock", False)):  # confined or not
        mine = make_shot(tmp_path / f"mine_{link_name.replace('.', '_')}", FRAMES, size=(32, 18))
        set_job(mine, confine=confine)
        (mine.parent / link_name).symlink_to(theirs)
        with pytest.raises(JobError, match=r"name: .* outside the output root"):
            render_job(load_job(mine))
        assert not (mine.parent / "elements").exists() and not (mine.parent / ".gvfx.lock").exists()
    assert theirs.read_bytes() == before
    assert [p.name for p in (other.parent / "elements" / "smoke").iterdir()] == ["v001"]


def test_a_version_folder_link_that_leads_away_is_never_resumed_into(tmp_path: Path) -> None:
    job = make_shot(tmp_path / "sh", FRAMES, size=(32, 18))
    render_job(load_job(job))
    elsewhere = tmp_path / "elsewhere"
    v1 = job.parent / "elements" / "sparks" / "v001"
    v1.rename(elsewhere)
    v1.symlink_to(elsewhere, target_is_directory=True)
    for f in elsewhere.glob("*.exr"):
        f.unlink()
    with pytest.raises(JobError, match=r"v001 resolves to .*elsewhere, outside"):
        render_job(load_job(job), resume=True)
    assert not list(elsewhere.glob("*.exr"))  # nothing written through the link
    assert sorted(p.name for p in v1.parent.iterdir()) == ["v001"]  # and no new version left behind


@pytest.mark.parametrize("key, value, field", [
    ("elements.0.params.resolution", float("nan"), "elements[smoke].params.resolution"),
    ("elements.0.params.preroll_frames", float("inf"), "elements[smoke].params.preroll_frames"),
    ("elements.1.params", {"count": float("-inf")}, "elements[sparks].params.count"),
    ("elements.0.placement", {"screen": [float("nan"), 3.0]}, "elements[smoke].placement.screen"),
    ("match", {"light_dir": [0.0, float("inf"), 1.0]}, "match.light_dir"),
    ("match", {"colour_strength": float("nan")}, "match.colour_strength")])
def test_non_finite_params_placement_and_match_name_the_field(shot: Path, key: str, value, field: str) -> None:
    assert "finite" in _refused(shot, field, **{key: value})


def test_an_unknown_colour_space_lists_the_allowed_values(shot: Path) -> None:
    from gvfx.color import colorspaces

    text = _refused(shot, "plate.colorspace", plate={"path": "plates/plate/plate.####.exr", "colorspace": "Bogus"})
    assert all(name in text for name in colorspaces()), text
    near = _refused(shot, "plate.colorspace", plate={"path": "plates/plate/plate.####.exr", "colorspace": "ACEScgg"})
    assert "did you mean ACEScg" in near


@pytest.mark.parametrize("grade, words", [({"gain": [41000.0, 1.0, 1.0]}, "gain 4.1e+04"),
                                          ({"gain": [1.0, 1.0, 1.0], "lift": [9.0, 0.0, 0.0]}, "lift 9"),
                                          ({"gain": [1.0, float("nan"), 1.0]}, "non-finite"),
                                          ({"gian": [1.0, 1.0, 1.0]}, "not a colour grade")])
def test_a_given_colour_grade_obeys_the_measured_bounds(shot: Path, grade: dict, words: str) -> None:
    assert words in _refused(shot, "match.colour_match", match={"colour_match": grade})
    assert words in _refused(shot, "elements[sparks].match.colour_match", **{"elements.1.match": {"colour_match": grade}})
    parse_job(_job(shot, match={"colour_match": {"gain": [1.2, 0.9, 1.0]}}), shot.parent)  # a sane grade passes


def test_a_plate_wider_than_the_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    for f in FRAMES:
        write_layers(tmp_path / f"p.{f:04d}.exr", rgba=np.full((8, 16385, 4), 0.5, np.float32))
    job = parse_job({"plate": {"path": "p.####.exr"}, "output": "out",
                     "elements": [{"name": "a", "effect": "sparks"}]}, tmp_path)
    with pytest.raises(GvfxError, match=r"plate: 16385x8 is larger than the limit of 16384 pixels a side"):
        render_job(job)
    assert not (tmp_path / "out" / "elements").exists()


def test_stack_names_and_folders_are_names(tmp_path: Path) -> None:
    """A model stack's name and its manifest's ``folder`` become paths in the store: never paths."""
    from gvfx.engines.diffusion.stacks import load_manifest
    from gvfx.errors import InputError

    real = Path(__file__).parents[1] / "model" / "stacks" / "sd15_depth_ip.yaml"
    assert load_manifest("sd15_depth_ip").folder == "sd15_depth_ip"
    for name in ("../stacks/sd15_depth_ip", "/etc/passwd", "a b", ""):
        with pytest.raises(InputError, match="is not a stack name"):
            load_manifest(name)
    for folder in ("../../escape", "/tmp/escape", "a/b"):
        bad = tmp_path / "bad.yaml"
        bad.write_text(real.read_text().replace("folder: sd15_depth_ip", f"folder: {folder}"))
        with pytest.raises(InputError, match=r"stack manifest field folder: .* must start with a letter"):
            load_manifest(bad)
