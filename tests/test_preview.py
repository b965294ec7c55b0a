"""Previews: display conversion, element over checkerboard, contact sheet layout and pixels, GIFs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gvfx import preview
from gvfx.errors import InputError
from gvfx.preview import (HEADER_PX, LABEL_WIDTH_PX, PAD_PX, contact_sheet, element_preview, sheet_layout,
                          to_preview, write_gif)


def test_to_preview_mid_grey_and_clipping():
    px = np.full((2, 3, 4), 0.18, np.float32)
    px[1] = 10.0
    out = to_preview(px)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    assert np.all(np.abs(out[0].astype(int) - 118) <= 1)  # sRGB(0.18) = 0.461 -> 118
    assert np.all(out[1] == 255)


def test_fallback_matches_color_module():
    rng = np.random.default_rng(1)
    px = rng.uniform(0.0, 0.9, (8, 8, 3)).astype(np.float32)
    ours = preview._fallback_preview(px, "ACEScg").astype(int)
    assert np.max(np.abs(ours - to_preview(px).astype(int))) <= 2


def test_element_preview_shows_checker_through_alpha():
    el = np.zeros((32, 32, 4), np.float32)
    el[:, 16:] = (0.5, 0.5, 0.5, 1.0)  # opaque right half
    out = element_preview(el, check_px=8)
    left = out[:, :16, 0]
    assert len(np.unique(left)) == 2  # two checker greys show through
    assert left[0, 0] != left[0, 8]
    assert np.all(out[:, 16:] == out[0, 16])  # the opaque half hides the checker


def _solid(h, w, rgb):
    return np.broadcast_to(np.asarray(rgb, np.uint8), (h, w, 3)).copy()


def test_contact_sheet_size_and_thumbnail_pixels(tmp_path):
    # 3 rows x 4 columns of 90x160 images (16:9), thumbnails 64 wide -> 36 tall
    colours = [[(40 * r + 10, 60 * c, 200) for c in range(4)] for r in range(3)]
    rows = [[_solid(90, 160, colours[r][c]) for c in range(4)] for r in range(3)]
    split = np.zeros((90, 160, 3), np.uint8)
    split[:, 80:] = 255  # black left half, white right half
    rows[1][2] = split
    out = contact_sheet(rows, ["plate", "element", "comp"], ["1001", "1008", "1016", "1024"],
                        tmp_path / "sheet.png", thumb_width=64)
    with Image.open(out) as im:
        sheet = np.asarray(im.convert("RGB"))
    expect_w = LABEL_WIDTH_PX + 4 * (64 + PAD_PX) + PAD_PX
    expect_h = HEADER_PX + PAD_PX + 3 * (36 + PAD_PX)
    assert sheet.shape == (expect_h, expect_w, 3)
    (w, h), origins = sheet_layout(rows, 64)
    assert (w, h) == (expect_w, expect_h)
    x, y = origins[2][3]
    assert (x, y) == (LABEL_WIDTH_PX + PAD_PX + 3 * 72, HEADER_PX + PAD_PX + 2 * 44)
    assert np.all(sheet[y:y + 36, x:x + 64] == colours[2][3])
    x, y = origins[1][2]
    assert np.all(sheet[y:y + 36, x:x + 28] == 0) and np.all(sheet[y:y + 36, x + 36:x + 64] == 255)
    assert np.all(sheet[y + 36: y + 36 + PAD_PX, x:x + 64] == preview.BACKGROUND)  # gap below a cell
    # labels are drawn in the header and the label column (text pixels differ from the background)
    assert np.any(sheet[:HEADER_PX, LABEL_WIDTH_PX:] != preview.BACKGROUND)
    assert np.any(sheet[HEADER_PX:, :LABEL_WIDTH_PX] != preview.BACKGROUND)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed


def test_contact_sheet_rejects_bad_input(tmp_path):
    img = _solid(4, 4, (1, 2, 3))
    with pytest.raises(InputError):
        contact_sheet([[img]], ["a", "b"], ["1"], tmp_path / "x.png")
    with pytest.raises(InputError):
        contact_sheet([[img.astype(np.float32)]], ["a"], ["1"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_gif_frames_and_size(tmp_path):
    frames = [_solid(90, 960, (20 * i, 255 - 20 * i, 100)) for i in range(6)]
    out = write_gif(frames, tmp_path / "a.gif", fps=25, max_width=480)
    with Image.open(out) as im:
        assert im.n_frames == 6
        assert im.size == (480, 45)
        assert im.info["duration"] == 40 and im.info["loop"] == 0
        im.seek(3)
        assert np.abs(np.asarray(im.convert("RGB"))[10, 10].astype(int) - (60, 195, 100)).max() <= 4
