"""Scene contact from the supporting surface under an object, not the depth pixel behind its centre.

A ``SupportField`` is a layered height field along world up: the fitted ground plane (everywhere, also
under and behind objects the plate hides it with) plus the up-facing surfaces seen in a few frames of
plate depth (a table top, a box top) and their parts hidden behind what stands on them
(``hidden_support``), each cell holding up to ``MAX_LAYERS`` heights. ``resolve_contact``
moves objects onto the highest support below them under their footprint, bounces, rubs, rolls off
edges where the support really ends, puts slow objects to rest, and never lets anything below the
ground plane. Conventions are those of ``gvfx.camera`` (world metres, depth Z positive metres).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gvfx.camera import Camera
from gvfx.engines.sim.hidden_support import fill_hidden_tops
from gvfx.surface import Plane

log = logging.getLogger(__name__)

__all__ = ["SupportField", "Contact", "resolve_contact", "MAX_LAYERS", "SLEEP_STEPS"]

#: Support layers kept per cell above the ground (highest first).
MAX_LAYERS = 4
#: Consecutive slow, touching sub-steps before an object is put to rest.
SLEEP_STEPS = 3
#: Up-facing surfaces: normal within this angle of world up.
_MAX_SLOPE_DEG = 40.0
#: Most cells along one side of the grid; the cell grows when the raised surfaces span more.
_MAX_CELLS = 1500
#: Slack (metres) below which a layer just above an object still counts as under it.
_STEP_EPS_M = 0.003
#: A normal impact slower than this many ``g * dt`` is resting contact: it does not bounce.
_BOUNCE_MIN_G_DT = 4.0
GRAVITY_MPS2 = 9.81


@dataclass(frozen=True)
class Contact:
    """``resolve_contact``'s answer for N objects: centre (N, 3) and velocity (N, 3) after contact,
    ``touching`` (N,) on a support, ``resting`` (N,) put to rest (velocity zeroed: callers stop
    integrating it), ``normal`` (N, 3) of the support (nan where not touching), ``calm`` (N,) the
    slow-touching sub-step count to pass back in on the next call."""

    pos: np.ndarray
    vel: np.ndarray
    touching: np.ndarray
    resting: np.ndarray
    normal: np.ndarray
    calm: np.ndarray


def _basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane perpendicular to ``up``."""
    a = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = a - (a @ up) * up
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(up, e1)


