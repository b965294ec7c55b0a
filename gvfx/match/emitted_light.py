"""The light an emissive element (fire, sparks, explosion) casts on the plate around it.

The element is reduced to a few point lights: given by the engine, or sampled here from its emission
layer and Z (each emitting pixel of radiance L at depth Z is a small facing patch of area
``(Z / fx) * (Z / fy)`` m^2, so its intensity is ``L * area``; pixels are summed per world cell at the
cell's power-weighted centre). Each plate pixel, a point on the surface from the plate's depth with
its normal from the depth's gradients, receives the irradiance ``E = sum_k I_k * max(0, n . l_k) / d_k^2``
and reflects ``platelight = strength * albedo * E / pi`` (Lambertian), where the albedo is the plate's
colour over its white level (the 99.5th percentile of its luminance, the brightest surfaces ~ white).

What it leaves out, on purpose: shadowing of the element's light by the scene (no ray casting
through the depth) and light on the sky. The comp adds the layer to the plate under the elements:
``bg = plate * prod(1 - shadow) + sum platelight`` (gvfx.comp.lit_background).
"""

from __future__ import annotations

import logging

import numpy as np

from gvfx.camera import Camera
from gvfx.surface import DepthSurface

log = logging.getLogger(__name__)

__all__ = ["sample_lights", "group_lights", "plate_light", "white_level", "MAX_LIGHTS"]

#: At most this many point lights per element and frame (cost: one pass over the frame per light).
MAX_LIGHTS = 32
#: Light never comes from nearer than this (metres): the emitter has a size, 1/d^2 must not blow up.
MIN_DISTANCE_M = 0.08
_LUMA = np.array([0.2722287168, 0.6740817658, 0.0536895174], np.float32)  # ACEScg Y


def group_lights(points: np.ndarray, intensity: np.ndarray, cell_m: float,
                 max_lights: int = MAX_LIGHTS) -> tuple[np.ndarray, np.ndarray]:
    """Sum point emitters (N, 3) world m with intensities (N, 3) per ``cell_m`` grid cell, at each
    cell's power-weighted centre; keep the ``max_lights`` strongest cells, scaled to the total.
    Returns (K, 3) positions and (K, 3) intensities, float32."""
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    inten = np.asarray(intensity, np.float64).reshape(-1, 3)
    ok = np.isfinite(pts).all(axis=1) & np.isfinite(inten).all(axis=1) & (inten.sum(axis=1) > 0)
    pts, inten = pts[ok], inten[ok]
    if len(pts) == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    _, inv = np.unique(np.floor(pts / max(cell_m, 1e-6)).astype(np.int64), axis=0, return_inverse=True)
    inv = inv.ravel()
    k = int(inv.max()) + 1
    power = inten.sum(axis=1)
    wsum = np.maximum(np.bincount(inv, power, k), 1e-30)
    centre = np.stack([np.bincount(inv, power * pts[:, c], k) for c in range(3)], axis=1) / wsum[:, None]
    colour = np.stack([np.bincount(inv, inten[:, c], k) for c in range(3)], axis=1)
    if k > max_lights:
        top = np.argsort(-colour.sum(axis=1), kind="stable")[:max_lights]
        scale = colour.sum() / max(float(colour[top].sum()), 1e-30)
        centre, colour = centre[top], colour[top] * scale
    return centre.astype(np.float32), colour.astype(np.float32)


def sample_lights(emission: np.ndarray, z: np.ndarray, camera: Camera, cam_to_world: np.ndarray, *,
                  max_lights: int = MAX_LIGHTS) -> tuple[np.ndarray, np.ndarray]:
    """Point lights of an element from its (H, W, 3) emission (premultiplied, scene-linear) and (H, W)
    Z (metric, inf = empty): see the module doc. The cell is a sixth of the emitter's largest extent
    (at least 2 cm). Returns (K, 3) world positions and (K, 3) intensities (K may be 0)."""
    em = np.nan_to_num(np.asarray(emission, np.float32)[..., :3], nan=0.0, posinf=0.0, neginf=0.0)
    zz = np.asarray(z, np.float32)
    on = (em @ _LUMA > 0) & np.isfinite(zz) & (zz > 0)
    if not on.any():
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    iv, iu = np.nonzero(on)
    zs = zz[iv, iu].astype(np.float64)
    uv = np.stack([iu + 0.5, iv + 0.5], axis=1)
    pc = camera.unproject(uv, zs)
    c2w = np.asarray(cam_to_world, np.float64)
    pw = pc @ c2w[:3, :3].T + c2w[:3, 3]
    area = (zs / camera.fx) * (zs / camera.fy)
    inten = em[iv, iu].astype(np.float64) * area[:, None]
    extent = float(np.max(np.ptp(pw, axis=0))) if len(pw) > 1 else 0.0
    return group_lights(pw, inten, max(extent / 6.0, 0.02), max_lights)


