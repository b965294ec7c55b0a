"""``collider: hull`` (the default for 3D proxies): the insert's rigid body is its proxy's own shape
and mass distribution, simulated by :mod:`gvfx.engines.sim.rigid` on the plate's support.

The body's hull is the convex hull of the scaled proxy, its centre of mass and inertia tensor those
of the proxy's closed mesh at uniform density (an open mesh: of its hull). The cache holds, per
frame, the centre of mass track and the rotation track (``rot_track``: the simulated rotation,
identity at the start frame, applied on top of the object's placement ``orientation``) and, in
``centre_local``, where the centre of mass is in object space, so the renderer and the USD layout
put the object back exactly where the simulation had it.
"""

from __future__ import annotations

import logging

import numpy as np

from gvfx.engines.base import ElementSpec, PlateContext, ProgressFn
from gvfx.engines.sim.common import Anchor, SimCache, sim_frames
from gvfx.engines.sim.contact import SupportField
from gvfx.engines.sim.insert3d.proxy import Proxy
from gvfx.engines.sim.rigid import RigidBody, RigidState, rotation_about, step
from gvfx.engines.sim.rigid_body import hull_vertices, mass_properties

log = logging.getLogger(__name__)

__all__ = ["body_of", "tilt_rotation", "initial_state", "simulate_hull"]


def body_of(proxy: Proxy, orient: np.ndarray) -> tuple[RigidBody, np.ndarray]:
    """The rigid body of the scaled ``proxy`` placed by ``orient`` (3, 3 object to world), and its
    centre of mass in object space (3,)."""
    hull = hull_vertices(proxy.verts)
    try:
        if not proxy.closed:
            raise ValueError("open mesh")
        mp = mass_properties(proxy.verts, proxy.faces)
    except ValueError as exc:
        from scipy.spatial import ConvexHull

        log.info("insert %s proxy: %s, its convex hull gives the mass distribution", proxy.kind, exc)
        h = ConvexHull(proxy.verts)
        faces = h.simplices.copy()
        centre = proxy.verts[h.vertices].mean(axis=0)
        tri = proxy.verts[faces]
        flip = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]),
                         tri.mean(axis=1) - centre) < 0
        faces[flip] = faces[flip][:, ::-1]
        mp = mass_properties(proxy.verts, faces)
    inertia = orient @ mp.inertia @ orient.T
    return RigidBody((hull - mp.centre) @ orient.T, mp.mass, inertia), mp.centre


def tilt_rotation(tilt_deg) -> np.ndarray:
    """(3, 3) object-space rotation of ``tilt_deg`` (x, y, z) degrees: about the object's X, then Y,
    then Z axis."""
    ax, ay, az = np.radians(np.asarray(tilt_deg, np.float64).reshape(3))
    return (rotation_about(np.array([ax, 0.0, 0.0])) @ rotation_about(np.array([0.0, ay, 0.0]))
            @ rotation_about(np.array([0.0, 0.0, az])))


def initial_state(body: RigidBody, anchor: Anchor, orient: np.ndarray, tilt: np.ndarray,
                  velocity: np.ndarray, spin_rad_s: np.ndarray) -> RigidState:
    """The body at rest on (or above) the anchor point: its lowest vertex along the anchor's normal a
    tenth of a millimetre above the point, turned by ``tilt`` (object space) about its centre of mass."""
    rot0 = orient @ tilt @ orient.T  # the tilt, in world axes
    n = np.asarray(anchor.normal, np.float64) / np.linalg.norm(anchor.normal)
    low = float((body.hull @ rot0.T @ n).min())
    x = np.asarray(anchor.point, np.float64) + n * (1e-4 - low)
    inertia_w = rot0 @ body.inertia @ rot0.T
    return RigidState(x, rot0, np.asarray(velocity, np.float64).copy(), inertia_w @ np.asarray(spin_rad_s, np.float64))


def simulate_hull(spec: ElementSpec, ctx: PlateContext, anchor: Anchor, cache: SimCache, p: dict, proxy: Proxy,
                  orient: np.ndarray, support: SupportField, progress: ProgressFn | None = None) -> None:
    """Simulate the proxy's rigid body from the start frame to the plate's end, one cache entry a frame."""
    frames = sim_frames(spec.start_frame, ctx.frames)
    body, centre_local = body_of(proxy, orient)
    st = initial_state(body, anchor, orient, tilt_rotation(p["tilt_deg"]), p["velocity_mps"],
                       np.radians(np.asarray(p["spin_dps"], np.float64)))
    sub = int(p["substeps"])
    dt = 1.0 / (float(ctx.fps) * sub)
    e, mu = float(p["restitution"]), float(p["friction"])
    log.info("insert %s: hull collider, %d hull vertices, %.3g kg, centre of mass %.3f m above the base",
             spec.name, len(body.hull), body.mass, float(centre_local[1]))
    radius = np.float64(0.5 * float(anchor.size_m))
    for i, f in enumerate(frames):
        track = np.empty((sub, 1, 3), np.float32)
        rots = np.empty((sub, 3, 3), np.float64)
        snap = dict(pos=st.x.astype(np.float32), vel=st.v.astype(np.float32),
                    omega=st.omega(body).astype(np.float32), asleep=np.bool_(st.asleep))
        for k in range(sub):
            track[k, 0] = st.x
            rots[k] = st.rot
            step(body, st, support, dt, restitution=e, friction=mu)
        cache.write(f, track=track, track_alive=np.ones((sub, 1), bool), spin_track=np.zeros(sub), rot_track=rots,
                    spin_rad=np.float64(0.0), radius_m=radius, centre_local=centre_local.astype(np.float64),
                    mass_kg=np.float64(body.mass), **snap)
        if progress is not None:
            progress(i + 1, len(frames), f"insert frame {f}")
