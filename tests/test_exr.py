"""EXR round trips written and read by gvfx, multi-part / multi-view files written with OIIO, errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import OpenEXR
import OpenImageIO as oiio
import pytest

from gvfx import exr
from gvfx.errors import ImageReadError, ImageWriteError, InputError, LayerError, ResolutionMismatchError
from gvfx.exr import COMPRESSIONS, check_same_size, read_exr, write_exr, write_layers
from gvfx.exr_info import read_info
from gvfx.exr_sequence import SequenceWriter, read_sequence, write_sequence
from gvfx.sequence import discover

H, W = 24, 32


@pytest.fixture
def rgba() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0.0, 4.0, (H, W, 4)).astype(np.float32)


@pytest.fixture
def depth() -> np.ndarray:
    z = np.linspace(1.0, 1000.0, H * W, dtype=np.float32).reshape(H, W)
    z[0, :4] = np.inf
    return z


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_round_trip_every_compression(tmp_path: Path, rgba: np.ndarray, depth: np.ndarray, compression: str) -> None:
    p = write_layers(tmp_path / "a.exr", rgba=rgba, z=depth, compression=compression)
    img = read_exr(p)
    assert img.channel_names == ["R", "G", "B", "A", "Z"]
    assert (img.width, img.height) == (W, H)
    halfed = rgba.astype(np.float16).astype(np.float32)
    if compression in ("dwaa", "dwab", "b44", "b44a"):  # lossy on noise: small mean error
        assert np.abs(img.rgba() - halfed).mean() < 0.1
    else:
        assert np.array_equal(img.rgba(), halfed)
    if compression != "pxr24":  # pxr24 rounds float32 to 24 bits
        assert np.array_equal(img.depth(), depth)  # Z stays float32, +inf kept
    assert np.isinf(img.depth()[0, :4]).all()
    assert read_info(p).parts[0].compression == compression
    assert img.channels["R"].dtype == np.float32 and img.channels["R"].shape == (img.height, img.width)
    # no copy on read: channels are views of OIIO's buffer and rgba() is its R,G,B,A slice
    assert np.shares_memory(img.rgba(), img.channels["R"])


def test_half_and_float_selection(tmp_path: Path, rgba: np.ndarray, depth: np.ndarray) -> None:
    info = read_info(write_layers(tmp_path / "a.exr", rgba=rgba, z=depth))
    assert dict(info.parts[0].channels) == {"R": "half", "G": "half", "B": "half", "A": "half", "Z": "float"}
    info = read_info(write_layers(tmp_path / "b.exr", rgba=rgba, z=depth, half=False))
    assert set(dict(info.parts[0].channels).values()) == {"float"}
    p = write_exr(tmp_path / "c.exr", {"R": rgba[..., 0], "G": rgba[..., 1]}, half={"G"})
    assert dict(read_info(p).parts[0].channels) == {"R": "float", "G": "half"}
    assert np.array_equal(read_exr(p).channels["R"], rgba[..., 0])


def test_channel_order_and_layers(tmp_path: Path, rgba: np.ndarray) -> None:
    hold = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    motion = np.stack([hold * 2, -hold], axis=-1)
    p = write_layers(tmp_path / "a.exr", rgba=rgba, layers={"motion": motion, "holdout": hold,
                                                            "depth": hold + 1, "extra": rgba[..., :3]})
    names = [n for n, _ in read_info(p).parts[0].channels]
    assert names[:4] == ["R", "G", "B", "A"]
    assert "holdout.A" in names and "motion.U" in names and "depth.Z" in names and "extra.B" in names
    img = read_exr(p)
    assert np.allclose(img.layer("motion"), motion, atol=1e-3)
    assert img.layer("holdout").shape == (H, W, 1)
    assert np.allclose(img.layer("extra"), rgba[..., :3], rtol=1e-3)
    assert img.depth_channel() == "depth.Z"
    assert np.allclose(img.depth(), hold + 1)
    with pytest.raises(LayerError, match="motion"):
        img.layer("nope")


@pytest.mark.parametrize("origin, size, disp", [
    ((4, 3), (10, 12), (0, 0, 31, 23)),       # inside
    ((-8, -6), (48, 40), (0, 0, 31, 23)),     # overscan: larger than the display
    ((20, 15), (20, 20), (0, 0, 31, 23)),     # overlapping the bottom-right corner
    ((40, 0), (5, 5), (0, 0, 31, 23)),        # entirely outside
    ((105, 52), (10, 10), (100, 50, 131, 73)),  # display window not at the origin
])
def test_data_windows(tmp_path: Path, origin: tuple[int, int], size: tuple[int, int],
                      disp: tuple[int, int, int, int]) -> None:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    value = (xx + origin[0]) * 1000 + (yy + origin[1])  # encodes the absolute pixel position
    p = write_exr(tmp_path / "w.exr", {"R": value}, data_origin=origin, display_window=disp, half=False)
    img = read_exr(p)
    assert img.display_window == disp and img.data_window == (origin[0], origin[1], origin[0] + w - 1,
                                                              origin[1] + h - 1)
    assert (img.width, img.height) == (disp[2] - disp[0] + 1, disp[3] - disp[1] + 1)
    r = img.channels["R"]
    for y in range(img.height):
        for x in range(img.width):
            ax, ay = x + disp[0], y + disp[1]
            inside = origin[0] <= ax < origin[0] + w and origin[1] <= ay < origin[1] + h
            assert r[y, x] == (ax * 1000 + ay if inside else 0.0)


def test_metadata_and_colorspace(tmp_path: Path, rgba: np.ndarray) -> None:
    meta = {"seed": 123456, "engine": "sim", "spec_hash": "abc123", "gain": 1.5, "big": 2**40,
            "params": {"a": 1}, "studio:show": "kept"}
    img = read_exr(write_layers(tmp_path / "m.exr", rgba=rgba, metadata=meta))
    md = img.metadata
    assert md["gvfx:seed"] == 123456 and isinstance(md["gvfx:seed"], int)
    assert md["gvfx:engine"] == "sim" and md["gvfx:spec_hash"] == "abc123"
    assert md["gvfx:gain"] == pytest.approx(1.5)
    assert md["gvfx:big"] == str(2**40)
    assert md["gvfx:params"] == '{"a": 1}'
    assert md["studio:show"] == "kept"
    assert md["gvfx:colorspace"] == "ACEScg"
    assert md["gvfx:version"]
    assert np.allclose(md["chromaticities"], exr.CHROMATICITIES["ACEScg"], atol=1e-6)
    md709 = read_exr(write_layers(tmp_path / "n.exr", rgba=rgba, colorspace="lin_rec709")).metadata
    assert np.allclose(md709["chromaticities"][:2], (0.64, 0.33), atol=1e-6)


def test_nan_inf_policy(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    r = np.ones((H, W), np.float32)
    r[0, 0], r[0, 1], r[0, 2] = np.nan, np.inf, -np.inf
    z = np.full((H, W), 3.0, np.float32)
    z[1, 0], z[1, 1], z[1, 2] = np.nan, np.inf, -np.inf
    p = write_exr(tmp_path / "n.exr", {"R": r, "Z": z}, half=False, clean=False)
    with caplog.at_level(logging.WARNING, logger="gvfx.exr"):
        img = read_exr(p)
    assert img.nonfinite["R"] == (1, 2) and img.nonfinite["Z"] == (1, 2)
    assert list(img.channels["R"][0, :4]) == [0.0, 65504.0, -65504.0, 1.0]
    assert np.isposinf(img.depth()[1, :3]).all() and img.depth()[1, 3] == 3.0
    assert "non-finite" in caplog.text and "n.exr" in caplog.text
    caplog.clear()
    sky = np.full((H, W), np.inf, np.float32)
    with caplog.at_level(logging.WARNING, logger="gvfx.exr"):
        img = read_exr(write_exr(tmp_path / "sky.exr", {"Z": sky}))
    assert img.nonfinite["Z"] == (0, H * W) and caplog.text == ""  # sky is not a problem


def test_rgba_defaults(tmp_path: Path, rgba: np.ndarray) -> None:
    img = read_exr(write_exr(tmp_path / "rgb.exr", {c: rgba[..., i] for i, c in enumerate("RGB")}))
    assert np.all(img.rgba()[..., 3] == 1.0)
    y = read_exr(write_exr(tmp_path / "y.exr", {"Y": rgba[..., 0]}))
    assert np.array_equal(y.rgba()[..., 1], y.channels["Y"])
    with pytest.raises(LayerError, match="no R, G, B"):
        read_exr(write_exr(tmp_path / "z.exr", {"Z": rgba[..., 0]})).rgba()
    sub = read_exr(tmp_path / "rgb.exr", channels=["G"])
    assert sub.channel_names == ["G"]
    with pytest.raises(LayerError, match="channels are"):
        read_exr(tmp_path / "rgb.exr", channels=["Q"])


def _write_parts(path: Path, parts: list[tuple[list[str], dict[str, object], float]],
                 extra: dict[str, object] | None = None) -> None:
    specs = []
    for names, attrs, _ in parts:
        s = oiio.ImageSpec(W, H, len(names), "half")
        s.channelnames = tuple(names)
        for k, v in {**attrs, **(extra or {})}.items():
            if isinstance(v, tuple):
                s.attribute(k, oiio.TypeDesc(f"string[{len(v)}]"), v)
            else:
                s.attribute(k, v)
        specs.append(s)
    out = oiio.ImageOutput.create("openexr")
    assert out.open(str(path), tuple(specs))
    for i, (spec, (_, _, value)) in enumerate(zip(specs, parts)):
        if i:
            assert out.open(str(path), spec, "AppendSubimage")
        pix = np.full((H, W, spec.nchannels), value, np.float32)
        pix[..., -1] += np.arange(spec.nchannels - 1, spec.nchannels)  # last channel differs
        assert out.write_image(pix)
    out.close()


def test_multipart_merges_parts(tmp_path: Path) -> None:
    p = tmp_path / "mp.exr"
    _write_parts(p, [(["R", "G", "B", "A"], {"name": "rgba"}, 1.0), (["depth.Z"], {"name": "depth"}, 5.0),
                     (["R", "G", "B"], {"name": "spec"}, 2.0)])
    info = read_info(p)
    assert [part.name for part in info.parts] == ["rgba", "depth", "spec"] and info.views == ()
    img = read_exr(p)
    assert set(img.channels) == {"R", "G", "B", "A", "depth.Z", "spec.R", "spec.G", "spec.B"}
    assert img.channels["spec.R"][0, 0] == 2.0 and img.channels["R"][0, 0] == 1.0
    assert img.depth()[0, 0] == 5.0
    with pytest.raises(LayerError, match="not a multi-view"):
        read_exr(p, view="left")


def test_multiview_multipart(tmp_path: Path) -> None:
    p = tmp_path / "mv.exr"
    _write_parts(p, [(["R", "G", "B"], {"name": "left", "view": "left"}, 1.0),
                     (["R", "G", "B"], {"name": "right", "view": "right"}, 2.0),
                     (["Z"], {"name": "depth"}, 7.0)])
    assert read_info(p).views == ("left", "right")
    left, right = read_exr(p), read_exr(p, view="right")
    assert left.view == "left" and left.channels["R"][0, 0] == 1.0 and left.depth()[0, 0] == 7.0
    assert right.view == "right" and right.channels["R"][0, 0] == 2.0 and right.depth()[0, 0] == 7.0
    with pytest.raises(LayerError, match="views are left, right"):
        read_exr(p, view="centre")


def test_multiview_single_part(tmp_path: Path) -> None:
    p = tmp_path / "sv.exr"
    _write_parts(p, [(["R", "G", "B", "left.Z", "right.R", "right.G", "right.B"], {}, 3.0)],
                 extra={"multiView": ("right", "left")})
    info = read_info(p)
    assert info.views == ("right", "left")
    hero = read_exr(p)
    assert hero.view == "right" and hero.channel_names == ["R", "G", "B"]
    left = read_exr(p, view="left")
    assert left.channel_names == ["Z"] and left.channels["Z"][0, 0] == 3.0
    assert read_exr(p, view="right").channels["B"][0, 0] == 3.0
    with pytest.raises(LayerError, match="views are right, left"):
        read_exr(p, view="mono")


def test_independent_reader(tmp_path: Path, rgba: np.ndarray, depth: np.ndarray) -> None:
    p = write_layers(tmp_path / "ind.exr", rgba=rgba, z=depth, data_origin=(2, 3),
                     display_window=(0, 0, 39, 29), compression="piz", metadata={"seed": 9})
    f = OpenEXR.File(str(p), separate_channels=True)
    assert len(f.parts) == 1
    part = f.parts[0]
    hdr = part.header
    assert np.array_equal(np.asarray(hdr["dataWindow"]).ravel(), [2, 3, 2 + W - 1, 3 + H - 1])
    assert np.array_equal(np.asarray(hdr["displayWindow"]).ravel(), [0, 0, 39, 29])
    assert str(hdr["compression"]).upper().endswith("PIZ_COMPRESSION")
    assert hdr["gvfx:seed"] == 9
    assert part.channels["R"].pixels.dtype == np.float16
    assert part.channels["Z"].pixels.dtype == np.float32
    assert np.array_equal(part.channels["G"].pixels, rgba[..., 1].astype(np.float16))
    assert np.array_equal(part.channels["Z"].pixels, depth)


def test_atomic_write_failure_leaves_nothing(tmp_path: Path, rgba: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.exr"
    real_create = oiio.ImageOutput.create

    class Failing:
        def __init__(self) -> None:
            self.inner = real_create("openexr")

        def open(self, name: str, spec: object) -> bool:
            return self.inner.open(name, spec)

        def write_image(self, pixels: np.ndarray) -> bool:
            self.inner.write_scanline(0, 0, pixels[0])  # part of a frame reaches the temp file
            return False

        def close(self) -> bool:
            return self.inner.close()

        def geterror(self) -> str:
            return "disk full (simulated)"

    monkeypatch.setattr(exr.oiio.ImageOutput, "create", staticmethod(lambda *_: Failing()))
    with pytest.raises(ImageWriteError, match="disk full") as e:
        write_layers(target, rgba=rgba)
    assert str(target) in str(e.value)
    assert os.listdir(tmp_path) == []


def test_write_replaces_atomically_and_errors(tmp_path: Path, rgba: np.ndarray) -> None:
    target = tmp_path / "a.exr"
    write_layers(target, rgba=rgba)
    write_layers(target, rgba=rgba * 0 + 0.5)
    assert read_exr(target).channels["R"][0, 0] == 0.5
    assert os.listdir(tmp_path) == ["a.exr"]
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_layers(tmp_path / "no" / "a.exr", rgba=rgba)
    with pytest.raises(InputError, match="compression"):
        write_layers(target, rgba=rgba, compression="jpeg")
    with pytest.raises(ResolutionMismatchError):
        write_exr(target, {"R": rgba[..., 0], "G": rgba[:5, :, 1]})


def test_read_errors(tmp_path: Path, rgba: np.ndarray) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        read_exr(tmp_path / "missing.exr", frame=12)
    with pytest.raises(ImageReadError, match="folder"):
        read_exr(tmp_path)
    (tmp_path / "text.exr").write_text("hello, not an image")
    with pytest.raises(ImageReadError, match="not an OpenEXR"):
        read_exr(tmp_path / "text.exr")
    good = write_layers(tmp_path / "good.exr", rgba=rgba, compression="none")
    data = good.read_bytes()
    for cut in (20, len(data) // 3, len(data) - 100):
        bad = tmp_path / f"cut{cut}.exr"
        bad.write_bytes(data[:cut])
        with pytest.raises(ImageReadError) as e:
            read_exr(bad, frame=5)
        assert bad.name in str(e.value) and "frame 5" in str(e.value)


def test_check_same_size() -> None:
    check_same_size((4, 5, 3), (4, 5), path="p.exr")
    with pytest.raises(ResolutionMismatchError, match=r"5x4 vs 6x4") as e:
        check_same_size((4, 5), (4, 6, 1), path="p.exr", frame=3)
    assert "p.exr (frame 3)" in str(e.value)


def test_sequence_write_and_stream(tmp_path: Path, rgba: np.ndarray, depth: np.ndarray) -> None:
    pattern = tmp_path / "s.####.exr"
    with SequenceWriter(pattern, threads=2, metadata={"engine": "sim"}) as w:
        for f in range(-2, 6):
            w.write(f, rgba=rgba + f, z=depth)
    assert len(w.written) == 8
    seq = discover(pattern)
    assert seq.frames == tuple(range(-2, 6))
    got = [(f, img.channels["R"][0, 0]) for f, img in read_sequence(seq, threads=2, channels=["R"])]
    assert got == [(f, np.float32(np.float16(rgba[0, 0, 0] + f))) for f in range(-2, 6)]
    assert [f for f, _ in read_sequence(seq, [3, 1], threads=1)] == [3, 1]
    paths = write_sequence(tmp_path / "t.%03d.exr", ((f, {"Y": rgba[..., 0]}) for f in (1, 2)))
    assert [p.name for p in paths] == ["t.001.exr", "t.002.exr"]


def test_read_sequence_names_the_missing_frame(tmp_path: Path, rgba: np.ndarray) -> None:
    for f in (1, 2, 4):
        write_layers(tmp_path / f"h.{f:04d}.exr", rgba=rgba)
    seq = discover(tmp_path / "h.####.exr")
    assert seq.missing == (3,)
    it = read_sequence(seq, range(1, 5))
    assert [next(it)[0], next(it)[0]] == [1, 2]
    with pytest.raises(ImageReadError, match=r"h\.0003\.exr \(frame 3\)"):
        next(it)
