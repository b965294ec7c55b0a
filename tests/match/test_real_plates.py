"""The match stage on real photographs without depth (2D fallback) and on plates with NaN/Inf pixels.

Uses the OpenEXR project's sample images; skipped when they are not on this machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gvfx.engines.base import ElementFrame
from gvfx.match.stage import MatchSettings, PlateSample, estimate, layer_dict, match_frame, rebuild_comp

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "openexr"


def _plate(name: str) -> np.ndarray:
    from gvfx.exr import read_exr

    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return read_exr(path).rgba()


def _element(h: int, w: int) -> ElementFrame:
    """An opaque grey disc with a soft edge, no depth (a 2D element)."""
    v, u = np.mgrid[0:h, 0:w] + 0.5
    r = np.hypot(u - w * 0.5, v - h * 0.5)
    a = np.clip((0.2 * min(h, w) - r) / 2.0, 0, 1).astype(np.float32)
    rgba = np.concatenate([np.repeat(0.3 * a[..., None], 3, -1), a[..., None]], -1)
    return ElementFrame(rgba, np.full((h, w), np.inf, np.float32), None)


def _match(plate: np.ndarray):
    h, w = plate.shape[:2]
    # the 2D fallback: no depth -> no depth holdout, shadow, haze or camera motion; grain, colour and a
    # uniform defocus come from the plate alone
    st = MatchSettings(lightwrap_width_px=4.0)
    from gvfx.camera import CameraTrack, default_camera

    est = estimate(st, PlateSample(1, plate[..., :3], None, CameraTrack.static(default_camera(w, h), [1])),
                   element_rgba=_element(h, w).rgba)
    mf = match_frame(_element(h, w), frame=1, plate_rgb=plate, plate_z=None, track=None, settings=st,
                     estimates=est, seed=5)
    return est, mf, rebuild_comp(plate, [layer_dict(mf)])


@pytest.mark.parametrize("name", ["ScanLines/Carrots.exr", "ScanLines/Cannon.exr", "TestImages/GammaChart.exr"])
def test_photographs_without_depth_use_the_2d_fallback(name):
    plate = _plate(name)
    est, mf, comp = _match(plate)
    assert est.sources["haze"] == "off" and est.sources["focus"] in ("2d", "off")
    assert est.grain is not None and est.sources["grain"] == "estimated"
    assert mf.holdout.max() == 0 and mf.shadow.max() == 0 and np.abs(mf.motion).max() == 0
    assert np.isfinite(comp).all()
    inside = mf.rgba[..., 3] > 0.999
    # the element is over the plate where it is opaque, with grain and light wrap added
    el = mf.rgba + np.concatenate([mf.lightwrap + mf.grain, np.zeros_like(mf.rgba[..., :1])], -1)
    assert np.allclose(comp[inside], el[inside], atol=1e-5)
    outside = mf.rgba[..., 3] == 0
    assert np.allclose(comp[outside], plate[outside], atol=1e-6)


def test_nan_and_inf_in_the_plate_do_not_spread():
    plate = _plate("TestImages/BrightRingsNanInf.exr")
    from gvfx.exr import read_exr

    raw = read_exr(DATA / "TestImages/BrightRingsNanInf.exr")
    assert sum(n + i for n, i in raw.nonfinite.values()) > 0  # the file does hold NaN/Inf
    # put the NaN/Inf back (read_exr already cleans them) to test the stage on its own
    bad = plate.copy()
    bad[::7, ::5, 0] = np.nan
    bad[3::11, ::3, 1] = np.inf
    est, mf, comp = _match(bad)
    for layer in (mf.rgba, mf.grain, mf.lightwrap, mf.holdout, mf.shadow, comp):
        assert np.isfinite(layer).all()
