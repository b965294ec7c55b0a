"""What a rigid body is made of: the mass, centre of mass and inertia tensor of a closed triangle mesh
(uniform density, by the divergence theorem), and the convex-hull vertices it collides with.

The mass properties sum signed tetrahedra from the origin to each face (Mirtich / Eberly): exact for a
closed, outward-oriented mesh, whatever its shape. An open mesh has no inside, so its convex hull
stands in for it (said in the log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["MassProperties", "mass_properties", "hull_vertices", "inside_support", "DENSITY_KG_M3"]

#: Uniform density of every body. Gravity and contact do not depend on it (only on the mass
#: distribution), it only sets the units of the impulses and energies.
DENSITY_KG_M3 = 500.0


@dataclass(frozen=True)
class MassProperties:
    """mass (kg), volume (m^3), centre of mass (3,) and inertia tensor (3, 3) about it (kg m^2), in the
    mesh's own coordinates."""

    mass: float
    volume: float
    centre: np.ndarray
    inertia: np.ndarray


def mass_properties(verts: np.ndarray, faces: np.ndarray, *, density: float = DENSITY_KG_M3) -> MassProperties:
    """Mass properties of the solid bounded by the closed, counter-clockwise (seen from outside) mesh
    ``verts`` (N, 3) metres / ``faces`` (M, 3): each face and the origin span a tetrahedron of signed
    volume ``a . (b x c) / 6``, its second moment ``V / 20 (aa' + bb' + cc' + ss')`` with ``s = a + b + c``."""
    v = np.asarray(verts, np.float64)
    tri = v[np.asarray(faces, np.int64)]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    vol = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0
    volume = float(vol.sum())
    if not volume > 1e-15:
        raise ValueError(f"the mesh encloses no volume ({volume:.3g} m^3): not closed or inside out")
    s = a + b + c
    centre = (vol[:, None] * s).sum(axis=0) / (4.0 * volume)
    outer = (np.einsum("ni,nj->nij", a, a) + np.einsum("ni,nj->nij", b, b) + np.einsum("ni,nj->nij", c, c)
             + np.einsum("ni,nj->nij", s, s))
    second = (vol[:, None, None] * outer).sum(axis=0) / 20.0  # integral of x x' over the solid
    second -= volume * np.outer(centre, centre)  # about the centre of mass
    inertia = (np.trace(second) * np.eye(3) - second) * density
    return MassProperties(density * volume, volume, centre, 0.5 * (inertia + inertia.T))


def hull_vertices(verts: np.ndarray) -> np.ndarray:
    """(K, 3) the vertices of the convex hull of ``verts`` (N, 3): a rigid body touches a support only
    with these (a flat support never meets a concave part first)."""
    from scipy.spatial import ConvexHull, QhullError

    v = np.asarray(verts, np.float64)
    try:
        return v[ConvexHull(v).vertices]
    except QhullError:  # flat or degenerate: every vertex is on the "hull"
        return np.unique(v, axis=0)


def inside_support(point: np.ndarray, contacts: np.ndarray, tol: float) -> bool:
    """Whether the 2D ``point`` (2,) lies within ``tol`` of the convex hull of the 2D ``contacts``
    (K, 2): a body whose centre of mass is over its contact patch can stand still there."""
    c = np.asarray(contacts, np.float64)
    p = np.asarray(point, np.float64)
    if len(c) == 0:
        return False
    hull = _hull_2d(c)
    if len(hull) == 1:
        return bool(np.linalg.norm(p - hull[0]) <= tol)
    if len(hull) == 2:
        return _segment_distance(p, hull[0], hull[1]) <= tol
    inside = True
    for i in range(len(hull)):  # counter-clockwise: inside is left of every edge
        a, b = hull[i], hull[(i + 1) % len(hull)]
        e = b - a
        if e[0] * (p[1] - a[1]) - e[1] * (p[0] - a[0]) < 0:
            inside = False
            break
    if inside:
        return True
    return min(_segment_distance(p, hull[i], hull[(i + 1) % len(hull)]) for i in range(len(hull))) <= tol


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    e = b - a
    t = float(np.clip((p - a) @ e / max(float(e @ e), 1e-300), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * e)))


def _hull_2d(pts: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull of (K, 2) points (Andrew's monotone chain), collinear points dropped."""
    p = np.unique(np.round(pts, 9), axis=0)
    if len(p) <= 2:
        return p

    def cross(o, a, b) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for q in p:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    upper: list = []
    for q in p[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.array(lower[:-1] + upper[:-1])