class SupportField:
    """What holds objects up: ``ground`` (a world plane, or None) and ``layers`` (NA, NB, MAX_LAYERS)
    float32 heights along ``up`` of raised up-facing surfaces (highest first, nan = none) on a grid of
    ``cell_m`` cells whose (0, 0) corner is at ``origin`` (a, b) in the ``(e1, e2)`` horizontal basis."""

    def __init__(self, up: np.ndarray, ground: Plane | None, layers: np.ndarray, origin: tuple[float, float],
                 cell_m: float) -> None:
        self.up = np.asarray(up, np.float64) / np.linalg.norm(up)
        self.e1, self.e2 = _basis(self.up)
        self.ground = ground
        self.layers = np.asarray(layers, np.float32)
        self.origin = (float(origin[0]), float(origin[1]))
        self.cell_m = float(cell_m)

    # ------------------------------------------------------------------ building

    @classmethod
    def from_depth(cls, views: Sequence[tuple[np.ndarray, Camera, np.ndarray]], up: np.ndarray,
                   ground: Plane | None, *, cell_m: float = 0.01, max_points: int = 400_000,
                   min_points: int = 2) -> "SupportField":
        """The field from plate views ``(depth Z (H, W), camera, camera-to-world 4x4)`` (a few frames:
        what one hides another may show). Cells with fewer than ``min_points`` samples of a surface
        do not hold it (flying pixels at silhouettes)."""
        up = np.asarray(up, np.float64) / np.linalg.norm(up)
        e1, e2 = _basis(up)
        merge_m = max(0.03, 2.0 * cell_m)
        pts = [p for v in views if len(p := _raised_points(*v, up, ground, cell_m, merge_m, max_points))]
        if not pts:
            log.info("support: no raised surface in the depth; the ground plane alone holds things")
            return cls(up, ground, np.full((1, 1, MAX_LAYERS), np.nan, np.float32), (0.0, 0.0), cell_m)
        p = np.concatenate(pts)
        a, b, h = p @ e1, p @ e2, p @ up
        lo = (float(a.min()) - 2 * cell_m, float(b.min()) - 2 * cell_m)
        span = max(float(a.max()) - lo[0], float(b.max()) - lo[1]) + 2 * cell_m
        cell = max(cell_m, span / _MAX_CELLS)
        if cell > cell_m:
            log.info("support: raised surfaces span %.1f m, cells of %.3f m", span, cell)
        na = int(np.ceil((float(a.max()) - lo[0]) / cell)) + 2
        nb = int(np.ceil((float(b.max()) - lo[1]) / cell)) + 2
        ia = np.floor((a - lo[0]) / cell).astype(np.int64)
        ib = np.floor((b - lo[1]) / cell).astype(np.int64)
        layers = _cluster_layers(ia * nb + ib, h, na * nb, max(0.02, 3.0 * cell), min_points)
        layers, _ = fill_hidden_tops(layers.reshape(na, nb, MAX_LAYERS), lo, cell, up, e1, e2, views)
        field = cls(up, ground, layers, lo, cell)
        log.info("support: %d x %d cells of %.3f m, %d raised cells", na, nb, cell,
                 int(np.isfinite(field.layers[..., 0]).sum()))
        return field

    # ------------------------------------------------------------------ queries

    def ground_height(self, pos: np.ndarray) -> np.ndarray:
        """(N,) height along up of the ground plane under each (N, 3) point (-inf without a ground)."""
        p = np.atleast_2d(np.asarray(pos, np.float64))
        if self.ground is None:
            return np.full(len(p), -np.inf)
        g = self.ground
        horiz = p - (p @ self.up)[:, None] * self.up
        return -(horiz @ g.normal + g.offset) / float(g.normal @ self.up)

    def support(self, pos: np.ndarray, radius: np.ndarray | float, ceiling: np.ndarray, footprint: str = "sphere"
                ) -> tuple[np.ndarray, np.ndarray]:
        """Highest centre height (N,) along up at which each object rests on a support under its
        footprint, among supports no higher than ``ceiling`` (N,) centre heights, and the support
        normal (N, 3). ``footprint``: "sphere" (radius), "box" (half edge, square) or "point" (the
        cell under the centre). The ground plane always counts (-inf without one)."""
        p = np.atleast_2d(np.asarray(pos, np.float64))
        n = len(p)
        r = np.broadcast_to(np.asarray(radius, np.float64), (n,)).copy()
        if self.ground is not None:
            cos_g = float(self.ground.normal @ self.up)
            best = self.ground_height(p) + r / cos_g
            normal = np.broadcast_to(self.ground.normal, (n, 3)).copy()
        else:
            best = np.full(n, -np.inf)
            normal = np.broadcast_to(self.up, (n, 3)).copy()
        c = self.cell_m
        reach = 0 if footprint == "point" else int(np.ceil(float(r.max(initial=0.0)) / c))
        di, dj = np.mgrid[-reach:reach + 1, -reach:reach + 1]
        di, dj = di.ravel(), dj.ravel()
        a = (p @ self.e1 - self.origin[0]) / c
        b = (p @ self.e2 - self.origin[1]) / c
        ia = np.floor(a).astype(np.int64)[:, None] + di[None]
        ib = np.floor(b).astype(np.int64)[:, None] + dj[None]
        na, nb = self.layers.shape[:2]
        inside = (ia >= 0) & (ia < na) & (ib >= 0) & (ib < nb)
        da = (ia + 0.5 - a[:, None]) * c  # from the centre to each cell centre, metres
        db = (ib + 0.5 - b[:, None]) * c
        d = np.hypot(da, db)
        rr = r[:, None]
        if footprint == "sphere":
            inside &= d <= np.maximum(rr, 0.71 * c)
            lift = np.sqrt(np.maximum(rr * rr - d * d, 0.0))
        elif footprint == "box":
            half = np.maximum(rr, 0.5 * c)
            inside &= (np.abs(da) <= half) & (np.abs(db) <= half)
            lift = np.broadcast_to(rr, d.shape)
        else:
            lift = np.broadcast_to(rr, d.shape)
        h = self.layers[np.where(inside, ia, 0), np.where(inside, ib, 0)].astype(np.float64)  # (N, K, L)
        cand = h + lift[..., None]
        with np.errstate(invalid="ignore"):
            ok = inside[..., None] & np.isfinite(cand) & (cand <= np.asarray(ceiling, np.float64)[:, None, None])
        cand = np.where(ok, cand, -np.inf)
        flat = cand.reshape(n, -1)
        k = np.argmax(flat, axis=1)
        top = flat[np.arange(n), k]
        use = top > best
        if use.any():
            best = np.where(use, top, best)
            kk = k[use] // self.layers.shape[2]
            rows = np.flatnonzero(use)
            offset = -(da[rows, kk, None] * self.e1 + db[rows, kk, None] * self.e2)  # contact point -> centre
            offset += lift[rows, kk][:, None] * self.up
            pivot = d[rows, kk] > c  # resting on an edge beside the centre, not a face under it
            nl = np.where(pivot[:, None], offset / np.linalg.norm(offset, axis=1, keepdims=True), self.up)
            normal[rows] = nl if footprint == "sphere" else self.up
        return best, normal


