"""Grain: measured sigma and size on a synthetic plate, regrain matching the plate, alpha 0 untouched."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from gvfx.match.flat import flat_mask
from gvfx.match.grain import GrainProfile, _kernel, apply_grain, measure_grain, synthesize_grain

SIGMA = np.array([0.01, 0.008, 0.012])
H, W = 384, 512


def _grain(rng: np.random.Generator, corr_px: float) -> np.ndarray:
    n = rng.standard_normal((H, W, 3))
    if corr_px > 0:
        n = np.stack([ndimage.gaussian_filter(n[..., k], corr_px, mode="wrap") for k in range(3)], -1)
        n /= np.sqrt((_kernel(corr_px) ** 2).sum())
    return n * SIGMA


def _clean_plate() -> np.ndarray:
    """Four flat luminance areas, a ramp, a bright bar (edges) and a disc."""
    img = np.zeros((H, W, 3))
    for i, lum in enumerate((0.05, 0.18, 0.5, 1.0)):
        img[:, i * 128:(i + 1) * 128] = lum * np.array([1.0, 0.9, 0.8])
    img[150:230] += np.linspace(0.0, 0.3, W)[None, :, None]
    img[300:320] += 0.7
    yy, xx = np.mgrid[:H, :W]
    img[(xx - 300) ** 2 + (yy - 80) ** 2 < 40 ** 2] += 0.4
    return img


@pytest.fixture(params=[0.0, 1.5], ids=["white", "correlated"])
def plate(request):
    rng = np.random.default_rng(7)
    p = (_clean_plate() + _grain(rng, request.param)).astype(np.float32)
    p[10, 10] = np.nan
    p[20, 400] = np.inf
    return p, request.param


def test_measured_sigma_within_10_percent(plate):
    p, corr = plate
    prof = measure_grain(p, bands=4)
    ratio = prof.sigma_array / SIGMA
    assert np.all(np.abs(ratio - 1) < 0.10), ratio
    assert prof.correlation_px == pytest.approx(corr, abs=0.3)
    assert all(s > 1000 for s in prof.samples)
    assert np.all(np.isfinite(prof.sigma_array))


def test_flat_mask_avoids_edges_and_nan():
    p = (_clean_plate() + _grain(np.random.default_rng(1), 0)).astype(np.float32)
    p[50, 50] = np.nan
    m = flat_mask(p)
    assert not m[50, 50]
    assert not m[298:303].any() and not m[317:322].any()  # the bar's edges
    assert m[308:312, 20:100].mean() > 0.5  # inside the bar is flat
    assert m.mean() > 0.15


def test_band_fallback_and_luminance_dependence():
    rng = np.random.default_rng(3)
    img = np.zeros((256, 256, 3))
    img[:, :128], img[:, 128:] = 0.1, 1.0
    n = rng.standard_normal(img.shape)
    sig = np.where(img > 0.5, 0.02, 0.005)
    prof = measure_grain((img + n * sig).astype(np.float32), bands=2)
    s = prof.sigma_array
    assert s[0] == pytest.approx([0.005] * 3, rel=0.1)
    assert s[1] == pytest.approx([0.02] * 3, rel=0.1)
    # a mask restricts where grain is measured
    prof3 = measure_grain((img + n * sig).astype(np.float32), mask=img[..., 0] < 0.5, bands=1)
    assert prof3.sigma_array[0] == pytest.approx([0.005] * 3, rel=0.1)


def test_synthesized_grain_has_profile_sigma_and_size():
    prof = GrainProfile((0.0, 0.5, 2.0), ((0.01, 0.02, 0.03), (0.02, 0.04, 0.06)), 1.2, (1, 1))
    lum = np.full((256, 256), 0.25)
    g = synthesize_grain((256, 256), prof, lum, seed=5)
    assert g.shape == (256, 256, 3) and g.dtype == np.float32
    assert g.reshape(-1, 3).std(axis=0) == pytest.approx([0.01, 0.02, 0.03], rel=0.08)
    remeasured = measure_grain((0.25 + g).astype(np.float32), bands=1)
    assert remeasured.correlation_px == pytest.approx(1.2, abs=0.3)
    assert np.array_equal(g, synthesize_grain((256, 256), prof, lum, seed=5))
    assert GrainProfile.from_dict(prof.to_dict()) == prof


def test_regrain_matches_plate_under_opaque_element_and_leaves_alpha0_exact(plate):
    p, _ = plate
    prof = measure_grain(p)
    el = np.zeros((H, W, 4), np.float32)
    el[40:120, 140:240] = (0.3, 0.25, 0.2, 1.0)  # opaque, clean, on the 0.18 area
    el[40:120, 240:250] = (0.15, 0.12, 0.1, 0.5)  # a soft edge
    out, layer = apply_grain(el, prof, seed=11, plate_rgb=p)
    comp = out[..., :3] + (1 - out[..., 3:4]) * p
    under = comp[50:110, 150:230].reshape(-1, 3)
    plate_flat = p[330:380, 140:250].reshape(-1, 3)  # flat plate, same luminance, no element
    ratio = under.std(axis=0) / plate_flat.std(axis=0)
    assert np.all(np.abs(ratio - 1) < 0.15), ratio
    zero = el[..., 3] == 0
    assert np.array_equal(comp[zero], p[zero].astype(comp.dtype), equal_nan=True)
    assert np.all(layer[zero] == 0)
    assert np.array_equal(out[..., 3], el[..., 3])
    assert np.all(np.isfinite(out))
