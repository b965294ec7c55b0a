"""Raised surfaces no camera sees: the table top behind a tall box standing on it holds things up; a
slot cut into a table, which the cameras see through, does not; beyond the table nothing is invented.

Depth is ray cast here from known boxes and planes; truth is the geometry, and what is hidden is
decided by casting the segment from each camera, not by gvfx."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.engines.base import ElementSpec, PlateContext
from gvfx.engines.sim import insert, particles
from gvfx.engines.sim.common import Anchor, SimCache

UP = np.array([0.0, 1.0, 0.0])
TOP = 0.8
W, H = 480, 270
CAM = Camera(30.0, 36.0, W, H)
TALL_BOX = ((-0.15, TOP, 0.12), (0.15, 1.35, 0.32))  # stands on the table, hides the top behind it
TABLE = ((-0.6, 0.0, -0.4), (0.6, TOP, 0.4))
# a U-shaped bench: two legs of the U and its back, the slot between them open to the floor
BENCH = (((1.4, 0.0, -0.4), (1.9, TOP, 0.4)), ((2.1, 0.0, -0.4), (2.6, TOP, 0.4)),
         ((1.4, 0.0, -0.4), (2.6, TOP, -0.2)))
SLOT = ((1.9, 2.1), (-0.2, 0.4))  # x and z range of the slot
PLANES = ((UP, 0.0), (np.array([0.0, 0.0, 1.0]), 3.0))  # ground y = 0, wall z = -3
BOXES = (TABLE, TALL_BOX) + BENCH


def _pose(i: int, n: int) -> np.ndarray:
    s = i / max(n - 1, 1)
    return look_at(np.array([0.4 + 0.6 * s, 1.6, 4.5]), np.array([0.9, 0.5, 0.0]))


def _rays(m: np.ndarray) -> np.ndarray:
    v, u = np.mgrid[0:H, 0:W] + 0.5
    fx = CAM.focal_mm / CAM.haperture_mm * W
    d = np.stack([(u - W / 2) / fx, -(v - H / 2) / fx, -np.ones_like(u, dtype=float)], axis=-1).reshape(-1, 3)
    return d @ m[:3, :3].T


def _slab(o: np.ndarray, d: np.ndarray, lo, hi) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (np.asarray(lo) - o) / d, (np.asarray(hi) - o) / d
        tn = np.nanmax(np.minimum(t0, t1), axis=-1)
        tf = np.nanmin(np.maximum(t0, t1), axis=-1)
    return np.where((tn <= tf) & (tn > 1e-9), tn, np.inf)


def _depth(m: np.ndarray) -> np.ndarray:
    o, d = m[:3, 3], _rays(m)
    best = np.full(len(d), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for n, c in PLANES:
            t = -(n @ o + c) / (d @ n)
            best = np.where((t > 1e-9) & (t < best), t, best)
    for box in BOXES:
        best = np.minimum(best, _slab(o, d, *box))
    return best.reshape(H, W).astype(np.float32)


FRAMES = list(range(1, 25))
MATS = np.stack([_pose(i, len(FRAMES)) for i in range(len(FRAMES))])


def _seen_by_some_camera(points: np.ndarray) -> np.ndarray:
    """(N,) whether any camera's segment to the point is clear of every box (the point itself aside)."""
    seen = np.zeros(len(points), bool)
    for m in MATS:
        d = points - m[:3, 3]
        blocked = np.zeros(len(points), bool)
        for box in BOXES:
            blocked |= _slab(m[:3, 3], d, *box) < 1.0 - 1e-4
        seen |= ~blocked
    return seen


@pytest.fixture(scope="module")
def plate() -> PlateContext:
    depths: dict[int, np.ndarray] = {}

    def depth(f: int) -> np.ndarray:
        if f not in depths:
            depths[f] = _depth(MATS[FRAMES.index(f)])
        return depths[f]

    return PlateContext(FRAMES, CameraTrack(CAM, tuple(FRAMES), MATS), depth=depth, width=W, height=H)


@pytest.fixture(scope="module")
def support(plate):
    ground = particles.scene_ground(plate, plate.frames[0], UP)
    return particles.scene_support(plate, plate.frames, UP, ground)


def test_the_top_behind_the_box_is_hidden_from_every_camera_and_still_holds(support):
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(-0.13, 0.13, 600), np.full(600, TOP), rng.uniform(-0.35, 0.1, 600)], axis=1)
    hidden = pts[~_seen_by_some_camera(pts + 1e-3 * UP)]
    assert len(hidden) > 100, "the scene must hide part of the top"
    s, n = support.support(hidden + 0.3 * UP, 0.0, np.full(len(hidden), TOP + 0.3), "point")
    assert np.abs(s - TOP).max() < 0.003, f"{np.mean(np.abs(s - TOP) > 0.003):.0%} of the hidden top falls through"
    assert np.allclose(n, UP)


def test_a_slot_the_cameras_see_through_is_not_filled(support):
    rng = np.random.default_rng(1)
    x = rng.uniform(SLOT[0][0] + 0.03, SLOT[0][1] - 0.03, 300)
    z = rng.uniform(SLOT[1][0] + 0.03, SLOT[1][1] - 0.03, 300)
    pts = np.stack([x, np.full(300, TOP + 0.2), z], axis=1)
    s, _ = support.support(pts, 0.0, np.full(300, TOP + 0.2), "point")
    assert np.abs(s).max() < 1e-3  # the floor holds them, not an invented bench top
    # and the bench's real top beside the slot does
    s, _ = support.support(np.array([[1.6, 1.0, 0.0], [2.4, 1.0, 0.0]]), 0.0, np.array([1.0, 1.0]), "point")
    assert np.abs(s - TOP).max() < 0.003


def test_nothing_is_invented_beyond_the_table(support):
    # the box's shadow runs past the table's back edge: behind the table, the floor
    pts = np.array([[0.0, 1.0, -0.55], [0.05, 1.0, -0.7], [-0.05, 1.0, -1.0]])
    s, _ = support.support(pts, 0.0, np.full(3, 1.0), "point")
    assert np.abs(s).max() < 1e-3


@pytest.fixture(scope="module")
def ref_png(tmp_path_factory) -> str:
    img = np.zeros((32, 32, 3), np.uint8)
    img[:] = (40, 200, 60)
    img[6:26, 6:26] = (200, 90, 40)
    path = tmp_path_factory.mktemp("ref") / "obj.png"
    Image.fromarray(img).save(path)
    return str(path)


def test_a_box_dropped_behind_the_tall_box_rests_on_the_hidden_top(plate, ref_png, tmp_path):
    point = np.array([0.0, TOP + 0.5, -0.2])
    assert not _seen_by_some_camera(np.array([[0.0, TOP + 1e-3, -0.2]]))[0]
    anchor = Anchor(point, UP, UP, 0.1)
    spec = ElementSpec("obj", "insert", reference=ref_png, size_m=0.1, params={"collider": "box"})
    cache = SimCache(tmp_path / "cache")
    insert.simulate(spec, plate, anchor, cache)
    frames = [f for f in plate.frames if cache.has(f)]
    pos = np.stack([cache.read(f)["pos"] for f in frames]).astype(np.float64).reshape(len(frames), -1)[:, :3]
    assert abs(pos[-1, 1] - (TOP + 0.05)) < 0.005, f"ends at y = {pos[-1, 1]:.3f}"
    motion = np.linalg.norm(np.diff(pos[-8:], axis=0), axis=1)
    assert motion.max() < 0.001
