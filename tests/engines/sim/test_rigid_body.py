"""Mass properties by the divergence theorem and the rigid-body contact solver, against closed-form truth:
a box's and a cylinder's inertia tensors, Coulomb sliding, a resting body that does not buzz."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.engines.sim.contact import MAX_LAYERS, SupportField
from gvfx.engines.sim.rigid import RigidBody, RigidState, rotation_about, step
from gvfx.engines.sim.rigid_body import hull_vertices, inside_support, mass_properties
from gvfx.surface import Plane

UP = np.array([0.0, 1.0, 0.0])


def _box_mesh(size) -> tuple[np.ndarray, np.ndarray]:
    """A closed, outward box of edge lengths ``size`` centred on the origin (12 triangles)."""
    sx, sy, sz = np.asarray(size, np.float64) / 2
    v = np.array([(x, y, z) for x in (-sx, sx) for y in (-sy, sy) for z in (-sz, sz)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return v, np.array(f)


def _cylinder_mesh(r: float, h: float, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A closed n-gon prism along Y, base at y = 0."""
    a = 2 * np.pi * np.arange(n) / n
    ring = np.stack([r * np.cos(a), np.zeros(n), -r * np.sin(a)], 1)
    v = np.concatenate([ring, ring + [0, h, 0], [[0, 0, 0], [0, h, 0]]])
    i, j = np.arange(n), (np.arange(n) + 1) % n
    side = np.concatenate([np.stack([i, j, j + n], 1), np.stack([i, j + n, i + n], 1)])
    caps = np.concatenate([np.stack([np.full(n, 2 * n), j, i], 1), np.stack([np.full(n, 2 * n + 1), i + n, j + n], 1)])
    return v, np.concatenate([side, caps])


def _ground(normal=UP, offset=0.0) -> SupportField:
    return SupportField(UP, Plane(np.asarray(normal, np.float64), offset), np.full((1, 1, MAX_LAYERS), np.nan),
                        (0.0, 0.0), 0.01)


def test_box_inertia_is_m_a2_plus_b2_over_12_also_turned_and_moved():
    size = np.array([0.2, 0.4, 0.6])
    v, f = _box_mesh(size)
    mp = mass_properties(v, f, density=1000.0)
    m = 1000.0 * size.prod()
    assert mp.mass == pytest.approx(m, rel=1e-12) and mp.volume == pytest.approx(size.prod(), rel=1e-12)
    a, b, c = size
    truth = m / 12 * np.diag([b * b + c * c, a * a + c * c, a * a + b * b])
    assert np.allclose(mp.inertia, truth, rtol=1e-10, atol=1e-12)
    # the same box turned and moved: the centre follows, the tensor turns (R I R'), nothing else changes
    rot = rotation_about(np.array([0.3, -0.7, 0.5]))
    moved = mass_properties(v @ rot.T + [1.0, 2.0, -3.0], f, density=1000.0)
    assert np.allclose(moved.centre, [1.0, 2.0, -3.0], atol=1e-12)
    assert np.allclose(moved.inertia, rot @ truth @ rot.T, rtol=1e-9, atol=1e-12)


def test_cylinder_inertia_matches_the_closed_form():
    r, h = 0.05, 0.3
    v, f = _cylinder_mesh(r, h)
    mp = mass_properties(v, f, density=1.0)
    m = np.pi * r * r * h
    assert mp.mass == pytest.approx(m, rel=1e-3)  # a 256-gon has 0.01% less area than its circle
    assert np.allclose(mp.centre, [0.0, h / 2, 0.0], atol=1e-12)
    axial, transverse = m * r * r / 2, m * (3 * r * r + h * h) / 12
    assert np.allclose(np.diag(mp.inertia), [transverse, axial, transverse], rtol=2e-3)
    assert np.abs(mp.inertia - np.diag(np.diag(mp.inertia))).max() < 1e-9 * transverse


def test_an_inside_out_mesh_is_refused():
    v, f = _box_mesh([1, 1, 1])
    with pytest.raises(ValueError, match="no volume"):
        mass_properties(v, f[:, ::-1])


def test_hull_drops_inner_vertices_and_support_polygon():
    v, _ = _box_mesh([1, 1, 1])
    inner = np.random.default_rng(0).uniform(-0.4, 0.4, (50, 3))
    hull = hull_vertices(np.concatenate([v, inner]))
    assert len(hull) == 8 and np.all(np.abs(hull) == 0.5)
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]])
    assert inside_support(np.array([0.5, 0.2]), square, 0.0)
    assert not inside_support(np.array([1.1, 0.5]), square, 0.05)
    assert inside_support(np.array([1.04, 0.5]), square, 0.05)
    assert inside_support(np.array([0.5, 0.0005]), square[:2], 0.001)  # on a line of two contacts


def _cube_body(a: float) -> RigidBody:
    v, f = _box_mesh([a, a, a])
    mp = mass_properties(v, f)
    return RigidBody(hull_vertices(v) - mp.centre, mp.mass, mp.inertia)


def test_a_sliding_cube_stops_after_v2_over_2_mu_g():
    a, v0, mu, g = 0.2, 2.0, 0.25, 9.81
    body = _cube_body(a)
    st = RigidState(np.array([0.0, a / 2 + 1e-4, 0.0]), np.eye(3), np.array([v0, 0.0, 0.0]), np.zeros(3))
    support = _ground()
    dt = 1 / 192
    xs, ys = [], []
    for _ in range(192 * 2):
        step(body, st, support, dt, restitution=0.3, friction=mu)
        xs.append(st.x[0])
        ys.append(st.x[1])
    assert st.asleep
    assert xs[-1] == pytest.approx(v0 * v0 / (2 * mu * g), rel=0.02)
    assert max(abs(y - a / 2) for y in ys) < 5e-4  # slides flat on its face: no tipping, no hop


def test_resting_on_a_slope_with_enough_friction_and_sliding_down_without():
    a = 0.2
    ang = np.radians(15.0)  # tan 15 = 0.27
    n = np.array([-np.sin(ang), np.cos(ang), 0.0])
    rot = rotation_about(np.array([0.0, 0.0, ang]))
    for mu, slides in ((0.5, False), (0.1, True)):
        body = _cube_body(a)
        st = RigidState(n * (a / 2 + 1e-4), rot, np.zeros(3), np.zeros(3))
        support = _ground(n)
        for _ in range(192):
            step(body, st, support, 1 / 192, restitution=0.0, friction=mu)
        moved = np.linalg.norm(st.x - n * (a / 2))
        if slides:  # a = g (sin - mu cos) down the slope: 1.59 m/s^2 -> 0.79 m in 1 s
            assert moved == pytest.approx(0.5 * 9.81 * (np.sin(ang) - mu * np.cos(ang)), rel=0.05)
        else:
            assert moved < 1e-3 and st.asleep
