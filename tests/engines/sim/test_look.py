"""Tests for the volume look: blackbody colours, default looks, reference fitting, reference loading."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from gvfx.engines.sim.look import (LUMA_AP1, Look, blackbody_intensity, blackbody_rgb, default_look, fit_look,
                                   load_reference_rgb)
from gvfx.errors import InputError


def test_blackbody_hue_progression():
    temps = np.array([1000.0, 1500.0, 2500.0, 4000.0, 10000.0])
    rgb = blackbody_rgb(temps)
    assert rgb.shape == (5, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb @ LUMA_AP1, 1.0, rtol=1e-4)  # normalised luminance
    # cool flames are red-orange, hot ones whiter: B/R rises monotonically with temperature
    ratio = rgb[:, 2] / rgb[:, 0]
    assert np.all(np.diff(ratio) > 0)
    assert rgb[0, 0] > rgb[0, 1] > rgb[0, 2]
    assert rgb[-1, 2] > rgb[-1, 0]  # 10000 K is bluish
    # ~6000 K is near the ACES white point
    w = blackbody_rgb(6000.0)
    assert np.max(np.abs(w - 1.0)) < 0.06


def test_blackbody_intensity_rises():
    i = blackbody_intensity(np.array([800.0, 1500.0, 3000.0]))
    assert i[1] == pytest.approx(1.0) and i[0] < i[1] < i[2]


def test_default_fire_ramp_is_warm_and_brightens():
    look = default_look("fire")
    ramp = look.emission_ramp
    lum = ramp @ LUMA_AP1
    assert lum[0] == 0.0 and lum[-1] == pytest.approx(1.0, rel=1e-4)
    assert np.all(np.diff(lum) >= 0)
    hot, mid = ramp[-1], ramp[len(ramp) // 2]
    assert hot[0] > hot[1] > hot[2] and mid[0] > mid[1] > mid[2]
    assert hot[1] / hot[0] > mid[1] / mid[0]  # the core is yellower than the edges
    e = look.emission(np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(e[2], hot, rtol=1e-5)


def _synthetic_flame(colour_hot, colour_cool, smoke, size=64):
    y, x = np.mgrid[0:size, 0:size] / size
    r = np.sqrt((x - 0.5) ** 2 + (y - 0.5) ** 2)
    heat = np.clip(1 - r / 0.3, 0, 1)[..., None]
    flame = heat ** 2 * np.asarray(colour_hot) * 4 + heat * np.asarray(colour_cool)
    return np.where(heat > 0, flame, np.asarray(smoke)).astype(np.float32)


def test_fit_look_blue_flame_gives_blue_ramp():
    ref = _synthetic_flame([0.3, 0.5, 1.0], [0.05, 0.1, 0.6], [0.02, 0.02, 0.02])
    look = fit_look(ref)
    top = look.emission_ramp[-1]
    assert top[2] > top[1] > top[0]
    assert (look.emission_ramp[-1] @ LUMA_AP1) == pytest.approx(1.0, rel=1e-4)


def test_fit_look_brown_smoke_gives_brown_tint():
    brown = np.array([0.12, 0.07, 0.03])
    ref = _synthetic_flame([1.0, 0.6, 0.2], [0.5, 0.2, 0.05], brown)
    look = fit_look(ref)
    t = look.smoke_tint
    assert t[0] > t[1] > t[2]
    np.testing.assert_allclose(t / t.sum(), brown / brown.sum(), atol=0.02)
    # dark smoke is denser than a light grey one
    grey = fit_look(_synthetic_flame([1.0, 0.6, 0.2], [0.5, 0.2, 0.05], [0.5, 0.5, 0.5]))
    assert look.density_scale > grey.density_scale


def test_fit_look_rejects_bad_shape():
    with pytest.raises(InputError):
        fit_look(np.zeros((4, 4)))


def test_load_reference_missing_names_file_and_field(tmp_path):
    with pytest.raises(InputError) as err:
        load_reference_rgb(tmp_path / "nope.png", field="elements[0].reference")
    assert "nope.png" in str(err.value) and "elements[0].reference" in str(err.value)


def test_load_reference_unreadable(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(InputError, match="bad.png"):
        load_reference_rgb(bad)


def test_load_reference_exr_is_linear_and_png_goes_through_from_display(tmp_path, monkeypatch):
    import OpenImageIO as oiio

    img = np.random.default_rng(0).random((6, 8, 3)).astype(np.float32)
    exr = tmp_path / "ref.exr"
    out = oiio.ImageOutput.create(str(exr))
    out.open(str(exr), oiio.ImageSpec(8, 6, 3, "float"))
    out.write_image(img)
    out.close()
    np.testing.assert_allclose(load_reference_rgb(exr), img, atol=1e-6)

    png = tmp_path / "ref.png"
    out = oiio.ImageOutput.create(str(png))
    out.open(str(png), oiio.ImageSpec(8, 6, 3, "uint8"))
    out.write_image((img * 255).round().astype(np.uint8))
    out.close()
    calls = []

    def fake_from_display(pixels, dst="ACEScg"):
        calls.append(dst)
        return pixels ** 2.2

    fake = types.ModuleType("gvfx.color")
    fake.from_display = fake_from_display
    import gvfx
    monkeypatch.setitem(sys.modules, "gvfx.color", fake)
    monkeypatch.setattr(gvfx, "color", fake, raising=False)
    got = load_reference_rgb(png)
    assert calls == ["ACEScg"]
    np.testing.assert_allclose(got, ((img * 255).round() / 255) ** 2.2, atol=1e-4)


def test_look_is_frozen():
    look = default_look("smoke")
    assert isinstance(look, Look)
    with pytest.raises(Exception):
        look.density_scale = 2.0  # type: ignore[misc]
