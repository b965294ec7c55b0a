"""A rigid body on the scene's support: gravity, contact at the lowest convex-hull vertices, Coulomb
friction, restitution, rolling resistance and a resting state.

State: centre of mass ``x``, rotation ``rot`` (body to world), velocity ``v`` and angular momentum
``L`` (world; the angular velocity is ``I_world^-1 L``, so a tumbling body keeps its momentum in
flight). Each sub-step the hull vertices are placed in the world and the support under each is read
from the :class:`~gvfx.engines.sim.contact.SupportField` (the ground plane and the plate's up-facing
surfaces); those closer than a margin, or about to reach it within the step, become contacts
(speculative contacts: a contact ``sep`` above the support may still close at ``sep / dt``, so
nothing passes through and a resting body does not buzz). The contact impulses are solved together
by projected Gauss-Seidel on the contacts' Delassus matrix: normal impulses >= 0 that stop the
approach (or reverse it by ``restitution`` in an impact), friction impulses within ``friction``
times the normal impulse. Any penetration left is removed by moving the body out along up (no
velocity is added, so this never adds energy but the potential of that fraction of a millimetre).
A body that is slow, touching and has its centre of mass over its contact patch for ``SLEEP_STEPS``
sub-steps is put to rest and stays exactly still.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gvfx.engines.sim.contact import SupportField
from gvfx.engines.sim.rigid_body import inside_support

__all__ = ["RigidBody", "RigidState", "step", "rotation_about", "SLEEP_STEPS", "GRAVITY_MPS2"]

GRAVITY_MPS2 = 9.81
#: Consecutive slow, supported sub-steps before a body is put to rest.
SLEEP_STEPS = 6
#: Hull vertices closer than this to their support are contacts even when not approaching.
_MARGIN_M = 0.002
#: A contact this close (or closer) counts as touching, for the resting test.
_TOUCH_M = 0.001
#: Supports higher than a vertex by more than this are not under it (a layer it passed beneath).
_CEILING_M = 0.003
#: Each hull vertex stands on the highest support within this many support cells of it (half a square).
_FOOTPRINT_CELLS = 1.5
#: Most contacts solved per sub-step (the deepest first, then spread over the patch).
_MAX_CONTACTS = 8
_ITERATIONS = 12
#: An approach faster than this many ``g * dt`` is an impact (bounces); slower is resting contact.
_BOUNCE_MIN_G_DT = 4.0
#: Rolling resistance as a fraction of ``friction`` (rolling loses far less than sliding).
_ROLLING = 0.2


@dataclass(frozen=True)
class RigidBody:
    """A body's shape and mass: ``hull`` (K, 3) convex-hull vertices relative to the centre of mass in
    the body's frame (world-aligned at rotation identity), ``mass`` (kg), ``inertia`` (3, 3) about the
    centre of mass in that frame."""

    hull: np.ndarray
    mass: float
    inertia: np.ndarray
    inv_inertia: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inv_inertia", np.linalg.inv(self.inertia))

    @property
    def reach_m(self) -> float:
        """The farthest hull vertex from the centre of mass."""
        return float(np.linalg.norm(self.hull, axis=1).max())


@dataclass
class RigidState:
    """A body's motion: centre ``x`` (3,), rotation ``rot`` (3, 3) body to world, velocity ``v`` (3,),
    angular momentum ``L`` (3,), ``calm`` slow-supported sub-steps so far, ``asleep`` at rest; ``pressed``
    and ``lever`` feed the next sub-step's rolling resistance."""

    x: np.ndarray
    rot: np.ndarray
    v: np.ndarray
    L: np.ndarray
    calm: int = 0
    asleep: bool = False
    pressed: float = 0.0  # the last sub-step's total normal impulse (N s)
    lever: float = 1.0  # and the height of the centre of mass over those contacts (m)
    before: np.ndarray | None = None  # the hull vertices' heights a sub-step ago

    def omega(self, body: RigidBody) -> np.ndarray:
        """(3,) world angular velocity."""
        return self.rot @ (body.inv_inertia @ (self.rot.T @ self.L))


