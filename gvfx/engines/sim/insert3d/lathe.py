"""``lathe``: a surface of revolution from the silhouette (cans, bottles, cups, vases, lamps).

Each matte row gives a radius (half the row's alpha sum: sub-pixel); rings of ``segments`` vertices
turn that profile about the object's axis, with flat caps. Texture: the reference projected onto the
half that faced the reference camera (azimuth -90..90 degrees); the unseen half completed by
extending the silhouette-edge colours of each row around the back (a blend from the right edge's
colour to the left edge's), and the caps by the top/bottom rows' colours seen from above/below.
"""

from __future__ import annotations

import numpy as np

from gvfx.engines.sim.insert3d.matte import ObjectMatte
from gvfx.engines.sim.insert3d.proxy import Proxy, vertex_normals

__all__ = ["build_lathe"]

EDGE_INSET = 0.92  # edge colours are read this far out from the axis (fraction of the radius)


def _profile(m: ObjectMatte, n_rings: int) -> tuple[np.ndarray, np.ndarray]:
    """Ring heights (0..1 of the object's height, base first) and radii in pixels."""
    r_row = 0.5 * m.alpha.sum(axis=1)
    h = m.height_px
    t = np.linspace(0.0, 1.0, n_rings)
    rows = (1.0 - t) * h - 0.5  # image row (pixel centres) of each ring, base at the bottom row
    r = np.interp(np.clip(rows, 0, h - 1), np.arange(h), r_row)
    return t, np.maximum(r, 1e-3)


def build_lathe(m: ObjectMatte, *, segments: int = 64, max_rings: int = 96) -> Proxy:
    """A closed surface of revolution of height 1 (scale it with :meth:`Proxy.scaled`)."""
    segments = max(8, int(segments) // 4 * 4)
    h, w = m.alpha.shape
    n_rings = int(min(max_rings, max(8, h)))
    t, r_px = _profile(m, n_rings)
    s = 1.0 / h  # pixels -> object units (height 1)
    phi = 2 * np.pi * np.arange(segments) / segments  # 0 = front (+Z), pi/2 = right (+X)
    sin, cos = np.sin(phi), np.cos(phi)
    # side: ring j, segment i -> vertex j * segments + i
    side = np.stack([(r_px[:, None] * s) * sin[None], np.repeat(t[:, None], segments, 1),
                     (r_px[:, None] * s) * cos[None]], -1).reshape(-1, 3)
    faces, uvs = [], []
    atlas_w = 2 * w
    rows_img = (1.0 - t) * h  # v of each ring in the crop (pixel units)
    for i in range(segments):
        i2 = (i + 1) % segments
        mid = phi[i] + np.pi / segments
        front = np.cos(mid) > 0
        j = np.arange(n_rings - 1)
        a, b, c, d = j * segments + i, j * segments + i2, (j + 1) * segments + i, (j + 1) * segments + i2

        def uv(jv: np.ndarray, ang: float, front: bool = front) -> np.ndarray:
            v = rows_img[jv] / h
            if front:
                x = m.axis_px + r_px[jv] * np.sin(ang)
                u = np.clip(x, 0, w) / atlas_w
            else:
                a_ = np.mod(ang, 2 * np.pi)  # pi/2 (right edge) .. 3pi/2 (left edge)
                tt = np.clip((a_ - np.pi / 2) / np.pi, 0.0, 1.0)
                u = np.full_like(v, (w + tt * w) / atlas_w)
            return np.stack([u, v], -1)
        ang2 = phi[i2] if i2 != 0 else 2 * np.pi
        ua, ub, uc, ud = uv(j, phi[i]), uv(j, ang2), uv(j + 1, phi[i]), uv(j + 1, ang2)
        # counter-clockwise seen from outside: (a, b, d) and (a, d, c)
        faces += [np.stack([a, b, d], -1), np.stack([a, d, c], -1)]
        uvs += [np.stack([ua, ub, ud], 1), np.stack([ua, ud, uc], 1)]
    faces_side = np.concatenate(faces)
    uv_side = np.concatenate(uvs)
    verts = [side]
    all_faces = [faces_side]
    all_uv = [uv_side]
    base = len(side)
    for top in (False, True):
        j = n_rings - 1 if top else 0
        ring = side[j * segments:(j + 1) * segments].copy()
        centre = np.array([[0.0, t[j], 0.0]])
        vv = np.concatenate([centre, ring])
        idx = np.arange(segments)
        nxt = (idx + 1) % segments
        if top:  # counter-clockwise seen from above (+Y)
            f = np.stack([np.zeros(segments, int), idx + 1, nxt + 1], -1) + base
            f = f[:, [0, 2, 1]] if _ccw_up(vv, f - base) < 0 else f
        else:
            f = np.stack([np.zeros(segments, int), nxt + 1, idx + 1], -1) + base
            f = f[:, [0, 2, 1]] if _ccw_up(vv, f - base) > 0 else f
        row = (0.02 * h) if top else (h - 0.02 * h)
        cu = (m.axis_px + vv[:, 0] / s) / atlas_w
        cv = np.full(len(vv), row / h)
        cap_uv = np.stack([cu, cv], -1)[f - base]
        verts.append(vv)
        all_faces.append(f)
        all_uv.append(cap_uv)
        base += len(vv)
    v = np.concatenate(verts).astype(np.float64)
    fcs = np.concatenate(all_faces).astype(np.int32)
    tex = np.concatenate([m.rgb, _back_texture(m, w)], axis=1)
    return Proxy("lathe", v, fcs, np.concatenate(all_uv).astype(np.float32), tex, vertex_normals(v, fcs))


def _ccw_up(vv: np.ndarray, f: np.ndarray) -> float:
    """Sign of the first cap face's normal along +Y."""
    p = vv[f[0]]
    return float(np.cross(p[1] - p[0], p[2] - p[0])[1])


def _back_texture(m: ObjectMatte, width: int) -> np.ndarray:
    """(h, width, 3): per row, a blend from the right silhouette edge's colour to the left edge's."""
    h = m.height_px
    r_row = 0.5 * m.alpha.sum(axis=1)
    rows = np.arange(h)
    xr = np.clip(m.axis_px + EDGE_INSET * r_row, 0, m.width_px - 1).astype(np.intp)
    xl = np.clip(m.axis_px - EDGE_INSET * r_row, 0, m.width_px - 1).astype(np.intp)
    right, left = m.rgb[rows, xr], m.rgb[rows, xl]
    tt = np.linspace(0.0, 1.0, width)[None, :, None]
    return ((1 - tt) * right[:, None] + tt * left[:, None]).astype(np.float32)
