"""Shading a proxy from the plate: Lambert from the key light, a hemisphere ambient whose colour and
level come from the plate itself, self-shadowing and the cast shadow of the proxy's true shape (an
orthographic shadow map along the light), with a contact-occlusion term where it touches.

Light levels: the plate's mean colour is taken as middle grey (0.18) under its light, so the total
irradiance is ``E = plate_mean / 0.18``; ``key_share`` of it comes from the key light, the rest from
the sky/bounce hemisphere (``0.5 + 0.5 n.up``). With no plate image, ``E = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from gvfx.engines.sim.insert3d.proxy import dot
from gvfx.engines.sim.insert3d.raster import rasterize

__all__ = ["Lighting", "plate_lighting", "ShadowMap", "shadow_map", "lambert", "surface_shadow"]

MIDDLE_GREY = 0.18


@dataclass(frozen=True)
class Lighting:
    """light_dir (3,) world unit vector towards the key light; key_rgb, ambient_rgb (3,) irradiance."""

    light_dir: np.ndarray
    key_rgb: np.ndarray
    ambient_rgb: np.ndarray
    up: np.ndarray


def plate_lighting(light_dir: np.ndarray, up: np.ndarray, plate_rgb: np.ndarray | None,
                   key_share: float = 0.65) -> Lighting:
    """The key and ambient irradiance from the plate's (H, W, 3) linear colour (module doc)."""
    if plate_rgb is None:
        e = np.ones(3)
    else:
        px = np.asarray(plate_rgb, np.float64)[..., :3].reshape(-1, 3)
        px = px[np.isfinite(px).all(axis=1)]
        mean = np.clip(px.mean(axis=0), 1e-4, None) if len(px) else np.full(3, MIDDLE_GREY)
        e = mean / MIDDLE_GREY
    lum = float(np.dot(e, [0.2722, 0.6741, 0.0537]))
    key = np.full(3, key_share * lum)  # the key is taken as white, the plate's tint goes to the ambient
    amb = (1.0 - key_share) * e
    ld = np.asarray(light_dir, np.float64)
    return Lighting(ld / max(np.linalg.norm(ld), 1e-12), key, amb, np.asarray(up, np.float64))


@dataclass(frozen=True)
class ShadowMap:
    """Orthographic depth map of a posed mesh along the light: ``top`` (S, S) is the highest
    coordinate along the light (``-inf`` where empty) of cells ``cell`` metres wide from ``origin``."""

    e1: np.ndarray
    e2: np.ndarray
    light: np.ndarray
    origin: np.ndarray
    cell: float
    top: np.ndarray

    def moved(self, t: np.ndarray) -> "ShadowMap":
        """The same map for the mesh translated by ``t`` (3,) (a translation only shifts the map)."""
        t = np.asarray(t, np.float64)
        return ShadowMap(self.e1, self.e2, self.light,
                         self.origin + np.array([t @ self.e1, t @ self.e2]), self.cell, self.top + t @ self.light)

    def lookup(self, pts: np.ndarray, bias_cells: float = 1.5) -> np.ndarray:
        """(N,) 0..1 occlusion of world points by the mesh (3x3 percentage-closer filtered)."""
        a = (dot(pts, self.e1) - self.origin[0]) / self.cell
        b = (dot(pts, self.e2) - self.origin[1]) / self.cell
        d = dot(pts, self.light)
        s = self.top.shape[0]
        ia, ib = np.floor(a).astype(np.intp), np.floor(b).astype(np.intp)
        occ = np.zeros(len(pts))
        for da in (-1, 0, 1):
            for db in (-1, 0, 1):
                ja, jb = ia + da, ib + db
                ok = (ja >= 0) & (ja < s) & (jb >= 0) & (jb < s)
                top = np.full(len(pts), -np.inf)
                top[ok] = self.top[jb[ok], ja[ok]]
                occ += top > d + bias_cells * self.cell
        return occ / 9.0


def shadow_map(verts_w: np.ndarray, faces: np.ndarray, light_dir: np.ndarray, size: int = 256) -> ShadowMap:
    """Rasterise the posed mesh (N, 3) world along ``light_dir`` (towards the light)."""
    l = np.asarray(light_dir, np.float64)
    l = l / max(np.linalg.norm(l), 1e-12)
    helper = np.array([0.0, 1.0, 0.0]) if abs(l[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(helper, l)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(l, e1)
    a, b, d = dot(verts_w, e1), dot(verts_w, e2), dot(verts_w, l)
    lo = np.array([a.min(), b.min()])
    ext = max(a.max() - lo[0], b.max() - lo[1], 1e-6)
    cell = ext / (size - 4)
    origin = lo - 2 * cell
    xy = np.stack([(a - origin[0]) / cell, (b - origin[1]) / cell], -1)
    zz = (d.max() + 1.0) - d  # nearest to the light = smallest
    fr = rasterize(xy, zz, faces, size, size)
    top = np.full(size * size, -np.inf)
    top[fr.pix] = (d.max() + 1.0) - fr.z
    return ShadowMap(e1, e2, l, origin, cell, top.reshape(size, size))


def lambert(albedo: np.ndarray, normals: np.ndarray, lit: Lighting, key_vis: np.ndarray) -> np.ndarray:
    """(K, 3) shaded colour: ``albedo * (key * max(0, n.l) * key_vis + ambient * (0.5 + 0.5 n.up))``."""
    ndl = np.clip(dot(normals, lit.light_dir), 0.0, None) * key_vis
    hemi = 0.5 + 0.5 * dot(normals, lit.up)
    return albedo * (ndl[:, None] * lit.key_rgb + hemi[:, None] * lit.ambient_rgb)


def surface_shadow(sm: ShadowMap, surface_pts: np.ndarray, verts_w: np.ndarray, *,
                   reach_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(N,) cast shadow (0..1 occlusion of the key light by the mesh) and (N,) contact occlusion
    ``(1 - d / reach_m)**2`` from the distance ``d`` of each plate surface point to the mesh."""
    cast = sm.lookup(surface_pts)
    ao = np.zeros(len(surface_pts))
    if reach_m > 0 and len(surface_pts):
        lo, hi = verts_w.min(axis=0) - reach_m, verts_w.max(axis=0) + reach_m
        near = np.flatnonzero(((surface_pts >= lo) & (surface_pts <= hi)).all(axis=1))
        if near.size:
            dist, _ = cKDTree(verts_w).query(surface_pts[near], distance_upper_bound=reach_m)
            ao[near] = np.clip(1.0 - dist / reach_m, 0.0, 1.0) ** 2
    return cast, ao
