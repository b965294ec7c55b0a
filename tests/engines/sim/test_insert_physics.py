"""The insert's physics on its real shape (``collider: hull``), on a ray-cast plate with known depth
(a floor at y = 0 and a table top at y = 0.8), against closed-form truth: a tall can (height 3x its
diameter) tips over once friction beats its base (mu > r / h_com = 1/3) and lies on its side at its
radius, slides without tipping below that, stands still when left alone; a cube dropped tilted lands
flat on a face at half its edge; the energy never grows and nothing goes below the support."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.engines.base import ElementSpec, PlateContext
from gvfx.engines.sim import insert
from gvfx.engines.sim.common import Anchor, SimCache, resolved_params
from gvfx.engines.sim.insert3d.element import orientation
from gvfx.errors import InputError
from gvfx.surface import Plane, raycast_depth

UP = np.array([0.0, 1.0, 0.0])
G = 9.81
TABLE = ((-0.6, 0.0, -0.5), (0.6, 0.8, 0.5))
CAN_H, CAN_R = 0.30, 0.05  # the reference below: 32 x 96 pixels of can, size_m 0.30
CUBE = 0.2


@pytest.fixture(autouse=True)
def _proxy_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GVFX_PROXIES", str(tmp_path / "proxies"))


def _plate(frames: list[int]) -> PlateContext:
    w, h = 160, 90
    cam = Camera(30.0, 36.0, w, h)
    m = look_at(np.array([0.3, 1.6, 3.8]), np.array([0.0, 0.4, 0.0]))
    z = raycast_depth(cam, m, planes=(Plane(UP, 0.0),), boxes=(TABLE,))
    return PlateContext(frames, CameraTrack.static(cam, frames, m), depth=lambda f: z, width=w, height=h)


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    img = np.zeros((120, 60, 3), np.uint8)
    img[:] = (40, 200, 60)
    img[12:108, 14:46] = (220, 60, 40)  # the can: 32 px wide, 96 px tall, on a keyed green background
    Image.fromarray(img).save(d / "can.png")
    v = [(x, y, z) for x in (-0.5, 0.5) for y in (0.0, 1.0) for z in (-0.5, 0.5)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    (d / "cube.obj").write_text("".join("v %g %g %g\n" % p for p in v)
                                + "".join("f %d %d %d %d\n" % tuple(i + 1 for i in q) for q in quads))
    return {"can": str(d / "can.png"), "cube": str(d / "cube.obj")}


def _run(tmp, ref, size, point, params, frames):
    ctx = _plate(frames)
    anchor = Anchor(np.asarray(point, np.float64), UP, UP, size)
    spec = ElementSpec("obj", "insert", reference=ref, size_m=size, shutter_frames=0.0, params=params)
    cache = SimCache(tmp / "cache")
    insert.simulate(spec, ctx, anchor, cache)
    place = orientation(spec, ctx, anchor, resolved_params(insert.EFFECTS["insert"], params), frames[0])
    states = [cache.read(f) for f in frames]
    return spec, ctx, anchor, cache, place, states


def _world(points_obj: np.ndarray, s: dict, place: np.ndarray, k: int | None = None) -> np.ndarray:
    """Object-space points in the world at a cached state (sub-step ``k``, or the frame's snapshot)."""
    rot = (s["rot_track"][0 if k is None else k]) @ place
    pos = s["pos"] if k is None else s["track"][k, 0]
    return (np.asarray(points_obj) - s["centre_local"]) @ rot.T + pos


def _can_axis(s: dict, place: np.ndarray) -> np.ndarray:
    return s["rot_track"][0] @ place @ UP


def _rims(n: int = 64) -> np.ndarray:
    a = 2 * np.pi * np.arange(n) / n
    ring = np.stack([CAN_R * np.sin(a), np.zeros(n), CAN_R * np.cos(a)], 1)
    return np.concatenate([ring, ring + [0, CAN_H, 0]])


def _can_energy(s: dict, place: np.ndarray) -> float:
    """Energy per kg of a solid cylinder (closed form inertia) at a cached frame."""
    ax = _can_axis(s, place)
    w = s["omega"].astype(np.float64)
    wa = w @ ax
    rot_e = 0.5 * (CAN_R ** 2 / 2 * wa * wa + (3 * CAN_R ** 2 + CAN_H ** 2) / 12 * (w @ w - wa * wa))
    return 0.5 * float(s["vel"] @ s["vel"]) + rot_e + G * float(s["pos"][1])


@pytest.fixture(scope="module")
def tipped(refs, tmp_path_factory):
    frames = list(range(1, 49))
    return _run(tmp_path_factory.mktemp("tip"), refs["can"], CAN_H, (0.0, 0.0, 1.2),
                {"velocity_mps": (1.5, 0.0, 0.0), "friction": 0.8, "restitution": 0.3}, frames)


def test_a_tall_can_pushed_with_grip_tips_over_and_lies_on_its_side(tipped):
    spec, _, _, _, place, states = tipped
    assert insert.metadata(spec)["gvfx:insert:collider"] == "hull"
    end = states[-1]
    assert bool(end["asleep"])
    tilt = np.degrees(np.arcsin(min(abs(_can_axis(end, place)[1]), 1.0)))
    assert tilt < 10.0  # the axis lies within 10 degrees of horizontal
    assert abs(float(end["pos"][1]) - CAN_R) < 0.005  # its centre rests at its radius
    assert abs(float(end["pos"][0])) > CAN_H / 2 - 0.02  # it fell the way it was pushed


def test_energy_never_grows_and_nothing_goes_below_the_floor(tipped):
    _, _, _, _, place, states = tipped
    e = np.array([_can_energy(s, place) for s in states])
    assert np.all(np.diff(e) <= G * 0.0005), np.diff(e).max()  # never more than half a millimetre's lift
    low = min(float(_world(_rims(), s, place, k)[:, 1].min()) for s in states for k in range(len(s["track"])))
    assert low > -0.001


def test_without_grip_the_can_slides_v2_over_2_mu_g_upright(refs, tmp_path):
    mu, v0 = 0.2, 1.5  # below 1/3 the base slips before the can can tip
    *_, place, states = _run(tmp_path, refs["can"], CAN_H, (0.0, 0.0, 1.2),
                             {"velocity_mps": (v0, 0.0, 0.0), "friction": mu}, list(range(1, 37)))
    x = np.array([s["pos"][0] for s in states])
    assert x[-1] == pytest.approx(v0 * v0 / (2 * mu * G), rel=0.03)
    tilts = [np.degrees(np.arccos(min(float(_can_axis(s, place)[1]), 1.0))) for s in states]
    assert max(tilts) < 8.0 and tilts[-1] < 0.5  # it rocks a little as it stops, and ends upright


def test_a_can_on_its_side_rolls_without_slipping_at_two_thirds_of_its_push(refs, tmp_path):
    """A solid cylinder pushed across its axis slips until v = 2/3 v0 (I = m r^2 / 2), then rolls with
    v = omega r, slowed by rolling resistance: a = 0.2 mu g / (1 + 1/2) (docs/insert.md)."""
    mu, fps = 0.3, 24.0
    *_, place, states = _run(tmp_path, refs["can"], CAN_H, (0.0, 0.0, 1.2),
                             {"tilt_deg": (90.0, 0.0, 0.0), "velocity_mps": (1.0, 0.0, 0.0), "friction": mu},
                             list(range(1, 31)))
    axis = _can_axis(states[0], place)
    assert abs(axis[1]) < 0.01  # lying
    across = np.cross(UP, axis)
    across /= np.linalg.norm(across)
    v0 = float(np.array([1.0, 0.0, 0.0]) @ across)
    v = np.array([float(s["vel"] @ across) for s in states])
    roll = np.array([abs(float(s["omega"] @ _can_axis(s, place))) * CAN_R for s in states])
    a = 0.2 * mu * G / 1.5
    t_slip = v0 / (3 * mu * G)  # friction mu g decelerates it, and spins it up at 2 mu g / r
    for f in (6, 12, 24):
        t = (f - 1) / fps
        assert abs(v[f - 1] - (2 / 3 * v0 - a * (t - t_slip))) < 0.03 * v0, (f, v[f - 1])
        assert abs(roll[f - 1] - abs(v[f - 1])) < 0.02 * v0  # rolling, not slipping
    assert max(abs(float(s["pos"][1]) - CAN_R) for s in states) < 0.002


def test_a_can_left_alone_stays_upright_and_still(refs, tmp_path):
    *_, place, states = _run(tmp_path, refs["can"], CAN_H, (0.1, 0.0, 1.2), {}, list(range(1, 25)))
    pos = np.array([s["pos"] for s in states], np.float64)
    assert np.linalg.norm(np.diff(pos, axis=0), axis=1).max() < 0.001  # < 1 mm a frame, every frame
    assert np.abs(pos[:, 1] - CAN_H / 2).max() < 0.001
    assert max(np.degrees(np.arccos(min(float(_can_axis(s, place)[1]), 1.0))) for s in states) < 0.5


def test_a_tilted_cube_dropped_on_the_table_lands_flat_on_a_face(refs, tmp_path):
    frames = list(range(1, 49))
    spec, ctx, anchor, cache, place, states = _run(tmp_path, refs["cube"], CUBE, (0.0, 1.05, 0.0),
                                                   {"tilt_deg": (25.0, 0.0, 35.0), "restitution": 0.4}, frames)
    end = states[-1]
    rot = end["rot_track"][0] @ place
    face_tilt = np.degrees(np.arccos(np.clip(np.abs(rot.T @ UP).max(), 0.0, 1.0)))
    assert bool(end["asleep"]) and face_tilt < 3.0
    assert abs(float(end["pos"][1]) - (TABLE[1][1] + CUBE / 2)) < 0.005  # on the ray-cast table top
    corners = np.array([(x, y, z) for x in (-0.1, 0.1) for y in (0.0, 0.2) for z in (-0.1, 0.1)])
    low = min(float(_world(corners, s, place, k)[:, 1].min()) for s in states for k in range(len(s["track"])))
    assert low > TABLE[1][1] - 0.001
    # energy per kg: the cube's inertia is isotropic, m a^2 / 6
    e = np.array([0.5 * float(s["vel"] @ s["vel"]) + CUBE ** 2 / 12 * float(s["omega"] @ s["omega"])
                  + G * float(s["pos"][1]) for s in states])
    assert np.all(np.diff(e) <= G * 0.0005), np.diff(e).max()
    assert e[0] - e[-1] > G * 0.15  # it fell a quarter of a metre onto the table, and came to rest


def test_the_render_puts_the_proxy_where_the_body_is(tipped):
    spec, ctx, anchor, cache, _, _ = tipped
    fr = insert.render(spec, ctx, anchor, 48, cache)
    a = fr.rgba[..., 3] > 0.5
    assert a.sum() > 30
    y = fr.extra["P"][..., 1][a]  # world positions of the rendered surface: a can lying at y 0..2r
    assert y.min() > -0.003 and y.max() < 2 * CAN_R + 0.005 and y.max() > 1.5 * CAN_R


def test_a_hull_collider_needs_a_3d_proxy(refs, tmp_path):
    spec = ElementSpec("obj", "insert", reference=refs["can"], size_m=0.3,
                       params={"proxy": "card", "collider": "hull"})
    with pytest.raises(InputError, match="collider: hull needs a 3D proxy"):
        insert.validate(spec)
