"""``inflate``: a closed, rounded volume grown from the silhouette, for organic or irregular objects.

On a grid over the matte (``cells`` across its longer side), every vertex inside the matte is pushed
out of the image plane by a round profile of its distance to the silhouette edge, ``d``:
``z = +-half * sqrt(1 - (1 - min(d / R, 1))**2)`` with ``R`` the matte's inradius and ``half`` half the
thickness — a circular section for a round matte. Front and back sheets are joined along the
silhouette by a wall, so the volume is closed. Texture: the reference projected on the front; the back
shows the same colours at the same place (a mirror image seen from behind).

Limits (docs/insert.md): the depth profile follows the silhouette only, so a thin part (a limb, a
handle) is as thin in depth as it is wide, holes inside the matte stay holes, and concave shapes seen
side-on are filled in.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gvfx.engines.sim.insert3d.matte import OPAQUE, ObjectMatte
from gvfx.engines.sim.insert3d.proxy import Proxy, vertex_normals

__all__ = ["build_inflate"]


def build_inflate(m: ObjectMatte, *, thickness: float = 0.5, cells: int = 80) -> Proxy:
    """A closed inflated volume of height 1; ``thickness`` is the depth at the thickest point as a
    fraction of the object's width."""
    h, w = m.alpha.shape
    inside_px = m.alpha > OPAQUE
    dist = ndimage.distance_transform_edt(np.pad(inside_px, 1))[1:-1, 1:-1]
    step = max(h, w) / float(cells)
    ny, nx = int(np.ceil(h / step)) + 1, int(np.ceil(w / step)) + 1
    ys, xs = np.linspace(0.0, h, ny), np.linspace(0.0, w, nx)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    coords = [np.clip(gy - 0.5, 0, h - 1), np.clip(gx - 0.5, 0, w - 1)]
    a = ndimage.map_coordinates(m.alpha, coords, order=1, mode="nearest")
    d = ndimage.map_coordinates(dist, coords, order=1, mode="nearest")
    inside = a > OPAQUE
    r_in = max(float(dist.max()), 1e-6)
    half = 0.5 * float(thickness) * w
    prof = np.sqrt(np.clip(1.0 - (1.0 - np.minimum(d / r_in, 1.0)) ** 2, 0.0, 1.0))
    zf = half * prof  # pixels
    vid = -np.ones((ny, nx), np.int64)
    vid[inside] = np.arange(int(inside.sum()))
    n = int(inside.sum())
    s = 1.0 / h
    px, py = gx[inside], gy[inside]
    front = np.stack([(px - m.axis_px) * s, (h - py) * s, zf[inside] * s], -1)
    back = front * np.array([1.0, 1.0, -1.0])
    # grid triangles whose three corners are inside; counter-clockwise seen from +Z (x right, y up)
    tl, tr = vid[:-1, :-1], vid[:-1, 1:]
    bl, br = vid[1:, :-1], vid[1:, 1:]
    tris = np.concatenate([np.stack([bl, br, tr], -1).reshape(-1, 3), np.stack([bl, tr, tl], -1).reshape(-1, 3)])
    tris = tris[(tris >= 0).all(axis=1)]
    f_front = tris
    f_back = tris[:, [0, 2, 1]] + n
    # wall along the boundary edges (edges used by one front triangle only)
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    key = np.sort(e, axis=1)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    border = e[cnt[inv.ravel()] == 1]
    a0, a1 = border[:, 0], border[:, 1]
    # front edge a0 -> a1 runs counter-clockwise around the front; the wall faces outward
    wall = np.concatenate([np.stack([a1, a0, a0 + n], -1), np.stack([a1, a0 + n, a1 + n], -1)])
    verts = np.concatenate([front, back]).astype(np.float64)
    faces = np.concatenate([f_front, f_back, wall]).astype(np.int32)
    uv_v = np.stack([px / (2 * w), py / h], -1)
    uv_v = np.concatenate([uv_v, uv_v]).astype(np.float32)
    tex = np.concatenate([m.rgb, m.rgb[:, ::-1]], axis=1)
    return Proxy("inflate", verts, faces, uv_v[faces], tex, vertex_normals(verts, faces))