def _raised_points(z: np.ndarray, camera: Camera, cam_to_world: np.ndarray, up: np.ndarray, ground: Plane | None,
                   cell_m: float, merge_m: float, max_points: int) -> np.ndarray:
    """(N, 3) world points of up-facing plate surfaces above the ground: each pixel's whole footprint
    (its tangent plane cut by the rays through its corners), sampled under a cell apart, so
    grazing views leave no gaps and a surface ends at its pixels' edges, not their centres."""
    stride = max(1, int(np.ceil(np.sqrt(z.size / max_points))))
    zz = np.asarray(z, np.float64)[::stride, ::stride]
    valid = np.isfinite(zz) & (zz > 0)
    v, u = np.mgrid[0:zz.shape[0], 0:zz.shape[1]].astype(np.float64)
    uv = np.stack([u * stride + 0.5, v * stride + 0.5], axis=-1)
    pc = camera.unproject(uv, np.where(valid, zz, np.nan))  # (H, W, 3), nan on sky
    m = np.asarray(cam_to_world, np.float64)
    rot = m[:3, :3]
    nc = _most_upward_normals(pc, rot.T @ up)
    with np.errstate(invalid="ignore"):
        facing = valid & (nc @ (rot.T @ up) > np.cos(np.radians(_MAX_SLOPE_DEG)))
        if ground is not None:
            facing &= ground.distance(pc @ rot.T + m[:3, 3]) > merge_m
    if not facing.any():
        return np.zeros((0, 3))
    reach = _edge_reach(facing, pc @ rot.T @ up, max(3.0 * cell_m, 0.02))[facing]  # (M, 4)
    pf, nf, uvf = pc[facing], nc[facing], uv[facing]
    plane_d = np.einsum("ij,ij->i", nf, pf)

    def on_plane(off: np.ndarray) -> np.ndarray:
        """(M, K, 3) camera points of sub-pixel offsets (K, 2) in [-0.5, 0.5] (strided pixels) on each
        tangent plane, shortened to each pixel's reach towards a silhouette."""
        du = off[None, :, 0] * 2.0 * np.where(off[None, :, 0] < 0, reach[:, :1], reach[:, 1:2])
        dv = off[None, :, 1] * 2.0 * np.where(off[None, :, 1] < 0, reach[:, 2:3], reach[:, 3:4])
        ray = camera.unproject(uvf[:, None] + np.stack([du, dv], axis=-1) * stride, np.ones((len(uvf), len(off))))
        with np.errstate(invalid="ignore", divide="ignore"):
            t = plane_d[:, None] / np.einsum("mj,mkj->mk", nf, ray)
        return ray * t[..., None]

    full = reach.copy()
    reach[:] = 0.5
    sides = on_plane(np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, -0.5], [0.0, 0.5]]))
    with np.errstate(invalid="ignore"):
        size = np.repeat(np.stack([np.linalg.norm(sides[:, 1] - sides[:, 0], axis=1),
                                   np.linalg.norm(sides[:, 3] - sides[:, 2], axis=1)], axis=1), 2, axis=1)
        # towards a silhouette: a quarter pixel, but never more than a cell beyond the pixel centre
        reach = np.where(full < 0.5, np.minimum(full, cell_m / np.maximum(size, 1e-9)), full)
    corners = on_plane(np.array([[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5], [-0.5, 0.5]]))
    ext = np.maximum(np.linalg.norm(corners[:, 0] - corners[:, 1], axis=1),
                     np.linalg.norm(corners[:, 2] - corners[:, 3], axis=1))
    nominal = -pf[:, 2] * stride / camera.fx  # a pixel's size facing the camera, metres
    with np.errstate(invalid="ignore"):
        grazing = ~(ext < 12.0 * nominal)  # the tangent plane runs along the ray: keep the centre only
    ks = np.where(grazing, 1, np.clip(np.ceil(ext / (0.7 * cell_m)), 1, 8)).astype(np.int64)
    out = [pf[grazing]]
    for k in np.unique(ks[~grazing]):
        sel = np.flatnonzero((ks == k) & ~grazing)
        f = (np.arange(k) + 0.5) / k - 0.5
        off = np.stack([g.ravel() for g in np.meshgrid(f, f, indexing="ij")], axis=1)
        keep = plane_d, nf, uvf, reach
        plane_d, nf, uvf, reach = plane_d[sel], nf[sel], uvf[sel], reach[sel]
        out.append(on_plane(off).reshape(-1, 3))
        plane_d, nf, uvf, reach = keep
    pts = np.concatenate(out) @ rot.T + m[:3, 3]
    if ground is not None:
        with np.errstate(invalid="ignore"):
            pts = pts[ground.distance(pts) > merge_m]
    return pts[np.all(np.isfinite(pts), axis=1)]


