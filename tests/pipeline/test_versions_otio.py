"""The shot timeline tracks every version: one clip per element, a media reference per version, read
back with OpenTimelineIO itself; crashed versions read ``incomplete``; other tools read the file."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest
from pipeline_shot import make_shot

from gvfx.job import load_job
from gvfx.render import render_job
from gvfx.timeline import SeqRef, VersionEntry, active_versions, timeline_lock, timeline_versions, update_timeline

FRAMES = list(range(1001, 1007))


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> Path:
    """Rendered twice (v001, v002), then a partial v003 of frames 1001-1002."""
    root = tmp_path_factory.mktemp("otio_shot")
    job = load_job(make_shot(root, FRAMES))
    render_job(job)
    render_job(job)
    render_job(job, frames=(1001, 1002))
    return root


def _clip(tl: otio.schema.Timeline, name: str) -> otio.schema.Clip:
    track = next(t for t in tl.tracks if t.name == name)
    return next(c for c in track if isinstance(c, otio.schema.Clip))


def test_every_version_is_a_media_reference(shot: Path) -> None:
    tl = otio.adapters.read_from_file(str(shot / "sh010.otio"))
    assert [t.name for t in tl.tracks] == ["plate", "smoke", "sparks", "comp"]
    assert tl.global_start_time.to_frames() == 1001
    assert tl.metadata["gvfx"]["job"] == str(shot / "job.yaml")
    plate = _clip(tl, "plate").media_reference
    assert isinstance(plate, otio.schema.ImageSequenceReference)
    assert (plate.target_url_base, plate.name_prefix, plate.start_frame) == ("plates/plate", "plate.", 1001)
    for name in ("smoke", "sparks", "comp"):
        clip = _clip(tl, name)
        refs = clip.media_references()
        assert list(refs) == ["v001", "v002", "v003"]
        # the newest complete version is active: v003 is partial
        assert clip.active_media_reference_key == "v002"
        assert clip.metadata["gvfx"]["active_version"] == "v002"
        assert list(clip.metadata["gvfx"]["versions"]) == ["v001", "v002", "v003"]
        assert clip.source_range.duration.to_frames() == len(FRAMES)
        folder = "comp" if name == "comp" else f"elements/{name}"
        for key, ref in refs.items():
            assert isinstance(ref, otio.schema.ImageSequenceReference)
            assert ref.target_url_base == f"{folder}/{key}"
            assert (ref.name_prefix, ref.name_suffix, ref.frame_zero_padding) == (f"{name}.", ".exr", 4)
            assert (ref.start_frame, ref.frame_step, ref.rate) == (1001, 1, 24.0)
            assert ref.available_range.start_time.to_frames() == 1001
            assert ref.available_range.duration.to_frames() == len(FRAMES)
            md = ref.metadata["gvfx"]
            assert md["version"] == key and list(md["frame_range"]) == [1001, 1006]
            assert len(md["spec_hash"]) == 16 and md["created"] and md["job"] == str(shot / "job.yaml")
            assert md["status"] == ("partial" if key == "v003" else "complete")
            assert list(md["renderers"]) == []  # nobody renders it any more
            first = shot / ref.target_url_for_image_number(0)
            assert first.is_file() and first.name == f"{name}.1001.exr"
            if name != "comp":
                assert (md["engine"], md["effect"]) == ("sim", name)
                assert md["seed"] == {"smoke": 1, "sparks": 2}[name]
                assert md["cache"].startswith(f"cache/{name}-")


def test_versions_api_matches_disk(shot: Path) -> None:
    entries = timeline_versions(shot / "sh010.otio")
    assert [(e.track, e.version, e.status) for e in entries if e.track == "smoke"] == [
        ("smoke", "v001", "complete"), ("smoke", "v002", "complete"), ("smoke", "v003", "partial")]
    for e in entries:
        info = json.loads((shot / e.seq.directory / "version.json").read_text())
        assert info["status"] == e.status and info["spec_hash"] == e.metadata["spec_hash"]
    assert active_versions(shot / "sh010.otio")["sparks"].version == "v002"


def test_crashed_version_reads_incomplete(tmp_path: Path) -> None:
    """A version left ``rendering`` by a process that died reads back ``incomplete``; a live one not."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    path = tmp_path / "s.otio"
    plate = SeqRef("plate", tmp_path / "plates", "p.", ".exr", 1, 10)

    def entry(v: str, status: str, pid: int) -> VersionEntry:
        md = {"status": status, "renderers": [{"pid": pid, "host": host}] if status == "rendering" else [],
              "spec_hash": v * 2}
        return VersionEntry("fire", "element", v, SeqRef("fire", tmp_path / "elements/fire" / v, "fire.", ".exr",
                                                          1, 10, 4, md))

    with timeline_lock(path, timeout=5):
        update_timeline(path, name="s", fps=24, plate=plate, metadata={},
                        entries=[entry("v001", "complete", 0), entry("v002", "rendering", dead.pid)])
    update_timeline(path, name="s", fps=24, plate=plate, metadata={},
                    entries=[entry("v003", "rendering", __import__("os").getpid())])
    got = {e.version: e.status for e in timeline_versions(path)}
    assert got == {"v001": "complete", "v002": "incomplete", "v003": "rendering"}
    raw = otio.adapters.read_from_file(str(path))
    clip = _clip(raw, "fire")
    assert clip.media_references()["v002"].metadata["gvfx"]["status"] == "rendering"  # what was written
    assert clip.active_media_reference_key == "v001"  # the newest complete one


def test_other_tools_read_the_timeline(shot: Path) -> None:
    """Ordinary OTIO: a JSON round trip through the adapters, and a CMX 3600 EDL of one track."""
    tl = otio.adapters.read_from_file(str(shot / "sh010.otio"))
    again = otio.adapters.read_from_string(otio.adapters.write_to_string(tl, "otio_json"), "otio_json")
    assert again.is_equivalent_to(tl)
    one = otio.schema.Timeline(name="smoke only", global_start_time=tl.global_start_time)
    one.tracks.append(next(t for t in tl.tracks if t.name == "smoke").clone())
    edl = otio.adapters.write_to_string(one, "cmx_3600")
    assert "elements/smoke/v002/smoke.[1001-1006].exr" in edl  # the active version
    back = otio.adapters.read_from_string(edl, "cmx_3600", rate=24)
    clips = list(back.find_clips())
    assert len(clips) == 1 and clips[0].source_range.duration.to_frames() == len(FRAMES)


def test_failed_and_cancelled_renders_are_marked(tmp_path: Path) -> None:
    from gvfx.errors import CancelledError

    job = load_job(make_shot(tmp_path, FRAMES[:3]))

    def boom(stage: str, done: int, total: int) -> None:
        if stage == "render":
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        render_job(job, progress=boom)
    calls = iter(range(100))
    with pytest.raises(CancelledError):
        render_job(job, cancel=lambda: next(calls) >= 3)  # after the sims: cancelled between frames
    got = {(e.track, e.version): e for e in timeline_versions(tmp_path / "sh010.otio")}
    failed, cancelled = got[("smoke", "v001")], got[("smoke", "v002")]
    assert failed.status == "failed" and "RuntimeError: disk on fire" in failed.metadata["error"]
    assert cancelled.status == "partial" and cancelled.metadata["stopped"] == "cancelled"
    info = json.loads((tmp_path / "elements/smoke/v001/version.json").read_text())
    assert info["status"] == "failed" and info["renderers"] == []
