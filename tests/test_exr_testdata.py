"""gvfx's EXR reader against the OpenEXR project's test images, checked with OpenEXR's own reader."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from gvfx.errors import ImageReadError
from gvfx.exr import HALF_MAX, read_exr
from gvfx.exr_info import read_info

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "openexr"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"OpenEXR test images not found at {DATA}")


def _reference(path: Path) -> tuple[dict[str, np.ndarray], tuple[int, ...], tuple[int, ...]]:
    """Channels (raw values), data window and display window per OpenEXR's own reader."""
    part = OpenEXR.File(str(path), separate_channels=True).parts[0]
    dw = tuple(int(v) for v in np.concatenate(part.header["dataWindow"]))
    disp = tuple(int(v) for v in np.concatenate(part.header["displayWindow"]))
    return {n: c.pixels.astype(np.float32) for n, c in part.channels.items()}, dw, disp


@pytest.mark.parametrize("name", [f"t{i:02d}.exr" for i in range(1, 17)])
def test_display_window(name: str) -> None:
    path = DATA / "DisplayWindow" / name
    ref, dw, disp = _reference(path)
    img = read_exr(path)
    assert img.display_window == disp and img.data_window == dw
    assert (img.width, img.height) == (disp[2] - disp[0] + 1, disp[3] - disp[1] + 1)
    for c in "RGB":
        expect = np.zeros((img.height, img.width), np.float32)
        x0, y0 = max(dw[0], disp[0]), max(dw[1], disp[1])
        x1, y1 = min(dw[2], disp[2]), min(dw[3], disp[3])
        if x0 <= x1 and y0 <= y1:
            expect[y0 - disp[1]:y1 - disp[1] + 1, x0 - disp[0]:x1 - disp[0] + 1] = \
                ref[c][y0 - dw[1]:y1 - dw[1] + 1, x0 - dw[0]:x1 - dw[0] + 1]
        assert np.array_equal(img.channels[c], expect), c


def test_nan_inf_counted_and_replaced() -> None:
    path = DATA / "TestImages" / "BrightRingsNanInf.exr"
    ref, _, _ = _reference(path)
    img = read_exr(path)
    for c in "RGB":
        raw = ref[c]
        assert img.nonfinite[c] == (int(np.isnan(raw).sum()), int(np.isinf(raw).sum()))
        assert img.nonfinite[c][0] > 0 and img.nonfinite[c][1] > 0
        assert np.isfinite(img.channels[c]).all()
        assert (img.channels[c][np.isnan(raw)] == 0).all()
        assert np.array_equal(img.channels[c][np.isposinf(raw)], np.full(int(np.isposinf(raw).sum()), HALF_MAX))
        fin = np.isfinite(raw)
        assert np.array_equal(img.channels[c][fin], raw[fin])


def test_all_half_values() -> None:
    path = DATA / "TestImages" / "AllHalfValues.exr"
    ref, _, _ = _reference(path)
    img = read_exr(path)
    raw = ref["R"]
    nan, inf = int(np.isnan(raw).sum()), int(np.isinf(raw).sum())
    assert (nan, inf) == (2046, 2)  # every half NaN pattern, +Inf and -Inf
    assert img.nonfinite["R"] == (nan, inf)
    out = img.channels["R"]
    assert out.max() == HALF_MAX and out.min() == -HALF_MAX
    fin = np.isfinite(raw)
    assert np.array_equal(out[fin], raw[fin])  # every finite half value survives exactly


def test_wide_gamut_chromaticities_and_luminance() -> None:
    img = read_exr(DATA / "TestImages" / "WideColorGamut.exr")
    assert np.allclose(img.metadata["chromaticities"][:2], (0.64, 0.33), atol=1e-6)
    assert img.rgba().shape == (800, 800, 4)
    assert (img.rgba()[..., :3] < 0).any()  # out-of-gamut negatives are kept, not clipped
    gray = read_exr(DATA / "TestImages" / "GrayRampsDiagonal.exr")
    assert gray.channel_names == ["Y"] and np.array_equal(gray.rgba()[..., 0], gray.channels["Y"])


@pytest.mark.parametrize("name", ["Cannon.exr", "Carrots.exr"])
def test_scanlines(name: str) -> None:
    path = DATA / "ScanLines" / name
    ref, _, _ = _reference(path)
    img = read_exr(path)
    for c, arr in ref.items():
        assert np.array_equal(img.channels[c], arr)
    info = read_info(path)
    assert not info.parts[0].tiled and [n for n, _ in info.parts[0].channels][:3] == ["R", "G", "B"]


DAMAGED = sorted(p for p in (DATA / "Damaged").glob("*") if p.suffix != ".rst") if DATA.is_dir() else []


@pytest.mark.parametrize("path", DAMAGED, ids=lambda p: p.name[:60])
def test_damaged_files_raise_image_read_error(path: Path, tmp_path: Path) -> None:
    # also as a .exr copy, so OpenEXR's reader (not only format sniffing) sees every file
    copy = tmp_path / (path.name + ".exr")
    copy.write_bytes(path.read_bytes())
    for p in (path, copy):
        start = time.monotonic()
        with pytest.raises(ImageReadError) as e:
            read_exr(p)
        assert p.name in str(e.value)
        assert time.monotonic() - start < 5.0
        try:
            info = read_info(p)
        except ImageReadError:
            continue  # header refused
        assert info.parts  # header readable: the pixels were the damaged part
