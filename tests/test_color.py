"""Colour management: config resolution, conversions against published values, round trips, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gvfx import color
from gvfx.errors import ColorError, InputError

# ACES AP1 -> linear Rec.709 (published, e.g. ACES TB-2014-004 / colour-science); rows = output channels.
AP1_TO_REC709 = np.array([
    [1.70505, -0.62179, -0.08326],
    [-0.13026, 1.14080, -0.01055],
    [-0.02400, -0.12897, 1.15297],
])


@pytest.fixture(autouse=True)
def _no_ocio_env(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)


def test_config_name_is_versioned_builtin():
    name = color.config_name()
    assert name.startswith("ocio://")
    assert name != "ocio://default"
    assert "aces" in name and "ocio-v" in name


def test_aliases_resolve():
    assert color.resolve("scene_linear") == "ACEScg"
    assert color.resolve("lin_srgb") == "Linear Rec.709 (sRGB)"
    assert color.resolve("lin_rec709") == "Linear Rec.709 (sRGB)"
    assert color.resolve("srgb_tx") == "sRGB Encoded Rec.709 (sRGB)"
    assert color.resolve("ACEScg") == "ACEScg"
    assert "ACEScg" in color.colorspaces()


def test_unknown_space_lists_close_matches():
    with pytest.raises(ColorError) as info:
        color.resolve("ACEScgg")
    assert "ACEScgg" in str(info.value)
    assert "'ACEScg'" in str(info.value)
    with pytest.raises(ColorError):
        color.convert(np.zeros((2, 2, 3), np.float32), "ACEScg", "no_such_space")


@pytest.mark.parametrize("channel", [0, 1, 2])
def test_ap1_primary_to_rec709_matches_published_matrix(channel):
    px = np.zeros((1, 1, 3), np.float32)
    px[0, 0, channel] = 1.0
    out = color.convert(px, "ACEScg", "lin_rec709")[0, 0]
    np.testing.assert_allclose(out, AP1_TO_REC709[:, channel], atol=1e-3)


def test_grey_stays_grey():
    grey = np.full((3, 4, 3), 0.18, np.float32)
    out = color.convert(grey, "ACEScg", "lin_rec709")
    np.testing.assert_allclose(out, 0.18, atol=1e-4)
    # sRGB encoding of 0.18: 1.055 * 0.18 ** (1 / 2.4) - 0.055
    enc = color.to_display(grey)
    np.testing.assert_allclose(enc, 1.055 * 0.18 ** (1 / 2.4) - 0.055, atol=1e-4)


def test_alpha_untouched_and_shape_kept():
    rng = np.random.default_rng(1)
    px = rng.random((5, 7, 4), dtype=np.float32) * 3
    px[..., 3] = rng.random((5, 7), dtype=np.float32)
    out = color.convert(px, "ACEScg", "srgb_tx")
    assert out.shape == px.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 3], px[..., 3])
    assert not np.allclose(out[..., :3], px[..., :3])


def test_non_image_shape_raises():
    with pytest.raises(InputError):
        color.convert(np.zeros((4, 4, 2), np.float32), "ACEScg", "srgb_tx")


# In-gamut for the sRGB encoding: linear Rec.709 values in [0, 1].
_rec709 = arrays(np.float32, (3, 4, 3), elements=st.floats(0.0, 1.0, width=32))


@settings(max_examples=40, deadline=None)
@given(_rec709)
def test_display_round_trip(lin709):
    acescg = color.convert(lin709, "lin_rec709", "ACEScg")
    back = color.from_display(color.to_display(acescg))
    np.testing.assert_allclose(back, acescg, atol=1e-3)


@settings(max_examples=20, deadline=None)
@given(arrays(np.float32, (2, 3, 4), elements=st.floats(0.0, 1.0, width=32)))
def test_round_trip_from_display_side(enc):
    back = color.to_display(color.from_display(enc))
    np.testing.assert_allclose(back, enc, atol=1e-3)


def test_preview_srgb():
    px = np.zeros((2, 3, 4), np.float32)
    px[0, 0, :3] = 0.18
    px[0, 1, :3] = 50.0  # clips
    px[0, 2, :3] = np.nan
    px[1, :, 3] = 0.5  # alpha ignored
    out = color.preview_srgb(px)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    expected = round((1.055 * 0.18 ** (1 / 2.4) - 0.055) * 255)
    assert abs(int(out[0, 0, 0]) - expected) <= 1
    assert (out[0, 1] == 255).all()
    assert (out[0, 2] == 0).all()
    assert (out[1] == 0).all()


def test_ocio_missing_file(monkeypatch, tmp_path):
    missing = tmp_path / "nope" / "config.ocio"
    monkeypatch.setenv("OCIO", str(missing))
    with pytest.raises(ColorError) as info:
        color.config_name()
    assert "config.ocio" in str(info.value) and "$OCIO" in str(info.value)
    with pytest.raises(ColorError):
        color.convert(np.zeros((1, 1, 3), np.float32), "ACEScg", "srgb_tx")


def test_ocio_env_file_is_used(monkeypatch, tmp_path):
    cfg = tmp_path / "tiny.ocio"
    cfg.write_text(
        "ocio_profile_version: 2\n"
        "roles:\n  default: raw\n  scene_linear: lin\n"
        "displays:\n  sRGB:\n    - !<View> {name: Raw, colorspace: raw}\n"
        "colorspaces:\n"
        "  - !<ColorSpace>\n    name: raw\n    isdata: true\n"
        "  - !<ColorSpace>\n    name: lin\n"
        "  - !<ColorSpace>\n    name: doubled\n"
        "    from_scene_reference: !<MatrixTransform> {matrix: [2,0,0,0, 0,2,0,0, 0,0,2,0, 0,0,0,1]}\n"
    )
    monkeypatch.setenv("OCIO", str(cfg))
    assert color.config_name() == str(cfg.resolve())
    assert set(color.colorspaces()) == {"raw", "lin", "doubled"}
    out = color.convert(np.full((1, 2, 3), 0.25, np.float32), "lin", "doubled")
    np.testing.assert_allclose(out, 0.5, atol=1e-6)


@pytest.mark.parametrize("src", ["ACEScg", "lin_srgb", "ACEScct"])
def test_preview_matches_ocio_within_one_code_value(src):
    rng = np.random.default_rng(3)
    px = (rng.random((16, 24, 3)) * 1.6 - 0.1).astype(np.float32)
    ref = (np.clip(color.convert(px, src, "srgb_tx"), 0, 1) * 255 + 0.5).astype(np.int32)
    out = color.preview_srgb(px, src=src)
    assert np.abs(out.astype(np.int32) - ref).max() <= 1
    assert np.abs(out.astype(np.int32) - ref).mean() < 0.05
