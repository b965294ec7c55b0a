"""The shot's OTIO timeline: tracks, image sequence references, relative/absolute paths, metadata."""

from __future__ import annotations

import opentimelineio as otio
import pytest

from gvfx.errors import InputError
from gvfx.timeline import SeqRef, clip_frame_path, read_timeline, write_timeline

FPS = 24.0


@pytest.fixture
def shot(tmp_path):
    root = tmp_path / "shot"
    plate = SeqRef("plate", root / "plate", "plate.", ".exr", 1001, 1024, 4, {"status": "source"})
    fire = SeqRef.from_pattern("fire", root / "elements" / "fire" / "fire_v001.%05d.exr", 1005, 1024,
                               {"engine": "sim", "effect": "fire", "seed": 7, "spec_hash": "abc123",
                                "status": "done"})
    comp = SeqRef("comp", root / "comp", "comp.", ".exr", 1001, 1024, 4, {"status": "done"})
    return root, plate, fire, comp


def test_timeline_round_trip(tmp_path, shot):
    root, plate, fire, comp = shot
    outside = SeqRef("smoke", tmp_path / "elsewhere", "smoke.", ".exr", 1001, 1010, 4, {"effect": "smoke"})
    path = write_timeline(root / "shot.otio", name="demo shot", fps=FPS, plate=plate, elements=[fire, outside],
                          comp=comp, metadata={"job": "demo.yaml", "seed": 7})
    tl = read_timeline(path)
    assert isinstance(tl, otio.schema.Timeline)
    assert tl.name == "demo shot"
    assert dict(tl.metadata["gvfx"]) == {"job": "demo.yaml", "seed": 7}
    assert tl.global_start_time == otio.opentime.RationalTime(1001, FPS)
    assert [t.name for t in tl.tracks] == ["plate", "fire", "smoke", "comp"]
    assert all(t.kind == otio.schema.TrackKind.Video for t in tl.tracks)

    clip = tl.tracks[0][0]
    ref = clip.media_reference
    assert isinstance(ref, otio.schema.ImageSequenceReference)
    assert (ref.target_url_base, ref.name_prefix, ref.name_suffix) == ("plate", "plate.", ".exr")
    assert (ref.start_frame, ref.frame_step, ref.rate, ref.frame_zero_padding) == (1001, 1, FPS, 4)
    assert ref.available_range.start_time.value == 1001 and ref.available_range.duration.value == 24
    assert ref.number_of_images_in_sequence() == 24
    assert ref.target_url_for_image_number(0) == "plate/plate.1001.exr"
    assert ref.target_url_for_image_number(23) == "plate/plate.1024.exr"
    assert clip.source_range.duration.value == 24
    assert list(clip.metadata["gvfx"]["frame_range"]) == [1001, 1024]
    assert clip.metadata["gvfx"]["kind"] == "plate"

    fire_track = tl.tracks[1]
    assert isinstance(fire_track[0], otio.schema.Gap) and fire_track[0].duration().value == 4
    clip = fire_track[1]
    ref = clip.media_reference
    assert ref.target_url_base == "elements/fire"
    assert ref.frame_zero_padding == 5
    assert ref.target_url_for_image_number(0) == "elements/fire/fire_v001.01005.exr"
    assert ref.end_frame() == 1024
    meta = clip.metadata["gvfx"]
    assert (meta["engine"], meta["effect"], meta["seed"], meta["spec_hash"], meta["status"]) == (
        "sim", "fire", 7, "abc123", "done")
    assert list(meta["frame_range"]) == [1005, 1024] and meta["kind"] == "element"
    # both tracks put frame 1005 at the same time on the timeline
    assert clip.range_in_parent().start_time == otio.opentime.RationalTime(4, FPS)
    assert tl.tracks[0][0].range_in_parent().start_time == otio.opentime.RationalTime(0, FPS)
    assert clip_frame_path(path, clip, 1010) == (root / "elements/fire/fire_v001.01010.exr").resolve()

    smoke = tl.tracks[2][0].media_reference
    assert smoke.target_url_base == (tmp_path / "elsewhere").resolve().as_posix()  # outside: absolute
    assert smoke.target_url_for_image_number(2) == (tmp_path / "elsewhere" / "smoke.1003.exr").resolve().as_posix()
    assert clip_frame_path(path, tl.tracks[2][0], 1003) == (tmp_path / "elsewhere" / "smoke.1003.exr").resolve()
    assert tl.tracks[3][0].metadata["gvfx"]["kind"] == "comp"
    assert not list(root.glob(".*.tmp"))


def test_moving_the_shot_folder_keeps_relative_paths(tmp_path, shot):
    root, plate, fire, _ = shot
    path = write_timeline(root / "shot.otio", name="s", fps=FPS, plate=plate, elements=[fire], comp=None,
                          metadata={})
    moved = tmp_path / "moved"
    root.rename(moved)
    tl = read_timeline(moved / "shot.otio")
    assert len(tl.tracks) == 2
    assert clip_frame_path(moved / "shot.otio", tl.tracks[0][0], 1001) == (moved / "plate/plate.1001.exr").resolve()
    with pytest.raises(InputError):
        clip_frame_path(moved / "shot.otio", tl.tracks[0][0], 1025)


def test_same_folder_and_bad_input(tmp_path):
    ref = SeqRef("plate", tmp_path, "p_", ".exr", 1, 3)
    path = write_timeline(tmp_path / "t.otio", name="t", fps=25, plate=ref, elements=[], comp=None, metadata={})
    media = read_timeline(path).tracks[0][0].media_reference
    assert media.target_url_for_image_number(1) == "./p_0002.exr"
    with pytest.raises(InputError):
        SeqRef("bad", tmp_path, "a.", ".exr", 10, 9)
    with pytest.raises(InputError):
        SeqRef.from_pattern("still", tmp_path / "a.exr", 1, 2)
    with pytest.raises(InputError):
        write_timeline(tmp_path / "x.otio", name="x", fps=0, plate=ref, elements=[], comp=None, metadata={})
    with pytest.raises(InputError):
        read_timeline(tmp_path / "missing.otio")
