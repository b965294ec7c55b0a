"""Frame patterns: parsing, formatting, discovery with holes, negative and wide frames."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from gvfx.errors import SequenceError
from gvfx.sequence import (FramePattern, discover, format_frame, frame_path, parse_pattern,
                           sequence_around)


@pytest.mark.parametrize("pattern, padding", [
    ("/a/shot.####.exr", 4), ("/a/shot.%04d.exr", 4), ("/a/shot.%d.exr", 1), ("/a/shot.@@@@.exr", 4),
    ("/a/shot.$F4.exr", 4), ("/a/shot.$F.exr", 1), ("/a/shot.#.exr", 1), ("/a/shot_%06d.exr", 6),
])
def test_parse_all_styles(pattern: str, padding: int) -> None:
    fp = parse_pattern(pattern)
    assert fp.padding == padding
    assert fp.prefix.startswith("/a/shot")
    assert fp.suffix == ".exr"
    assert fp.normalised == fp.prefix + "#" * padding + ".exr"


def test_literal_is_still() -> None:
    fp = parse_pattern("/a/plate.1001.exr")
    assert fp.is_still and fp.format(7) == "/a/plate.1001.exr"


def test_token_in_folder_is_ignored(tmp_path: Path) -> None:
    fp = parse_pattern("/jobs/v####/shot.%03d.exr")
    assert fp.prefix == "/jobs/v####/shot." and fp.padding == 3


@pytest.mark.parametrize("frame, padding, text", [
    (7, 4, "0007"), (10000, 4, "10000"), (-1, 4, "-001"), (-12345, 4, "-12345"), (0, 1, "0"), (42, 1, "42"),
])
def test_format_frame(frame: int, padding: int, text: str) -> None:
    assert format_frame(frame, padding) == text
    assert frame_path(f"/x/a.{'#' * padding}.exr", frame) == Path(f"/x/a.{text}.exr")


_names = st.text(alphabet="abcXYZ_-.0123456789", min_size=1, max_size=12).filter(
    lambda s: not any(c in s for c in "#@%$"))


@given(prefix=_names, padding=st.integers(1, 8), frame=st.integers(-10**6, 10**7),
       style=st.sampled_from(["hash", "printf", "at", "houdini"]))
def test_pattern_round_trip(prefix: str, padding: int, frame: int, style: str) -> None:
    token = {"hash": "#" * padding, "printf": f"%0{padding}d", "at": "@" * padding,
             "houdini": f"$F{padding}"}[style]
    pattern = f"/d/{prefix}.{token}.exr"
    fp = parse_pattern(pattern)
    assert fp == FramePattern(prefix=f"/d/{prefix}.", padding=padding, suffix=".exr")
    assert parse_pattern(fp.normalised) == fp
    name = fp.format(frame)
    assert name == f"/d/{prefix}.{frame:0{padding}d}.exr"
    assert int(name[len(fp.prefix):-len(".exr")]) == frame


def _touch(folder: Path, names: list[str]) -> None:
    for n in names:
        (folder / n).write_bytes(b"x")


def test_discover_with_holes_and_other_paddings(tmp_path: Path) -> None:
    _touch(tmp_path, [f"p.{f:04d}.exr" for f in (1001, 1002, 1005, 1007)] + ["p.001003.exr", "p.1004.exr.tmp",
                                                                             "q.1003.exr", "p.1006.jpg"])
    seq = discover(tmp_path / "p.####.exr")
    assert seq.frames == (1001, 1002, 1005, 1007)
    assert (seq.first, seq.last, seq.padding) == (1001, 1007, 4)
    assert seq.missing == (1003, 1004, 1006)
    assert not seq.is_still
    assert seq.path(1005) == tmp_path / "p.1005.exr"
    assert seq.pattern == str(tmp_path / "p.####.exr")
    for style in ("p.%04d.exr", "p.@@@@.exr", "p.$F4.exr"):
        assert discover(tmp_path / style) == seq
    assert discover(tmp_path / "p.######.exr").frames == (1003,)


def test_discover_negative_and_wide_frames(tmp_path: Path) -> None:
    frames = [-12, -1, 0, 1, 9999, 10000, 123456]
    _touch(tmp_path, [f"n.{format_frame(f, 4)}.exr" for f in frames])
    seq = discover(str(tmp_path / "n.####.exr"))
    assert seq.frames == tuple(frames)
    assert seq.path(-1).name == "n.-001.exr"


def test_discover_unpadded(tmp_path: Path) -> None:
    _touch(tmp_path, ["u.1.exr", "u.2.exr", "u.10.exr", "u.010.exr"])
    assert discover(tmp_path / "u.%d.exr").frames == (1, 2, 10)
    assert discover(tmp_path / "u.$F.exr").frames == (1, 2, 10)


def test_still_and_sequence_around(tmp_path: Path) -> None:
    _touch(tmp_path, ["s.1001.exr", "s.1002.exr", "single.exr"])
    still = discover(tmp_path / "s.1001.exr")
    assert still.is_still and still.frames == (1001,) and still.path(5) == tmp_path / "s.1001.exr"
    around = sequence_around(tmp_path / "s.1001.exr")
    assert around is not None and around.frames == (1001, 1002) and around.pattern.endswith("s.####.exr")
    assert discover(tmp_path / "single.exr").frames == (0,)
    assert sequence_around(tmp_path / "single.exr") is None


def test_discover_errors_name_pattern_and_folder(tmp_path: Path) -> None:
    with pytest.raises(SequenceError, match=r"no frames match in folder") as e:
        discover(tmp_path / "nothing.####.exr")
    assert str(tmp_path) in str(e.value) and "nothing.####.exr" in str(e.value)
    with pytest.raises(SequenceError, match="does not exist"):
        discover(tmp_path / "nope" / "a.####.exr")
    with pytest.raises(SequenceError, match="no such file"):
        discover(tmp_path / "missing.exr")
    with pytest.raises(SequenceError, match="folder"):
        discover(tmp_path)
