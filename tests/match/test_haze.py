"""Haze: recover a known density and airlight from a synthetic plate; apply_haze follows the formula."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from gvfx.match.haze import Haze, apply_haze, fit_haze

BETA = 0.012
AIRLIGHT = np.array([0.6, 0.65, 0.75])
H, W = 256, 640


@pytest.fixture
def hazy_plate():
    """Textured planes at eight depths (same texture statistics), a sky band, hazed with BETA, A."""
    rng = np.random.default_rng(0)
    depths = [5, 10, 20, 35, 50, 70, 100, 140]
    sw = W // len(depths)
    tex = 0.18 * (1 + 0.6 * ndimage.gaussian_filter(rng.standard_normal((H, W)), 1.5) / 0.19)
    j = np.zeros((H, W, 3))
    z = np.zeros((H, W))
    for i, d in enumerate(depths):
        j[:, i * sw:(i + 1) * sw] = tex[:, i * sw:(i + 1) * sw, None] * np.array([1.0, 0.9, 0.7])
        z[:, i * sw:(i + 1) * sw] = d
    z[:40] = np.inf
    t = np.exp(-BETA * z)[..., None]
    plate = (j * t + AIRLIGHT * (1 - t)).astype(np.float32)
    plate[:40] = 1.5  # sky
    plate[100, 100] = np.nan
    plate[120, 300] = np.inf
    return plate, z


def test_fit_recovers_density_and_airlight(hazy_plate):
    plate, z = hazy_plate
    h = fit_haze(plate, z)
    assert h.fitted
    assert h.density_per_m == pytest.approx(BETA, rel=0.20)
    assert np.array(h.colour) == pytest.approx(AIRLIGHT, rel=0.10)
    assert Haze.from_dict(h.to_dict()) == h


def test_flat_depth_or_no_depth_is_off(hazy_plate):
    plate, _ = hazy_plate
    for z in (np.full((H, W), 10.0), None):
        h = fit_haze(plate, z)
        assert not h.fitted and h.density_per_m == 0.0


def test_apply_haze_matches_formula():
    el = np.zeros((8, 8, 4), np.float32)
    el[2:6, 2:6] = (0.2, 0.1, 0.05, 0.8)  # premultiplied
    z = np.full((8, 8), np.inf)
    z[2:6, 2:6] = 40.0
    hz = Haze(0.02, (0.5, 0.6, 0.7), True)
    out = apply_haze(el, z, hz)
    t = np.exp(-0.02 * 40.0)
    expected = np.array([0.2, 0.1, 0.05]) * t + np.array([0.5, 0.6, 0.7]) * 0.8 * (1 - t)
    assert out[3, 3, :3] == pytest.approx(expected, rel=1e-5)
    assert np.array_equal(out[..., 3], el[..., 3])
    assert np.all(out[0, 0] == 0) and np.all(np.isfinite(out))
    assert np.array_equal(apply_haze(el, z, Haze()), el)
