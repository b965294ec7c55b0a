"""Light wrap: only on the element's inner edge, where the plate is bright; grows with strength and width."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.match.lightwrap import light_wrap

H, W = 160, 160


@pytest.fixture
def scene():
    el = np.zeros((H, W, 4), np.float32)
    el[40:120, 40:120] = (0.1, 0.1, 0.1, 1.0)
    plate = np.full((H, W, 3), 0.02, np.float32)
    plate[:, 80:] = 4.0  # bright on the right
    plate[5, 5] = np.nan
    return el, plate


def test_wrap_is_on_inner_edges_only(scene):
    el, plate = scene
    wrap = light_wrap(el, plate, width_px=8.0, strength=0.5)
    assert wrap.shape == (H, W, 3) and wrap.dtype == np.float32 and np.all(np.isfinite(wrap))
    assert np.all(wrap[el[..., 3] == 0] == 0)  # outside the element
    assert np.abs(wrap[60:100, 60:100]).max() < 1e-6  # interior, > 4 sigma from the edges
    right_edge = wrap[80, 118]  # inner edge against the bright plate
    left_edge = wrap[80, 41]  # inner edge against the dark plate
    assert np.all(right_edge > 0.1) and np.all(right_edge > 20 * left_edge)
    assert np.all(wrap >= 0)


def test_wrap_grows_with_strength_and_width(scene):
    el, plate = scene
    base = light_wrap(el, plate, width_px=8.0, strength=0.5)
    stronger = light_wrap(el, plate, width_px=8.0, strength=1.0)
    wider = light_wrap(el, plate, width_px=16.0, strength=0.5)
    assert stronger.sum() == pytest.approx(2 * base.sum(), rel=1e-5)
    assert wider.sum() > 1.5 * base.sum()
    assert wider[80, 105, 0] > base[80, 105, 0]  # reaches deeper into the element
    assert np.all(light_wrap(el, plate, strength=0.0) == 0)