def _edge_reach(facing: np.ndarray, height: np.ndarray, gap_m: float) -> np.ndarray:
    """(H, W, 4) how far (pixels) each pixel's footprint reaches towards -u, +u, -v, +v: half a pixel
    to a neighbour on the same surface, a quarter towards a silhouette (the true edge lies somewhere
    between the two pixel centres; a quarter keeps the support from overhanging it by much)."""
    same = np.zeros(facing.shape + (4,), bool)
    with np.errstate(invalid="ignore"):
        cont_u = facing[:, 1:] & facing[:, :-1] & (np.abs(height[:, 1:] - height[:, :-1]) < gap_m)
        cont_v = facing[1:] & facing[:-1] & (np.abs(height[1:] - height[:-1]) < gap_m)
    same[:, 1:, 0] = cont_u
    same[:, :-1, 1] = cont_u
    same[1:, :, 2] = cont_v
    same[:-1, :, 3] = cont_v
    return np.where(same, 0.5, 0.25)


def _most_upward_normals(p: np.ndarray, up_c: np.ndarray) -> np.ndarray:
    """(H, W, 3) camera-space normals from the point map (H, W, 3): of the four one-sided difference
    pairs that stay on one surface (depth step < 5%), the one facing most along ``up_c``, so the
    last pixel row of a table top is up-facing even though its front face continues below it."""
    nan = np.full_like(p[:, :1], np.nan)
    du = p[:, 1:] - p[:, :-1]
    us = (np.concatenate([du, nan], axis=1), np.concatenate([nan, du], axis=1))
    nan = np.full_like(p[:1], np.nan)
    dv = p[1:] - p[:-1]
    vs = (np.concatenate([dv, nan], axis=0), np.concatenate([nan, dv], axis=0))
    zc = np.abs(p[..., 2])
    best = np.full(p.shape, np.nan)
    score = np.full(p.shape[:2], -np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        for a in us:
            for b in vs:
                n = np.cross(a, b)
                n /= np.linalg.norm(n, axis=-1, keepdims=True)
                n *= np.where(np.einsum("...i,...i->...", n, p) > 0, -1.0, 1.0)[..., None]  # towards the camera
                sc = n @ up_c
                ok = (np.abs(a[..., 2]) < 0.05 * zc) & (np.abs(b[..., 2]) < 0.05 * zc) & np.isfinite(sc) & (sc > score)
                best = np.where(ok[..., None], n, best)
                score = np.where(ok, sc, score)
    return best


def _cluster_layers(cell: np.ndarray, h: np.ndarray, ncells: int, gap_m: float, min_points: int) -> np.ndarray:
    """(ncells, MAX_LAYERS) float32 median heights of each cell's height clusters (split where sorted
    heights jump by more than ``gap_m``), highest first, nan-padded."""
    order = np.lexsort((h, cell))
    cs, hs = cell[order], h[order]
    new = np.ones(len(cs), bool)
    new[1:] = (cs[1:] != cs[:-1]) | (hs[1:] - hs[:-1] > gap_m)
    start = np.flatnonzero(new)
    end = np.append(start[1:], len(cs))
    count = end - start
    med = hs[(start + end - 1) // 2]
    ccell = cs[start]
    keep = count >= min_points
    med, ccell = med[keep], ccell[keep]
    # rank from the top within each cell: clusters are in ascending height per cell
    last = np.append(ccell[1:] != ccell[:-1], True)
    grp_end = np.flatnonzero(last)
    grp_id = np.cumsum(np.append(0, last[:-1]))
    rank = grp_end[grp_id] - np.arange(len(ccell))
    out = np.full((ncells, MAX_LAYERS), np.nan, np.float32)
    ok = rank < MAX_LAYERS
    out[ccell[ok], rank[ok]] = med[ok]
    return out


def resolve_contact(support: SupportField, new_pos: np.ndarray, vel: np.ndarray, radius: np.ndarray | float,
                    dt: float, *, restitution: float = 0.3, friction: float = 0.3, rest_speed_mps: float = 0.05,
                    footprint: str = "sphere", prev_pos: np.ndarray | None = None,
                    calm: np.ndarray | None = None) -> Contact:
    """Contact of N objects that moved to ``new_pos`` (N, 3) with velocity ``vel`` (N, 3) over ``dt``:
    lifted onto the highest support under their footprint that was below them at ``prev_pos`` (a
    layer they passed under is not a support), impact bounce (``restitution``), Coulomb friction
    (rolling resistance for spheres), rest after ``SLEEP_STEPS`` slow touching sub-steps."""
    up = support.up
    pos = np.atleast_2d(np.array(new_pos, np.float64))
    v = np.atleast_2d(np.array(vel, np.float64))
    n = len(pos)
    r = np.broadcast_to(np.asarray(radius, np.float64), (n,))
    h = pos @ up
    if prev_pos is None:
        before = h + np.abs(v @ up) * dt
    else:
        before = np.atleast_2d(np.asarray(prev_pos, np.float64)) @ up
    s, nrm = support.support(pos, r, np.maximum(before, h) + _STEP_EPS_M, footprint)
    touching = h <= s + 1e-6
    pos[touching] += (s[touching] - h[touching])[:, None] * up
    calm_in = np.zeros(n, np.int64) if calm is None else np.asarray(calm, np.int64)
    if touching.any():
        t = np.flatnonzero(touching)
        nt, vt_ = nrm[t], v[t]
        vn = np.einsum("ij,ij->i", vt_, nt)
        into = np.minimum(vn, 0.0)
        bounce = np.where(-into > _BOUNCE_MIN_G_DT * GRAVITY_MPS2 * dt, restitution, 0.0)
        vt_ = vt_ - (1.0 + bounce)[:, None] * into[:, None] * nt
        tang = vt_ - np.einsum("ij,ij->i", vt_, nt)[:, None] * nt
        tl = np.linalg.norm(tang, axis=1)
        resist = 0.2 if footprint == "sphere" else 1.0  # rolling loses far less than sliding
        load = np.maximum((1.0 + bounce) * np.abs(into), GRAVITY_MPS2 * dt * np.abs(nt @ up))  # impact or weight
        cut = friction * resist * load
        keep = np.where(tl > 0, np.maximum(0.0, 1.0 - cut / np.maximum(tl, 1e-12)), 0.0)
        v[t] = vt_ - tang * (1.0 - keep)[:, None]
    speed = np.linalg.norm(v, axis=1)
    with np.errstate(invalid="ignore"):
        holds = nrm @ up >= 1.0 / np.sqrt(1.0 + max(friction, 1e-3) ** 2)  # friction holds on this slope
    slow = touching & holds & (speed < rest_speed_mps)
    calm_out = np.where(slow, calm_in + 1, 0)
    resting = calm_out >= SLEEP_STEPS
    v[resting] = 0.0
    normal = np.where(touching[:, None], nrm, np.nan)
    # Nothing below the ground plane, whatever happened above.
    g = support.ground_height(pos) + r / (float(support.ground.normal @ up) if support.ground is not None else 1.0)
    below = pos @ up < g
    if below.any():
        pos[below] += (g[below] - pos[below] @ up)[:, None] * up
        v[below] -= np.minimum(v[below] @ up, 0.0)[:, None] * up
    return Contact(pos, v, touching | below, resting, normal, calm_out)
