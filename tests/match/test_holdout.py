"""Depth holdout: hidden exactly where the plate is nearer, anti-aliased along depth edges."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.match.holdout import combine_holdouts, depth_holdout


@pytest.fixture
def wall_scene():
    """A wall at 2 m over the left half (edge at a slanted line), a backdrop at 10 m; element at 5 m."""
    h, w = 64, 64
    v, u = np.mgrid[0:h, 0:w] + 0.5
    edge_x = 24.0 + 0.3 * v  # slanted: a hard test would stair-step
    plate_z = np.where(u < edge_x, 2.0, 10.0).astype(np.float32)
    el_z = np.full((h, w), 5.0, np.float32)
    return plate_z, el_z, edge_x


def test_hidden_exactly_where_the_wall_is_nearer(wall_scene):
    plate_z, el_z, edge_x = wall_scene
    hold = depth_holdout(el_z, plate_z)
    v, u = np.mgrid[0:64, 0:64] + 0.5
    far_from_edge = np.abs(u - edge_x) > 1.5
    assert np.all(hold[far_from_edge & (u < edge_x)] == 1.0)
    assert np.all(hold[far_from_edge & (u > edge_x)] == 0.0)


def test_edges_are_antialiased_and_monotone(wall_scene):
    plate_z, el_z, edge_x = wall_scene
    hold = depth_holdout(el_z, plate_z, samples=4)
    hard = depth_holdout(el_z, plate_z, samples=1)
    inter = (hold > 0.01) & (hold < 0.99)
    assert inter.sum() >= 40  # about one intermediate pixel per row
    assert ((hard > 0.01) & (hard < 0.99)).sum() < inter.sum()
    for row in hold:
        assert np.all(np.diff(row) <= 1e-6)  # monotone: from wall (1) to backdrop (0)
    # the covered width of each row follows the slanted edge (to the precision of per-pixel plate depth)
    covered = hold.sum(axis=1)
    assert np.abs(covered - edge_x[:, 0]).max() < 0.75


def test_no_element_and_sky_give_zero():
    el = np.full((8, 8), np.inf, np.float32)
    assert depth_holdout(el, np.ones((8, 8), np.float32)).max() == 0
    el = np.full((8, 8), 3.0, np.float32)
    assert depth_holdout(el, np.full((8, 8), np.inf, np.float32)).max() == 0


def test_combine_modes():
    d = np.array([[0.2, 0.0]], np.float32)
    e = np.array([[0.5, 0.0]], np.float32)
    assert np.allclose(combine_holdouts(d, e, "max"), [[0.5, 0.0]])
    assert np.allclose(combine_holdouts(d, e, "depth"), d)
    assert np.allclose(combine_holdouts(d, e, "engine"), e)
    assert np.allclose(combine_holdouts(d, np.zeros_like(e), "engine"), d)
    with pytest.raises(ValueError):
        combine_holdouts(d, e, "nope")
