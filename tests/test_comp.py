"""The depth-aware over: premultiplied maths, holdouts, per-pixel depth ordering."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.comp import comp_elements, over
from gvfx.errors import InputError, ResolutionMismatchError

H, W = 6, 8


@pytest.fixture
def plate() -> np.ndarray:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.0, 2.0, (H, W, 4)).astype(np.float32)
    p[..., 3] = 1.0
    return p


def _element(rgb, alpha) -> np.ndarray:
    """A constant premultiplied element."""
    e = np.empty((H, W, 4), np.float32)
    e[..., :3] = np.asarray(rgb, np.float32) * alpha
    e[..., 3] = alpha
    return e


def test_fully_held_out_element_leaves_the_plate_bitwise(plate):
    el = _element((5.0, 1.0, 0.5), 1.0)
    out = over(plate, el, np.ones((H, W), np.float32))
    assert out.dtype == np.float32
    assert np.array_equal(out, plate)


def test_opaque_unheld_element_replaces_the_plate(plate):
    el = _element((5.0, 1.0, 0.5), 1.0)
    assert np.array_equal(over(plate, el, None), el)
    assert np.array_equal(over(plate, el, np.zeros((H, W), np.float32)), el)


def test_premultiplied_maths(plate):
    el = _element((1.0, 0.5, 0.25), 0.4)  # premultiplied rgb = 0.4, 0.2, 0.1
    hold = np.full((H, W), 0.25, np.float32)
    out = over(plate, el, hold)
    vis = 0.75
    expect_rgb = np.array([0.4, 0.2, 0.1]) * vis + plate[..., :3] * (1 - 0.4 * vis)
    assert np.allclose(out[..., :3], expect_rgb, atol=1e-6)
    assert np.allclose(out[..., 3], 0.4 * vis + 1.0 * (1 - 0.4 * vis), atol=1e-6)
    # an empty (alpha 0) element with glow (premultiplied rgb > 0, a = 0) adds light
    glow = np.zeros((H, W, 4), np.float32)
    glow[..., 0] = 0.3
    assert np.allclose(over(plate, glow)[..., 0], plate[..., 0] + 0.3, atol=1e-6)


def test_bad_shapes_raise(plate):
    with pytest.raises(ResolutionMismatchError):
        over(plate, np.zeros((H, W + 1, 4), np.float32))
    with pytest.raises(InputError):
        over(plate, np.zeros((H, W, 3), np.float32))
    with pytest.raises(ResolutionMismatchError):
        over(plate, np.zeros((H, W, 4), np.float32), np.zeros((H + 1, W), np.float32))


def test_comp_elements_orders_by_depth_per_pixel(plate):
    red = _element((1.0, 0.0, 0.0), 0.5)
    blue = _element((0.0, 0.0, 1.0), 0.5)
    z_red = np.full((H, W), 2.0, np.float32)
    z_blue = np.full((H, W), 3.0, np.float32)
    z_blue[:, : W // 2] = 1.0  # blue is in front on the left half, behind on the right
    out = comp_elements(plate, [(red, z_red, None), (blue, z_blue, None)])
    left = over(over(plate, red), blue)  # red first (further), then blue on top
    right = over(over(plate, blue), red)
    assert np.allclose(out[:, : W // 2], left[:, : W // 2], atol=1e-6)
    assert np.allclose(out[:, W // 2:], right[:, W // 2:], atol=1e-6)
    assert not np.allclose(left, right)


def test_comp_elements_uses_each_holdout_and_ties_keep_list_order(plate):
    a = _element((1.0, 1.0, 0.0), 1.0)
    b = _element((0.0, 1.0, 1.0), 1.0)
    z = np.full((H, W), 2.0, np.float32)
    hold_b = np.zeros((H, W), np.float32)
    hold_b[0] = 1.0  # b hidden by the plate on the top row only
    out = comp_elements(plate, [(a, z, None), (b, z, hold_b)])
    assert np.array_equal(out[1:], b[1:])  # equal Z: the later element is on top
    assert np.array_equal(out[0], a[0])  # where b is held out, a shows
    assert np.array_equal(comp_elements(plate, []), plate)
    nan_z = np.full((H, W), np.nan, np.float32)  # NaN depth counts as far away
    out = comp_elements(plate, [(a, z, None), (b, nan_z, None)])
    assert np.array_equal(out, a)
