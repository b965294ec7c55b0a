"""Scene contact against a ray-cast scene of known geometry: a ground (y = 0), a table (top at 0.8 m,
right edge at x = 0.6 m), a box in front hiding part of the ground, a wall; three known cameras.

The depth is ray cast here, analytically, not by gvfx; truth is the geometry itself."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.engines.base import ElementSpec, PlateContext
from gvfx.engines.sim import insert, particles
from gvfx.engines.sim.common import Anchor, SimCache
from gvfx.engines.sim.contact import SupportField, resolve_contact
from gvfx.surface import Plane

UP = np.array([0.0, 1.0, 0.0])
TABLE_TOP, TABLE_EDGE_X = 0.8, 0.6
TABLE = ((-0.6, 0.0, -0.4), (TABLE_EDGE_X, TABLE_TOP, 0.4))
OCCLUDER = ((0.9, 0.0, 1.2), (1.5, 0.7, 1.6))  # front right: the ground behind it is never seen
PLANES = ((UP, 0.0), (np.array([0.0, 0.0, 1.0]), 3.0))  # ground y = 0, wall z = -3
W, H = 480, 270
CAM = Camera(30.0, 36.0, W, H)
FPS = 24.0


def _pose(i: int, n: int) -> np.ndarray:
    s = i / max(n - 1, 1)
    return look_at(np.array([-0.3 + 0.6 * s, 1.6, 4.0]), np.array([0.0, 0.5, 0.0]))


def _rays(m: np.ndarray) -> np.ndarray:
    """(H*W, 3) world rays with camera-space z = -1, so a hit at parameter t has depth Z = t."""
    v, u = np.mgrid[0:H, 0:W] + 0.5
    fx = CAM.focal_mm / CAM.haperture_mm * W
    d = np.stack([(u - W / 2) / fx, -(v - H / 2) / fx, -np.ones_like(u, dtype=float)], axis=-1).reshape(-1, 3)
    return d @ m[:3, :3].T


def _slab(o: np.ndarray, d: np.ndarray, lo, hi) -> np.ndarray:
    """Ray parameter of the first hit of an axis-aligned box (inf when missed)."""
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
    for box in (TABLE, OCCLUDER):
        best = np.minimum(best, _slab(o, d, *box))
    return best.reshape(H, W).astype(np.float32)


def _hidden_everywhere(points: np.ndarray, mats: np.ndarray) -> np.ndarray:
    """(N,) ground points that no camera sees: the segment to each eye passes through the occluder."""
    hidden = np.ones(len(points), bool)
    for m in mats:
        d = points - m[:3, 3]
        t = _slab(m[:3, 3], d, *OCCLUDER)
        hidden &= t < 1.0 - 1e-6
    return hidden


@pytest.fixture(scope="module")
def plate() -> PlateContext:
    frames = list(range(1, 45))
    mats = np.stack([_pose(i, len(frames)) for i in range(len(frames))])
    depths: dict[int, np.ndarray] = {}

    def depth(f: int) -> np.ndarray:  # ray cast on demand: the inserts only read three frames
        if f not in depths:
            depths[f] = _depth(mats[frames.index(f)])
        return depths[f]

    return PlateContext(frames, CameraTrack(CAM, tuple(frames), mats), depth=depth, width=W, height=H)


@pytest.fixture(scope="module")
def support(plate) -> SupportField:
    ground = particles.scene_ground(plate, plate.frames[0], UP)
    return particles.scene_support(plate, plate.frames, UP, ground)


@pytest.fixture(scope="module")
def ref_png(tmp_path_factory) -> str:
    img = np.zeros((32, 32, 3), np.uint8)
    img[:] = (40, 200, 60)
    img[6:26, 6:26] = (200, 90, 40)
    path = tmp_path_factory.mktemp("ref") / "obj.png"
    Image.fromarray(img).save(path)
    return str(path)


def test_support_is_the_surface_under_the_object_not_the_pixel_behind_it(support):
    g = support.ground
    assert abs(g.normal @ UP - 1.0) < 1e-6 and abs(g.offset) < 1e-4  # the ground fit is y = 0
    rng = np.random.default_rng(0)
    # the far edge is seen grazing (a pixel spans 6 cm of the top there): keep 8 cm clear of it
    on_top = np.stack([rng.uniform(-0.58, 0.58, 300), np.full(300, 1.0), rng.uniform(-0.32, 0.38, 300)], axis=1)
    s, n = support.support(on_top, 0.0, np.full(300, 1.0), "point")
    assert np.abs(s - TABLE_TOP).max() < 0.002
    assert np.allclose(n, UP)
    # under the table top (the plate never sees that ground): the ground, not the top above
    under = np.stack([rng.uniform(-0.5, 0.5, 50), np.full(50, 0.3), rng.uniform(-0.3, 0.3, 50)], axis=1)
    s, _ = support.support(under, 0.0, np.full(50, 0.3), "point")
    assert np.abs(s).max() < 1e-3
    # behind the occluder, hidden from every camera
    # z < 1.17: clear of the occluder's own top (z from 1.2)
    behind = np.stack([rng.uniform(0.9, 1.5, 400), np.zeros(400), rng.uniform(0.5, 1.17, 400)], axis=1)
    behind = behind[_hidden_everywhere(behind, np.stack([_pose(i, 3) for i in range(3)]))]
    assert len(behind) > 50
    s, _ = support.support(behind + UP, 0.0, np.full(len(behind), 1.0), "point")
    assert np.abs(s).max() < 1e-3
    # the occluder's own top is a layer too
    s, _ = support.support(np.array([[1.2, 1.0, 1.4]]), 0.0, np.array([1.0]), "point")
    assert abs(s[0] - 0.7) < 0.002


def test_resolve_contact_never_leaves_anything_below_the_ground(support):
    rng = np.random.default_rng(1)
    pos = rng.uniform([-3, -2.0, -2.5], [3, -0.01, 2.5], (500, 3))  # all below y = 0
    c = resolve_contact(support, pos, rng.normal(0, 3, (500, 3)), 0.01, 1 / 96)
    assert (c.pos[:, 1] >= 0.01 - 1e-5).all() and c.touching.all()
    assert (c.vel[:, 1] >= -1e-5).all()  # no velocity left into the ground


def _insert(plate, ref, tmp_path, point, proxy, size_m, velocity=(0.0, 0.0, 0.0), start=None):
    anchor = Anchor(np.asarray(point, float), UP, UP, size_m)
    spec = ElementSpec("obj", "insert", reference=ref, size_m=size_m, start_frame=start,
                       params={"proxy": proxy, "velocity_mps": velocity})
    cache = SimCache(tmp_path / "cache")
    insert.simulate(spec, plate, anchor, cache)
    frames = [f for f in plate.frames if cache.has(f)]
    track = np.concatenate([cache.read(f)["track"][:, 0] for f in frames]).astype(np.float64)
    per_frame = np.stack([cache.read(f)["pos"] for f in frames]).astype(np.float64)
    return track, per_frame


def test_box_dropped_on_the_table_rests_on_its_top(plate, ref_png, tmp_path):
    track, pos = _insert(plate, ref_png, tmp_path, (0.1, 1.4, 0.0), "box", 0.2)
    assert track[:, 1].min() > 0.9 - 0.005  # never sinks into the top (centre = top + half edge)
    rest = pos[-24:]
    assert abs(rest[-1, 1] - 0.1 - TABLE_TOP) < 0.005
    motion = np.linalg.norm(np.diff(rest, axis=0), axis=1)
    assert motion.max() < 0.001, f"moves {motion.max() * 1000:.2f} mm/frame at rest"


def test_ball_rolls_across_the_table_and_leaves_at_its_true_edge(plate, ref_png, tmp_path):
    # fast enough (v^2 > g r at the edge) that a real ball flies off the edge instead of pivoting on it
    track, _ = _insert(plate, ref_png, tmp_path, (-0.2, 0.8, 0.0), "sphere", 0.2, velocity=(1.8, 0.0, 0.0))
    r = 0.1
    x, y = track[:, 0], track[:, 1]
    on = x < TABLE_EDGE_X - 0.01
    assert on.sum() > 20
    assert np.abs(y[on] - TABLE_TOP - r).max() < 0.001  # rolls flat: no rattle, no early fall
    # departure: the free-flight parabola y(x) (constant vx, no drag) traced back to the top's height
    fly = (y < TABLE_TOP + r - 0.01) & (y > 0.3) & (x > TABLE_EDGE_X)
    assert fly.sum() > 5
    a, b, c = np.polyfit(x[fly], y[fly], 2)
    roots = np.roots([a, b, c - TABLE_TOP - r]).real
    leave = roots[(roots > 0.4) & (roots < 0.8)].max()
    assert abs(leave - TABLE_EDGE_X) < 0.01, f"left the table at x = {leave:.4f}"
    assert abs(y[-1] - r) < 0.002  # on the floor in the end


def test_object_placed_on_the_table_neither_sinks_nor_bobs(plate, ref_png, tmp_path):
    for proxy in ("sphere", "box"):
        track, pos = _insert(plate, ref_png, tmp_path / proxy, (0.2, TABLE_TOP, 0.1), proxy, 0.3)
        assert np.abs(track[:, 1] - TABLE_TOP - 0.15).max() < 0.001, proxy
        assert np.linalg.norm(np.diff(pos, axis=0), axis=1).max() < 0.001, proxy


@pytest.mark.parametrize("effect,count", [("debris", 200), ("sparks", 2500)])
def test_particles_never_go_below_the_ground_even_where_it_is_hidden(plate, tmp_path, effect, count):
    frames = plate.frames[:20]
    ctx = PlateContext(frames, plate.camera, depth=plate.depth, width=W, height=H)
    anchor = Anchor(np.array([1.2, 0.0, 0.95]), UP, UP, 1.0)  # on the ground the occluder hides
    params = {"count": count, "emit_frames": 3, "substeps": 3}
    spec = ElementSpec("e", effect, seed=3, params=params)
    cache = SimCache(tmp_path / effect)
    particles.simulate(spec, ctx, anchor, cache)
    lowest, landed_hidden = np.inf, 0
    mats = np.stack([ctx.camera.transform(f) for f in frames])
    for f in frames:
        c = cache.read(f)
        for k in range(c["track"].shape[0]):
            p = c["track"][k][c["track_alive"][k]].astype(np.float64)
            lowest = min(lowest, float(p[:, 1].min(initial=np.inf)))
        settled = c["pos"][c["alive"] & (c["pos"][:, 1] < 0.03)].astype(np.float64)
        landed_hidden += int(_hidden_everywhere(settled * [1, 0, 1], mats[::6]).sum())
    assert lowest > -0.001, f"{effect}: a particle at y = {lowest:.4f} m"
    assert landed_hidden > 10  # they did come down on the ground the plate never shows


def test_snow_settles_on_the_table_top_and_the_ground(plate, tmp_path):
    frames = plate.frames[:20]
    ctx = PlateContext(frames, plate.camera, depth=plate.depth, width=W, height=H)
    anchor = Anchor(np.array([0.0, 0.0, 0.0]), UP, UP, 1.0)
    spec = ElementSpec("e", "snow", seed=2, params={"count": 3000})
    cache = SimCache(tmp_path / "snow")
    particles.simulate(spec, ctx, anchor, cache)
    last = cache.read(frames[-1])
    rest = last["alive"] & last["asleep"]
    p, r = last["pos"][rest].astype(np.float64), 0.5 * last["size_m"][rest]
    assert p[:, 1].min() > -0.001
    over = (np.abs(p[:, 0]) < 0.58) & (p[:, 2] > -0.32) & (p[:, 2] < 0.38)  # over the top, clear of its edges
    on_top = over & (np.abs(p[:, 1] - r - TABLE_TOP) < 0.002)
    under = over & (np.abs(p[:, 1] - r) < 0.002)  # pre-born below the top's height: on the floor under it
    assert on_top.sum() > 5 and (~over).sum() > 5
    assert np.all(on_top | under | ~over)  # nothing rests sunk into the top or hovering over it
    assert np.abs(p[~over, 1] - r[~over]).min() < 0.002  # others lie on the ground
    # rest means still: the settled flakes did not move over the last frames
    before = cache.read(frames[-4])
    both = rest & before["asleep"]
    assert both.sum() > 5
    assert np.abs(last["pos"][both] - before["pos"][both]).max() == 0.0
