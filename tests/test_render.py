"""`gvfx render` end to end on a small demo plate: versions, layers, metadata, chunks, resume, OTIO."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import yaml

from gvfx.camera_io import write_usd_camera
from gvfx.demo.run import reference_image
from gvfx.demo.scene import write_demo_plate
from gvfx.exr import read_exr
from gvfx.job import load_job
from gvfx.render import render_job
from gvfx.sequence import discover, frame_path

FRAMES = list(range(1001, 1009))


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shot")
    pattern, track, scene = write_demo_plate(root / "plate", 96, 54, FRAMES)
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    cx, top, cz = scene.table_top_center
    job = {
        "name": "t", "plate": {"path": "plate/plate.####.exr"}, "depth": {"layer": "Z"},
        "camera": {"file": "cam.usda"}, "output": "out",
        "elements": [
            {"name": "smoke", "effect": "smoke", "placement": {"point": [cx - 0.2, top, cz]}, "size_m": 0.5,
             "seed": 1, "motion_samples": 1, "params": {"resolution": 12, "preroll_frames": 0}},
            {"name": "sparks", "effect": "sparks", "placement": {"point": list(scene.table_edge_point)},
             "size_m": 0.3, "seed": 2, "motion_samples": 2, "start_frame": 1002},
            {"name": "ball", "effect": "insert", "reference": str(reference_image()),
             "placement": {"point": [cx, top, cz]}, "size_m": 0.2, "seed": 3, "params": {"velocity_mps": [1.5, 0, 0]}},
        ],
    }
    (root / "job.yaml").write_text(yaml.safe_dump(job))
    render_job(load_job(root / "job.yaml"))
    return root


def _pixels(path: Path) -> dict[str, np.ndarray]:
    return read_exr(path).channels


def test_outputs_layers_and_metadata(shot: Path) -> None:
    out = shot / "out"
    for name, effect in [("smoke", "smoke"), ("sparks", "sparks"), ("ball", "insert")]:
        seq = discover(out / "elements" / name / "v001" / f"{name}.####.exr")
        assert list(seq.frames) == FRAMES
        img = read_exr(seq.path(1005))
        assert {"R", "G", "B", "A", "Z", "holdout.A"} <= set(img.channels)
        assert (img.width, img.height) == (96, 54)
        md = img.metadata
        assert md["gvfx:engine"] == "sim" and md["gvfx:effect"] == effect and md["gvfx:element"] == name
        assert md["gvfx:colorspace"] == "ACEScg" and len(md["gvfx:spec_hash"]) == 16
        a, z = img.channels["A"], img.channels["Z"]
        assert a.max() > 0, f"{name} is empty on frame 1005"
        assert np.all(np.isinf(z[a == 0])) and np.all(np.isfinite(z[a > 0]))
        rgb = np.stack([img.channels[c] for c in "RGB"], -1)
        assert np.isfinite(rgb).all()
    # sparks start at 1002: frame 1001 is empty
    assert _pixels(out / "elements/sparks/v001/sparks.1001.exr")["A"].max() == 0
    comp = read_exr(out / "comp" / "v001" / "comp.1005.exr").rgba()
    plate = read_exr(shot / "plate" / "plate.1005.exr").rgba()
    assert np.abs(comp - plate).max() > 0.05  # the elements are in the comp
    assert np.isfinite(comp).all()


def test_chunk_equals_full_render_bitwise(shot: Path, tmp_path: Path) -> None:
    job = load_job(shot / "job.yaml")
    from dataclasses import replace

    chunk = render_job(replace(job, output=tmp_path / "chunk"), frames=(1004, 1006), write_timeline_file=False)
    for name, res in chunk.elements.items():
        assert res.frames == [1004, 1005, 1006]
        for f in (1004, 1005, 1006):
            full = _pixels(shot / "out" / "elements" / name / "v001" / f"{name}.{f}.exr")
            part = _pixels(frame_path(res.pattern, f))
            assert full.keys() == part.keys()
            for c in full:
                assert np.array_equal(full[c], part[c]), f"{name} frame {f} channel {c} differs"
        assert not frame_path(res.pattern, 1003).exists()


def test_new_version_then_resume(shot: Path, tmp_path: Path) -> None:
    """A second render makes v002 (v001 untouched); an interrupted v002 resumes where it stopped."""
    root = tmp_path / "shot"
    shutil.copytree(shot, root, ignore=shutil.ignore_patterns("cache"))
    job = load_job(root / "job.yaml")
    v1 = root / "out/elements/ball/v001"
    v1_mtimes = {p.name: p.stat().st_mtime_ns for p in v1.glob("*.exr")}
    partial = render_job(job, frames=(1001, 1002))  # as if killed after two frames
    v2 = partial.elements["ball"].version_dir
    assert v2.name == "v002"
    assert yaml.safe_load((v2 / "version.json").read_text())["status"] == "partial"
    v2_mtimes = {p.name: p.stat().st_mtime_ns for p in v2.glob("*.exr")}
    assert sorted(v2_mtimes) == ["ball.1001.exr", "ball.1002.exr"]
    resumed = render_job(job, resume=True)
    assert resumed.elements["ball"].version_dir == v2
    assert yaml.safe_load((v2 / "version.json").read_text())["status"] == "complete"
    for f in FRAMES:
        a, b = _pixels(v1 / f"ball.{f}.exr"), _pixels(v2 / f"ball.{f}.exr")
        for c in a:
            assert np.array_equal(a[c], b[c]), f"frame {f} channel {c}"
    for name, t in v2_mtimes.items():
        assert (v2 / name).stat().st_mtime_ns == t, f"{name} was rewritten on resume"
    for name, t in v1_mtimes.items():
        assert (v1 / name).stat().st_mtime_ns == t, f"v001 {name} was touched"
    assert not list(v2.glob(".*.tmp"))


def test_timeline_reads_back(shot: Path) -> None:
    tl = otio.adapters.read_from_file(str(shot / "out" / "t.otio"))
    names = [t.name for t in tl.tracks]
    assert names[0] == "plate" and names[-1] == "comp" and len(names) == 5
    clip = tl.tracks[0][0]
    ref = clip.media_reference
    assert isinstance(ref, otio.schema.ImageSequenceReference)
    assert ref.start_frame == 1001 and ref.frame_zero_padding == 4
    assert ref.available_range.duration.to_frames() == len(FRAMES)
    ball = next(t for t in tl.tracks if t.name.startswith("ball"))
    md = [c for c in ball if isinstance(c, otio.schema.Clip)][0].metadata["gvfx"]
    assert md["effect"] == "insert" and md["status"] == "complete" and md["version"] == "v001"


def test_plate_errors_are_clear(tmp_path: Path) -> None:
    from gvfx.errors import GvfxError

    (tmp_path / "plate").mkdir()
    write_demo_plate(tmp_path / "plate", 32, 18, [1, 2, 4])
    job = {"plate": {"path": "plate/plate.####.exr"}, "elements": [{"name": "a", "effect": "sparks"}]}
    (tmp_path / "j.yaml").write_text(yaml.safe_dump(job))
    with pytest.raises(GvfxError, match="missing frames 3"):
        render_job(load_job(tmp_path / "j.yaml"))
    job["plate"]["frames"] = "1-6"
    (tmp_path / "j.yaml").write_text(yaml.safe_dump(job))
    with pytest.raises(GvfxError, match="plate frames 3, 5-6 are missing"):
        render_job(load_job(tmp_path / "j.yaml"))


def test_sim_only_then_chunks_fill_the_same_version(shot: Path, tmp_path: Path) -> None:
    """The farm's shape: one sim step opens the versions, chunks resume into them."""
    from dataclasses import replace

    job = replace(load_job(shot / "job.yaml"), output=tmp_path / "farm")
    opened = render_job(job, sim_only=True, write_timeline_file=False)
    vdir = opened.elements["sparks"].version_dir
    assert vdir.name == "v001" and not list(vdir.glob("*.exr"))
    assert any((tmp_path / "farm" / "cache").iterdir())
    render_job(job, frames=(1001, 1004), resume=True, write_timeline_file=False)
    last = render_job(job, frames=(1005, 1008), resume=True)
    assert last.elements["sparks"].version_dir == vdir
    assert sorted(int(p.name.split(".")[1]) for p in vdir.glob("*.exr")) == FRAMES
    full = shot / "out" / "elements" / "sparks" / "v001"
    for f in (1004, 1005):
        a, b = _pixels(full / f"sparks.{f}.exr"), _pixels(vdir / f"sparks.{f}.exr")
        assert all(np.array_equal(a[c], b[c]) for c in a)