def rotation_about(v: np.ndarray) -> np.ndarray:
    """(3, 3) rotation by the rotation vector ``v`` (axis times angle, radians): Rodrigues."""
    a = float(np.linalg.norm(v))
    if a < 1e-12:
        return np.eye(3)
    k = np.asarray(v, np.float64) / a
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * kx @ kx


def _supports(support: SupportField, pts: np.ndarray, before: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Vertical gap (K,) of each world point above the support under it, and the support's normal (K, 3):
    supports no higher than the point now or ``before`` (its height a sub-step ago), so a surface the
    point was above still holds it however deep the last step pushed it, and one it passed under does not."""
    h = pts @ support.up
    ceiling = h if before is None else np.maximum(h, before)
    half = _FOOTPRINT_CELLS * support.cell_m  # bridges the cells a sparse depth sample leaves empty
    s, nrm = support.support(pts, half, ceiling + _CEILING_M + half, "box")
    return h - (s - half), nrm


def _pick(pts: np.ndarray, sep: np.ndarray, cand: np.ndarray, up: np.ndarray) -> np.ndarray:
    """At most ``_MAX_CONTACTS`` of the candidate vertices: the deepest, then each next the farthest
    (across the support) from those picked, so a face's corners are all kept."""
    if len(cand) <= _MAX_CONTACTS:
        return cand
    flat = pts[cand] - np.outer(pts[cand] @ up, up)
    chosen = [int(np.argmin(sep[cand]))]
    d = np.linalg.norm(flat - flat[chosen[0]], axis=1)
    while len(chosen) < _MAX_CONTACTS:
        k = int(np.argmax(d))
        if d[k] <= 1e-6:
            break
        chosen.append(k)
        d = np.minimum(d, np.linalg.norm(flat - flat[k], axis=1))
    return cand[np.array(chosen)]


def _tangents(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.where(np.abs(n[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 1.0]]))
    t1 = a - np.einsum("ij,ij->i", a, n)[:, None] * n
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    return t1, np.cross(n, t1)


def step(body: RigidBody, st: RigidState, support: SupportField, dt: float, *, restitution: float,
         friction: float, rest_speed_mps: float = 0.015) -> None:
    """Advance ``st`` by ``dt`` seconds in place (nothing happens to a body at rest)."""
    if st.asleep:
        return
    up = support.up
    pts = st.x + body.hull @ st.rot.T
    sep, nrm = _supports(support, pts, st.before)
    deepest = float(sep.min())
    if deepest < 0.0:  # left below its support by the last step: out along up, no velocity added
        st.x = st.x - deepest * up
        pts = pts - deepest * up
        sep = sep - deepest
    st.v = st.v - up * (GRAVITY_MPS2 * dt)
    if st.pressed > 0.0 and friction > 0.0:
        # rolling resistance, before the contacts so they see the motion it leaves: the spin slows by
        # friction * ROLLING * (last normal impulse / m) / lever (the normal force acting that fraction
        # of the lever ahead of the contact, as in the classic rolling-resistance model)
        w = float(np.linalg.norm(st.omega(body)))
        if w > 0.0:
            st.L = st.L * max(0.0, 1.0 - friction * _ROLLING * st.pressed / body.mass / st.lever / w)
    omega = st.omega(body)
    r = pts - st.x
    cos_n = np.clip(nrm @ up, 1e-3, 1.0)
    gap = sep * cos_n  # along the support normal
    vn = np.einsum("ij,ij->i", st.v + np.cross(omega, r), nrm)
    # any vertex that could reach its support within the step: the solve may turn the body towards it
    reach = (float(np.linalg.norm(st.v)) + float(np.linalg.norm(omega)) * body.reach_m) * dt
    cand = np.flatnonzero(gap < _MARGIN_M + np.maximum(-vn * dt, 0.0) + 2.0 * reach)
    st.pressed = 0.0
    if len(cand):
        c = _pick(pts, sep, cand, up)
        lam = _solve(body, st, r[c], nrm[c], gap[c], omega, dt, restitution, friction)
        st.pressed = float(lam[0::3].sum())
        st.lever = max(float(np.median(np.abs(r[cand] @ up))), 0.1 * body.reach_m)
        omega = st.omega(body)
    st.before = pts @ up
    st.x = st.x + st.v * dt
    st.rot = rotation_about(omega * dt) @ st.rot
    u, _, vt = np.linalg.svd(st.rot)
    st.rot = u @ vt
    _settle(body, st, pts, sep, cand, up, omega, rest_speed_mps, max(0.0005, friction * _ROLLING * st.lever))


def _solve(body: RigidBody, st: RigidState, r: np.ndarray, n: np.ndarray, gap: np.ndarray, omega: np.ndarray,
           dt: float, restitution: float, friction: float) -> np.ndarray:
    """Solve and apply the contact impulses (normal, tangent 1, tangent 2 per contact); returns them."""
    k = len(r)
    t1, t2 = _tangents(n)
    dirs = np.stack([n, t1, t2], axis=1).reshape(3 * k, 3)  # rows: contact i's n, t1, t2
    lever = np.cross(np.repeat(r, 3, axis=0), dirs)
    inv_i = st.rot @ body.inv_inertia @ st.rot.T
    a = dirs @ dirs.T / body.mass + lever @ inv_i @ lever.T
    vel = dirs @ st.v + lever @ omega
    vn = vel[0::3]
    impact = (vn < -_BOUNCE_MIN_G_DT * GRAVITY_MPS2 * dt) & (gap + vn * dt <= 0.0)
    target = np.where(impact, -restitution * vn, -np.maximum(gap, 0.0) / dt)
    lam = np.zeros(3 * k)
    diag = np.maximum(np.diag(a), 1e-12)
    for _ in range(_ITERATIONS):
        for i in range(k):
            j = 3 * i
            new = max(lam[j] + (target[i] - vel[j]) / diag[j], 0.0)
            d = new - lam[j]
            if d != 0.0:
                lam[j] = new
                vel += a[:, j] * d
            lim = friction * lam[j]
            for t in (j + 1, j + 2):
                new = min(max(lam[t] - vel[t] / diag[t], -lim), lim)
                d = new - lam[t]
                if d != 0.0:
                    lam[t] = new
                    vel += a[:, t] * d
    st.v = st.v + (lam @ dirs) / body.mass
    st.L = st.L + lam @ lever
    return lam


def _settle(body: RigidBody, st: RigidState, pts: np.ndarray, sep: np.ndarray, cand: np.ndarray,
            up: np.ndarray, omega: np.ndarray, rest_speed_mps: float, hold_m: float) -> None:
    """Count slow sub-steps on a stable support (the centre of mass over the contact patch, or within
    ``hold_m``, what rolling resistance holds); after ``SLEEP_STEPS`` of them the body rests."""
    touching = cand[sep[cand] < _TOUCH_M] if len(cand) else cand
    speed = float(np.linalg.norm(st.v)) + float(np.linalg.norm(omega)) * body.reach_m
    stable = False
    if len(touching) and speed < rest_speed_mps:
        e1 = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 0.0, 1.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(up, e1)
        flat = np.stack([pts[touching] @ e1, pts[touching] @ e2], axis=1)
        com = np.array([st.x @ e1, st.x @ e2])
        stable = inside_support(com, flat, hold_m)
    st.calm = st.calm + 1 if stable else 0
    if st.calm >= SLEEP_STEPS:
        st.asleep = True
        st.v = np.zeros(3)
        st.L = np.zeros(3)
