"""NaN/Inf plate pixels are left out of every estimate (grain, focus, haze, light, colour), and a
measured colour grade out of range is refused with its reason in the estimate and in the log.

Truth is made independently: the demo's ray-cast plate (known depth, rendered grain) and a synthetic
hazy plate with a known density and airlight. "Left out" is checked against the estimator run on the
clean plate with the same pixels masked away (grain: identical), or against the known truth.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import ndimage

from gvfx.demo.scene import write_demo_plate
from gvfx.exr import read_exr
from gvfx.match.colour import ColourMatch
from gvfx.match.defocus import estimate_focus
from gvfx.match.grain import measure_grain
from gvfx.match.haze import fit_haze
from gvfx.match.shadow import estimate_light
from gvfx.match.stage import MatchSettings, PlateSample, estimate

W, H = 480, 270
STAND_IN = 65504.0  # what the EXR reader puts where the file held +Inf


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("est")
    _, track, _ = write_demo_plate(root / "p", W, H, [1001])
    img = read_exr(root / "p" / "plate.1001.exr")
    bad = np.zeros((H, W), bool)
    bad[80:92, :] = True  # bands across the frame, and a block, as a broken scan would have
    bad[160:166, :] = True
    bad[200:240, 60:68] = True
    return np.array(img.rgba()[..., :3]), np.array(img.channels["Z"]), track, bad


def _poisoned(rgb: np.ndarray, bad: np.ndarray, value: float) -> np.ndarray:
    out = np.array(rgb, np.float32)
    out[bad] = value
    return out


def test_grain_leaves_the_bad_pixels_out_exactly(demo) -> None:
    rgb, _, _, bad = demo
    masked = measure_grain(rgb, mask=~bad)  # the clean plate, the same pixels never looked at
    assert measure_grain(_poisoned(rgb, bad, np.nan)) == masked
    clean = measure_grain(rgb)
    assert np.allclose(masked.sigma, clean.sigma, rtol=0.1)  # the rendered grain, still measured
    stood_in = measure_grain(_poisoned(rgb, bad, STAND_IN))
    assert max(stood_in.band_edges) > 1000 and max(masked.band_edges) < 1.0  # what leaving out prevents


def test_focus_leaves_the_bad_pixels_out(demo) -> None:
    rgb, z, _, bad = demo
    clean = estimate_focus(rgb, z)
    got = estimate_focus(_poisoned(rgb, bad, np.nan), z)
    assert clean.estimated and got.estimated
    assert (got.focus_m, got.fstop) == (clean.focus_m, clean.fstop)
    # every depth bin still reads the plate's sharpness (0 px blur: the demo plate is sharp)
    assert got.sharpness_by_depth and all(np.isfinite(b) and b == 0.0 for _, b, _ in got.sharpness_by_depth)
    stood_in = estimate_focus(_poisoned(rgb, bad, STAND_IN), z)
    assert any(b > 0.5 for _, b, _ in stood_in.sharpness_by_depth)  # the band's edges read as blur


def test_haze_leaves_the_bad_pixels_out() -> None:
    """A hazed synthetic plate (density 0.012/m, airlight known) with NaN bands still gives them back."""
    beta, airlight = 0.012, np.array([0.6, 0.65, 0.75])
    rng = np.random.default_rng(3)
    h, w, depths = 256, 640, [5, 10, 20, 35, 50, 70, 100, 140]
    sw = w // len(depths)
    tex = 0.18 * (1 + 0.6 * ndimage.gaussian_filter(rng.standard_normal((h, w)), 1.5) / 0.19)
    z = np.repeat(np.repeat(np.array(depths, float), sw)[None], h, 0)
    t = np.exp(-beta * z)[..., None]
    plate = (tex[..., None] * np.array([1.0, 0.9, 0.7]) * t + airlight * (1 - t)).astype(np.float32)
    bad = np.zeros((h, w), bool)
    bad[60:70, :] = True
    bad[150:154, :] = True
    bad[:, 300:304] = True
    got = fit_haze(_poisoned(plate, bad, np.nan), z)
    assert got.fitted and got.density_per_m == pytest.approx(beta, rel=0.2)
    assert np.array(got.colour) == pytest.approx(airlight, rel=0.1)
    assert max(fit_haze(_poisoned(plate, bad, STAND_IN), z).colour) > 100  # the stand-ins as airlight


def test_light_is_not_a_band_of_inf(demo) -> None:
    rgb, z, track, bad = demo
    cam, pose = track.camera_at(1001), track.transform(1001)
    clean = estimate_light(rgb, z, cam, pose)
    got = estimate_light(_poisoned(rgb, bad, np.nan), z, cam, pose)
    assert got.source == clean.source == "default" and np.allclose(got.direction, clean.direction)
    assert got.confidence < 0.5


def _sample(rgb: np.ndarray, z: np.ndarray, track) -> PlateSample:
    return PlateSample(1001, rgb, z, track)


def test_the_stage_refuses_an_out_of_range_grade_and_logs_why(demo, caplog) -> None:
    """A plate whose measurable pixels are all at the stand-in level (what an unmasked +Inf region
    gives) makes a grade of thousands: the stage refuses it, says why in the estimate, and logs it."""
    rgb, z, track, _ = demo
    element = np.zeros((H, W, 4), np.float32)
    element[100:150, 200:260] = (0.02, 0.015, 0.01, 1.0)
    settings = MatchSettings(colour="on", light_dir=(0.0, 1.0, 0.0))
    hot = rgb * np.float32(20000.0)  # the plate at the stand-in level: its grade, thousands
    with caplog.at_level(logging.WARNING, logger="gvfx.match.stage"):
        est = estimate(settings, _sample(hot, z, track), element_rgba=element, element_plate_rgb=hot)
    reason = est.sources["colour"].removeprefix("refused: ")
    assert est.colour is None and reason != est.sources["colour"] and reason.split()[0] in ("gain", "lift"), est.sources
    assert "beyond ±4" in reason or "outside 0.03125..32" in reason
    assert any(f"colour: the measured grade is refused ({reason})" in r.getMessage() for r in caplog.records)
    # the same element on the real plate: a sane grade, kept
    ok = estimate(settings, _sample(rgb, z, track), element_rgba=element, element_plate_rgb=rgb)
    assert isinstance(ok.colour, ColourMatch) and ok.sources["colour"] == "estimated"
    assert 1 / 32 < min(ok.colour.gain) and max(ok.colour.gain) < 32


def test_the_stage_on_a_nan_banded_plate_gives_finite_estimates(demo) -> None:
    rgb, z, track, bad = demo
    element = np.zeros((H, W, 4), np.float32)
    element[70:100, 200:260] = (0.2, 0.15, 0.1, 1.0)  # over a band
    nan = _poisoned(rgb, bad, np.nan)
    settings = MatchSettings(colour="on")
    est = estimate(settings, _sample(nan, z, track), element_rgba=element, element_plate_rgb=nan)
    clean = estimate(settings, _sample(rgb, z, track), element_rgba=element, element_plate_rgb=rgb)
    assert est.sources["colour"] == "estimated" and np.isfinite(est.colour.gain).all()
    assert np.allclose(est.colour.gain, clean.colour.gain, rtol=0.15)
    assert est.grain == measure_grain(rgb, mask=~bad)
    assert np.isfinite(est.light_dir).all() and est.focus_m == clean.focus_m