def white_level(plate_rgb: np.ndarray) -> float:
    """The plate's white: the 99.5th percentile of its luminance (a strided sample), at least 1e-3."""
    rgb = np.nan_to_num(np.asarray(plate_rgb, np.float32)[::3, ::3, :3], nan=0.0, posinf=0.0, neginf=0.0)
    lum = rgb @ _LUMA
    lum = lum[lum > 0]
    return max(float(np.percentile(lum, 99.5)) if lum.size else 1.0, 1e-3)


def plate_light(positions: np.ndarray, intensity: np.ndarray, plate_rgb: np.ndarray, plate_z: np.ndarray,
                camera: Camera, cam_to_world: np.ndarray, *, strength: float = 1.0,
                white: float | None = None) -> np.ndarray:
    """(H, W, 3) float32: the light of point lights ``positions`` (K, 3) world m, ``intensity`` (K, 3),
    reflected by the plate's surfaces towards the camera (module doc); 0 on sky and where every light
    is behind the surface. ``plate_rgb`` (H, W, 3) scene-linear, ``plate_z`` (H, W) metric Z."""
    h, w = np.asarray(plate_z).shape
    out = np.zeros((h, w, 3), np.float32)
    pos = np.asarray(positions, np.float64).reshape(-1, 3)
    inten = np.asarray(intensity, np.float32).reshape(-1, 3)
    if strength <= 0 or len(pos) == 0 or not np.any(inten > 0):
        return out
    zz = np.asarray(plate_z, np.float32)
    valid = np.isfinite(zz) & (zz > 0)
    p = camera.ray_directions().astype(np.float32) * np.where(valid, zz, np.nan)[..., None]  # camera space
    n = DepthSurface._normals(p)  # the collider's normals (towards the camera), in float32
    w2c = np.linalg.inv(np.asarray(cam_to_world, np.float64))
    lc = (pos @ w2c[:3, :3].T + w2c[:3, 3]).astype(np.float32)
    px, py, pz = (np.ascontiguousarray(p[..., c]) for c in range(3))
    nx, ny, nz = (np.ascontiguousarray(n[..., c]) for c in range(3))
    irr = np.zeros((3, h, w), np.float32)
    dx, dy, dz = (np.empty((h, w), np.float32) for _ in range(3))
    dist2, g = np.empty((h, w), np.float32), np.empty((h, w), np.float32)
    floor2 = np.float32(MIN_DISTANCE_M ** 2)
    with np.errstate(invalid="ignore"):
        for k in range(len(lc)):
            np.subtract(lc[k, 0], px, out=dx)
            np.subtract(lc[k, 1], py, out=dy)
            np.subtract(lc[k, 2], pz, out=dz)
            np.multiply(dx, dx, out=dist2)
            dist2 += dy * dy
            dist2 += dz * dz
            np.multiply(dx, nx, out=g)  # n . d, then cos / d^2 = (n . d) / (|d| max(d^2, floor^2))
            g += dy * ny
            g += dz * nz
            np.maximum(g, 0.0, out=g)
            g /= np.sqrt(np.maximum(dist2, 1e-12)) * np.maximum(dist2, floor2)
            for c in range(3):
                if inten[k, c] > 0:
                    irr[c] += g * inten[k, c]
    irr = np.nan_to_num(np.moveaxis(irr, 0, -1), nan=0.0)
    rgb = np.nan_to_num(np.asarray(plate_rgb, np.float32)[..., :3], nan=0.0, posinf=0.0, neginf=0.0)
    wl = white_level(rgb) if white is None else float(white)
    albedo = np.clip(rgb / wl, 0.0, 1.0)
    out = (np.float32(strength / np.pi) * albedo * irr).astype(np.float32)
    out[~valid] = 0.0
    return out
