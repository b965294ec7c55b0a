"""Colour match: an element graded away from the plate comes back to the plate's levels.

Tolerances: black / white luminance levels (1st / 99th percentile) within 5% of the plate's
neighbourhood, per-channel mean / mean luminance within 5%, chroma spread within 10%.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from gvfx.match.colour import ColourMatch, _stats, apply_match, measure_match, region_around
from gvfx.match.flat import ACESCG_LUMA, luminance

H, W = 256, 256


def _desat(c: np.ndarray, s: float) -> np.ndarray:
    y = (c @ ACESCG_LUMA.astype(np.float64))[..., None]
    return y + s * (c - y)


@pytest.fixture
def scene():
    rng = np.random.default_rng(1)
    base = np.stack([ndimage.gaussian_filter(rng.standard_normal((H, W)), 6) for _ in range(3)], -1)
    base /= base.std()
    lum = np.exp(ndimage.gaussian_filter(rng.standard_normal((H, W)), 8) * 6) * 0.18
    plate = ((lum[..., None] * (1 + 0.3 * base)).clip(0.001) * np.array([1.0, 0.95, 0.85])).astype(np.float32)
    yy, xx = np.mgrid[:H, :W]
    alpha = (((xx - 128) ** 2 + (yy - 128) ** 2) < 60 ** 2).astype(np.float32)
    # element: plate-like content, graded away: gain 1.6, lift +0.02, saturation 0.5, blue cast
    src = plate[::-1, ::-1].astype(np.float64)
    graded = _desat(src * 1.6 + 0.02, 0.5) * np.array([0.85, 0.95, 1.3])
    el = np.concatenate([graded * alpha[..., None], alpha[..., None]], -1).astype(np.float32)
    plate[3, 3] = np.nan
    plate[200, 5] = np.inf
    return plate, el, alpha


def test_region_around_is_a_ring():
    a = np.zeros((200, 200), np.float32)
    a[80:120, 80:120] = 1
    r = region_around(a, grow_px=20)
    assert not r[80:120, 80:120].any()
    assert r[70, 100] and r[100, 125] and not r[10, 10] and not r[100, 145]
    assert region_around(np.zeros((50, 50)), grow_px=8).all()  # no element: whole frame
    assert region_around(np.ones((50, 50)), grow_px=8).all()  # element fills it: whole frame


def test_match_brings_graded_element_to_plate_levels(scene):
    plate, el, alpha = scene
    cm = measure_match(el, plate, region=region_around(alpha))  # levels mode against the ring
    assert cm.mode == "levels" and cm.clamped == ()
    out = apply_match(el, cm)
    assert np.array_equal(out[..., 3], el[..., 3])
    assert np.all(np.isfinite(out))
    reg = region_around(alpha)
    p = plate[reg].astype(np.float64)
    p = p[np.isfinite(p).all(axis=1)]
    e = out[alpha > 0.5][:, :3].astype(np.float64)
    sp, se = _stats(p), _stats(e)
    assert se["black"] == pytest.approx(sp["black"], rel=0.05)
    assert se["white"] == pytest.approx(sp["white"], rel=0.05)
    assert se["cast"] == pytest.approx(sp["cast"], rel=0.05)
    assert se["spread"] == pytest.approx(sp["spread"], rel=0.10)
    # before: far off
    s0 = _stats(el[alpha > 0.5][:, :3].astype(np.float64))
    assert abs(s0["white"] / sp["white"] - 1) > 0.2 and abs(s0["cast"][2] / sp["cast"][2] - 1) > 0.2
    assert cm.saturation == pytest.approx(2.0, rel=0.15)
    assert ColourMatch.from_dict(cm.to_dict()) == cm


def test_reference_patch_and_strength(scene):
    plate, el, alpha = scene
    cm = measure_match(el, plate, patch=(0, 0, 256, 80))
    assert cm.mode == "levels" and cm.clamped == ()
    out = apply_match(el, cm)
    patch = plate[:80, :256].reshape(-1, 3).astype(np.float64)
    patch = patch[np.isfinite(patch).all(axis=1)]
    se, sp = _stats(out[alpha > 0.5][:, :3].astype(np.float64)), _stats(patch)
    assert se["white"] == pytest.approx(sp["white"], rel=0.05)
    assert se["cast"] == pytest.approx(sp["cast"], rel=0.05)
    assert np.array_equal(apply_match(el, cm, strength=0.0), el)
    half = apply_match(el, cm, strength=0.5)
    m = alpha > 0.5
    assert np.all(np.abs(luminance(half[m][:, :3]) - luminance(el[m][:, :3])) <=
                  np.abs(luminance(out[m][:, :3]) - luminance(el[m][:, :3])) + 1e-6)


def test_too_few_pixels_is_identity():
    el = np.zeros((32, 32, 4), np.float32)
    cm = measure_match(el, np.full((32, 32, 3), 0.2, np.float32))
    assert cm.is_identity


def test_a_dark_patch_asking_for_an_absurd_grade_is_clamped_and_says_so(scene):
    plate, el, alpha = scene
    cm = measure_match(el, plate, patch=(0, 0, 60, 60))  # a dark corner: needs saturation > 2.5
    assert "saturation" in cm.clamped and cm.saturation == pytest.approx(2.5)
    assert all(0.25 <= g <= 4.0 for g in cm.gain)
