"""``gvfx shots`` on every EDL the OpenTimelineIO CMX 3600 adapter ships as sample data (tests/data/edl,
copied with their licence note): each one OTIO reads becomes shots without a traceback, with frames
computed from the clips' own source ranges, speeds and transitions; the two the adapter itself refuses
end in one line. And ``probe --stats`` warns about frames whose size differs from the first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from gvfx.exr import write_layers
from gvfx.probe import probe
from gvfx.shots import read_edit, shots_from_timeline

EDLS = sorted((Path(__file__).parent / "data" / "edl").glob("*.edl"))
REFUSED_BY_OTIO = {"dissolve_test_fail.edl", "timecode_mismatch.edl"}
RATE = {"25fps.edl": 25}
GVFX = [sys.executable, "-m", "gvfx"]


def test_the_samples_are_all_there() -> None:
    assert len(EDLS) == 19 and (EDLS[0].parent / "NOTICE.md").is_file()


@pytest.mark.parametrize("edl", EDLS, ids=lambda p: p.name)
def test_every_edl_otio_reads_becomes_shots(edl: Path) -> None:
    rate = RATE.get(edl.name, 24)
    try:
        otio_tl = otio.adapters.read_from_file(str(edl), rate=rate)
    except Exception:  # noqa: BLE001
        assert edl.name in REFUSED_BY_OTIO
        return
    clips = [c for t in otio_tl.video_tracks() for c in t.find_clips()]
    shots = shots_from_timeline(read_edit(edl, rate=rate), handles=8)
    assert len(shots) == len(clips)  # none skipped: every clip can be placed
    for shot, clip in zip(shots, clips):
        n = int(round(clip.source_range.duration.to_frames()))
        if not clip.effects:  # its own source range plus both handles (plus any dissolve frames)
            assert shot.last_frame - shot.first_frame + 1 >= n + 16, (shot, n)
            assert shot.cut_out - shot.cut_in + 1 == n
        assert shot.first_frame <= shot.cut_in <= shot.cut_out <= shot.last_frame
        assert shot.record_in.count(":") == 3


@pytest.mark.parametrize("edl", EDLS, ids=lambda p: p.name)
def test_gvfx_shots_cli_never_prints_a_traceback(edl: Path, tmp_path: Path) -> None:
    rate = str(RATE.get(edl.name, 24))
    r = subprocess.run(GVFX + ["shots", str(edl), "--rate", rate, "-o", str(tmp_path / "shots")],
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    if edl.name in REFUSED_BY_OTIO | {"multi_audio.edl"}:  # audio only: "no clips on its video tracks"
        assert r.returncode != 0
        errors = [x for x in r.stderr.splitlines() if x.startswith("gvfx: error:")]
        assert len(errors) == 1 and edl.name in errors[0]
    else:
        assert r.returncode == 0, r.stderr
        assert list((tmp_path / "shots").glob("*/*.yaml"))


def test_avid_record_in_and_dissolve_and_speed_frames() -> None:
    avid = shots_from_timeline(read_edit(EDLS[0].parent / "avid_example.edl"))
    assert [s.record_in for s in avid] == ["00:59:53:11", "00:59:54:18"]  # the EDL's record-in column
    assert avid[0].cut_out - avid[0].cut_in + 1 == 31
    # dissolve_test_4: clip 002 dissolves into 003 over 35 frames: 002's plate holds 35 more frames
    d4 = shots_from_timeline(read_edit(EDLS[0].parent / "dissolve_test_4.edl"))
    s2 = d4[1]
    assert s2.last_frame - s2.cut_out == 35 and any("transition" in w for w in s2.warnings)
    # speed_effects_small: a 47.56 fps clip over 36 record frames uses 72 source frames; a freeze uses 1
    sp = {s.clip_name: s for s in shots_from_timeline(read_edit(EDLS[0].parent / "speed_effects_small.edl"))}
    fast = sp["Z686_5A (LAY2) (47.56 FPS)"]
    assert fast.cut_out - fast.cut_in + 1 == 72 and any("198.333% speed" in w for w in fast.warnings)
    freeze = sp["Z682_156 (LAY3)"]
    assert freeze.cut_out == freeze.cut_in and any("freeze" in w for w in freeze.warnings)


def test_a_clip_that_cannot_be_placed_is_skipped_with_one_warning(caplog) -> None:
    tl = otio.schema.Timeline(name="t")
    tr = otio.schema.Track()
    good = otio.schema.Clip(name="good", source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(10, 24)))
    bad = otio.schema.Clip(name="broken")  # no source range, no media: OTIO cannot give its range
    tr.extend([good, bad])
    tl.tracks.append(tr)
    shots = shots_from_timeline(tl)
    assert [s.name for s in shots] == ["good"]
    skipped = [r for r in caplog.records if "broken" in r.getMessage() and "skipped" in r.getMessage()]
    assert len(skipped) == 1


def test_probe_stats_warns_about_frames_whose_size_differs(tmp_path: Path, caplog) -> None:
    for f, (w, h) in {1: (16, 8), 2: (16, 8), 3: (20, 8)}.items():
        write_layers(tmp_path / f"p.{f:04d}.exr", rgba=np.full((h, w, 4), 0.5, np.float32))
    d = probe(tmp_path / "p.####.exr", stats=True)
    assert d["stats"]["size_differs"] == {"3": "20x8"} and d["stats"]["size"] == {"width": 16, "height": 8}
    assert any("differ in size" in r.getMessage() and "3 (20x8)" in r.getMessage() for r in caplog.records)
    r = subprocess.run(GVFX + ["probe", "--stats", str(tmp_path / "p.####.exr")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "differ in size" in r.stdout + r.stderr and "Traceback" not in r.stderr
