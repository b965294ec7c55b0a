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


def _seq_clip(name: str, first: int, count: int, src_offset: int, duration: int, effect=None) -> otio.schema.Clip:
    """A clip on an image sequence ``name.####.exr`` holding frames ``first``..``first+count-1``."""
    rt = lambda f: otio.opentime.RationalTime(f, 24)  # noqa: E731
    ref = otio.schema.ImageSequenceReference(target_url_base=f"plates/{name}/", name_prefix=f"{name}.",
                                             name_suffix=".exr", start_frame=first, frame_zero_padding=4, rate=24,
                                             available_range=otio.opentime.TimeRange(rt(0), rt(count)))
    clip = otio.schema.Clip(name=name, media_reference=ref,
                            source_range=otio.opentime.TimeRange(rt(src_offset), rt(duration)))
    if effect is not None:
        clip.effects.append(effect)
    return clip


def test_sequence_clips_with_transitions_speed_and_short_media(tmp_path: Path) -> None:
    """An .otio written by OTIO itself: a clip dissolving into a 2x clip (3 frames before the cut, 6
    after), a freeze frame, and a clip whose media has fewer frames than its handles need. Real frame
    numbers come from each clip's own source range, its speed and the transition's offsets."""
    rt = lambda f: otio.opentime.RationalTime(f, 24)  # noqa: E731
    tr = otio.schema.Track(name="V1")
    tr.append(_seq_clip("A", 1001, 100, 10, 20))                      # cut 1011-1030
    tr.append(otio.schema.Transition(in_offset=rt(3), out_offset=rt(6)))
    tr.append(_seq_clip("B", 2001, 200, 19, 10, otio.schema.LinearTimeWarp(time_scalar=2.0)))  # 20 source frames
    tr.append(_seq_clip("C", 3001, 100, 49, 12, otio.schema.FreezeFrame()))
    tr.append(_seq_clip("D", 5000, 11, 2, 7))                          # media 5000-5010, cut 5002-5008
    tl = otio.schema.Timeline(name="cut", tracks=[tr])
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(tl, str(path))
    shots = {s.name: s for s in shots_from_timeline(read_edit(path), handles=4, base_dir=tmp_path)}
    got = {n: (s.first_frame, s.cut_in, s.cut_out, s.last_frame) for n, s in shots.items()}
    assert got == {"A": (1007, 1011, 1030, 1040),   # 4 handles before; 4 handles + 6 dissolve frames after
                   "B": (2013, 2020, 2039, 2043),   # 3 dissolve frames + 4 handles before; 10 frames at 2x = 20
                   "C": (3046, 3050, 3050, 3054),   # a freeze: one source frame
                   "D": (5000, 5002, 5008, 5010)}, got  # clamped to the media
    assert shots["A"].plate == str(tmp_path / "plates" / "A" / "A.####.exr")
    assert any("available before / after the cut (media 5000-5010)" in w for w in shots["D"].warnings)
    assert any("200% speed" in w for w in shots["B"].warnings)
    assert [s.record_in for s in shots.values()] == ["00:00:00:00", "00:00:00:20", "00:00:01:06", "00:00:01:18"]


def test_probe_stats_leave_non_finite_pixels_out(tmp_path: Path) -> None:
    """min/max/mean of a colour channel are those of its finite pixels: a +Inf band (written by
    OpenImageIO itself, float) is counted, and never read as the 65504 stand-in."""
    import OpenImageIO as oiio

    img = np.full((8, 16, 4), 0.25, np.float32)
    img[2:4, :, 0] = np.inf
    img[5, 3, 1] = np.nan
    img[6, :, 2] = 2.0
    spec = oiio.ImageSpec(16, 8, 4, "float")
    spec.channelnames = ("R", "G", "B", "A")
    out = oiio.ImageOutput.create(str(tmp_path / "p.0001.exr"))
    assert out.open(str(tmp_path / "p.0001.exr"), spec)
    out.write_image(img)
    out.close()
    st = probe(tmp_path / "p.####.exr", stats=True)["stats"]["channels"]
    assert (st["R"]["inf"], st["G"]["nan"]) == (32, 1)
    assert st["R"]["max"] == 0.25 and st["R"]["mean"] == pytest.approx(0.25)
    assert st["G"]["max"] == 0.25 and st["B"]["max"] == 2.0


@pytest.mark.parametrize("args, words", [(["--handles", "99999999999"], "--handles: 99999999999 is more than the limit"),
                                         (["--start-frame", "999999999999"], "--start-frame: frame 999999999999"),
                                         (["--handles", "60000"], "120161 frames is more than the limit of 100000")])
def test_shots_frame_limits_before_any_job_is_written(tmp_path: Path, args: list[str], words: str) -> None:
    r = subprocess.run(GVFX + ["shots", str(EDLS[0].parent / "25fps.edl"), "--rate", "25", "-o",
                               str(tmp_path / "shots"), *args], capture_output=True, text=True, timeout=120)
    errors = [x for x in r.stderr.splitlines() if x.startswith("gvfx: error:")]
    assert r.returncode != 0 and len(errors) == 1 and words in errors[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "shots").exists()
