"""Editorial in: `gvfx shots` turns the clips of an OTIO timeline or a CMX 3600 EDL into job files."""

from __future__ import annotations

import logging
from pathlib import Path

import opentimelineio as otio
import pytest
import yaml

from gvfx.cli import main
from gvfx.errors import InputError
from gvfx.job import load_job
from gvfx.shots import read_edit, shots_from_timeline

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange

EDL = """TITLE: reel1
FCM: NON-DROP FRAME

001  A001C003 V     C        01:00:10:00 01:00:12:00 00:00:00:00 00:00:02:00
* FROM CLIP NAME:  sh010
002  A001C007 V     C        02:00:00:12 02:00:01:12 00:00:02:00 00:00:03:00
* FROM CLIP NAME:  sh020
"""


@pytest.fixture
def edit(tmp_path: Path) -> Path:
    """Three clips: an EXR sequence (frames 1001-1100), a movie file, and no media at all."""
    tl = otio.schema.Timeline(name="cut")
    track = otio.schema.Track(name="V1")
    tl.tracks.append(track)
    seq = otio.schema.ImageSequenceReference(
        target_url_base="plates/sh010/", name_prefix="sh010.", name_suffix=".exr", start_frame=1001,
        rate=24, frame_zero_padding=4, available_range=TR(RT(1001, 24), RT(100, 24)))
    track.append(otio.schema.Clip("sh010", media_reference=seq, source_range=TR(RT(1010, 24), RT(48, 24))))
    track.append(otio.schema.Gap(duration=RT(12, 24)))
    ext = otio.schema.ExternalReference(target_url="file:///mnt/scans/sh020.mov")
    track.append(otio.schema.Clip("sh020.mov", media_reference=ext, source_range=TR(RT(0, 24), RT(24, 24))))
    track.append(otio.schema.Clip("sh 030", source_range=TR(RT(86400, 24), RT(30, 24))))
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


def test_shots_from_otio(edit: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        shots = shots_from_timeline(read_edit(edit), handles=8, base_dir=edit.parent)
    a, b, c = shots
    assert (a.name, a.source, a.cut_in, a.cut_out, a.first_frame, a.last_frame) == (
        "sh010", "sequence", 1010, 1057, 1002, 1065)
    assert a.plate == str(edit.parent / "plates/sh010/sh010.####.exr") and not a.warnings
    assert (b.name, b.source, b.plate) == ("sh020", "external", "/mnt/scans/sh020.mov")
    assert (b.first_frame, b.cut_in, b.cut_out, b.last_frame) == (1001, 1009, 1032, 1040)
    assert "not an EXR plate" in b.warnings[0]
    assert (c.name, c.source, c.plate) == ("sh_030", "missing", None)
    assert "clip 'sh 030' has no media path" in c.warnings[0] and "--plate-template" in c.warnings[0]
    assert "sh 030" in caplog.text
    # handles never run past the media: 4 frames of head room only
    a0 = shots_from_timeline(read_edit(edit), handles=12, base_dir=edit.parent)[0]
    assert (a0.first_frame, a0.last_frame) == (1001, 1069) and "handle frames" in a0.warnings[0]


def test_shots_command_writes_valid_jobs(edit: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "shots"
    assert main(["shots", str(edit), "-o", str(out), "--handles", "4",
                 "--plate-template", "plates/{name}/{name}.####.exr"]) == 0
    printed = capsys.readouterr().out
    files = sorted(out.glob("*/*.yaml"))
    assert [f.name for f in files] == ["sh010.yaml", "sh020.yaml", "sh_030.yaml"] and "job:" in printed
    for f in files:
        job = load_job(f)  # every written job validates
        assert job.output == f.parent and job.name == f.stem and job.fps == 24.0
    j3 = load_job(out / "sh_030" / "sh_030.yaml")
    assert j3.plate.path == str(out / "sh_030" / "plates/sh_030/sh_030.####.exr")
    assert j3.plate.frames == (1001, 1038)
    assert "clip 'sh 030'" in (out / "sh_030" / "sh_030.yaml").read_text()
    assert load_job(out / "sh010" / "sh010.yaml").plate.frames == (1006, 1061)
    # run again: existing jobs are kept, the new ones go beside them
    assert main(["shots", str(edit), "-o", str(out)]) == 0
    assert (out / "sh010" / "sh010.new.yaml").is_file()


def test_shots_from_an_edl(tmp_path: Path, capsys) -> None:
    edl = tmp_path / "reel1.edl"
    edl.write_text(EDL)
    assert main(["shots", str(edl), "--handles", "8", "--rate", "24"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["name"] for d in docs] == ["sh010", "sh020"]
    assert docs[0]["plate"]["frames"] == "1001-1064"  # 48 frames + 2 x 8 handles from 1001
    assert docs[1]["plate"]["frames"] == "1001-1040"
    assert docs[0]["plate"]["path"] == "plates/sh010/sh010.####.exr"  # placeholder: no media in EDLs


def test_edit_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.edl"
    bad.write_text(EDL.replace("01:00:12:00", "01:00:12:24"))  # frame 24 at 24 fps
    with pytest.raises(InputError, match=r"bad.edl: cannot read the edit.*check --rate"):
        read_edit(bad, rate=24)
    with pytest.raises(InputError, match="edit file not found"):
        read_edit(tmp_path / "missing.otio")
    (tmp_path / "x.unknownfmt").write_text("?")
    with pytest.raises(InputError, match="no OpenTimelineIO adapter"):
        read_edit(tmp_path / "x.unknownfmt")
