"""Rain on the demo plate with the job defaults, measured from the written EXRs (issue 13, point 3):
physically low-alpha drops seen by the light they catch, bright streak cores, over much of the frame,
no shadow and no darkening anywhere.

The bounds are ones the rain before issue 13 fails at this size (320x180, 3 frames; measured there:
streak median +0.05-0.06x the plate's median, 99th percentile +0.3-0.6x, coverage 0.30-0.32).
"""

from __future__ import annotations

import numpy as np
import pytest

LUMA = np.array([0.2722, 0.6741, 0.0537], np.float32)
#: a streak pixel: element alpha above this
STREAK_ALPHA = 0.005


@pytest.fixture(scope="module")
def rain(shot):
    return shot.look("rain")


def _frames(rain):
    """Per frame: plate luminance, comp luminance, element alpha (display window)."""
    return [(p[..., :3] @ LUMA, c[..., :3] @ LUMA, a[..., 3]) for p, c, a in zip(rain.plate, rain.comp, rain.rgba)]


def test_rain_streaks_are_bright_against_the_plate(rain):
    for pl, cl, a in _frames(rain)[1:]:  # frame 1: the pool is still filling the view
        med = float(np.median(pl))
        streak = a > STREAK_ALPHA
        gain = (cl - pl)[streak] / med
        assert np.median(gain) > 0.15, np.median(gain)  # the streaks themselves: was +0.05-0.06x
        assert np.percentile(gain, 99) > 1.0, np.percentile(gain, 99)  # glinting cores: was +0.3-0.6x
        assert float(gain.max()) > 3.0  # the brightest drops catch the sky's light, HDR


def test_rain_covers_the_frame_with_low_alpha_drops(rain):
    for _, _, a in _frames(rain)[1:]:
        streak = a > STREAK_ALPHA
        assert 0.35 < streak.mean() < 0.8, streak.mean()  # dense rain: was 0.30-0.32
        assert float(a.max()) < 0.6  # blurred drops are low-alpha: the light carries them
        assert np.percentile(a[streak], 50) < 0.05


def test_rain_never_darkens_and_casts_no_shadow(rain):
    for pl, cl, _ in _frames(rain):
        assert np.mean(cl < pl * 0.99) < 1e-3  # no pixel darker than the plate (a stray grain pixel at most)
        assert float(np.median(cl)) >= float(np.median(pl))
        assert float(np.median(cl)) < 1.4 * float(np.median(pl))  # bright streaks, not a frame-wide veil
    assert all(float(s.max()) == 0.0 for s in rain.shadow)
    assert rain.shadow_dark_fraction(0.01) == 0.0
