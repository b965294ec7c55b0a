"""A 3D proxy: a textured triangle mesh in object space, built once from the reference (or loaded).

Object space: metres, Y up, the base at y = 0, the vertical axis through x = z = 0, the side the
reference camera saw facing +Z. ``texture`` is an unpremultiplied ACEScg atlas; each face corner has
its own UV (so seams between the projected front and the completed back never interpolate across).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["Proxy", "vertex_normals", "normalised", "rotate", "dot"]


@dataclass(frozen=True)
class Proxy:
    """verts (N, 3) float64 object metres; faces (M, 3) int32, counter-clockwise seen from outside;
    face_uv (M, 3, 2) float32 in 0..1 (v down); texture (h, w, 3) float32; normals (N, 3) per vertex."""

    kind: str
    verts: np.ndarray
    faces: np.ndarray
    face_uv: np.ndarray
    texture: np.ndarray
    normals: np.ndarray
    closed: bool = True

    @property
    def height_m(self) -> float:
        return float(self.verts[:, 1].max() - self.verts[:, 1].min())

    def scaled(self, height_m: float, width_m: float | None = None, depth_m: float | None = None) -> "Proxy":
        """This proxy with its height ``height_m`` (base kept at y = 0); width/depth scaled alike unless
        given. Normals are recomputed (a non-uniform scale changes them)."""
        lo, hi = self.verts.min(axis=0), self.verts.max(axis=0)
        ext = np.maximum(hi - lo, 1e-12)
        s = float(height_m) / ext[1]
        k = np.array([s if width_m is None else float(width_m) / ext[0], s,
                      s if depth_m is None else float(depth_m) / ext[2]])
        v = (self.verts - np.array([0.0, lo[1], 0.0])) * k
        return replace(self, verts=v, normals=vertex_normals(v, self.faces))


def rotate(pts: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(N, 3) points times the (3, 3) matrix ``m`` (``pts @ m.T``), by einsum: small matrix products go
    through threaded BLAS otherwise, which is many times slower on a loaded machine."""
    return np.einsum("ij,kj->ik", pts, m)


def dot(pts: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N,) dot products of (N, 3) rows with the (3,) vector ``v``."""
    return np.einsum("ij,j->i", pts, v)


def normalised(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) area-weighted vertex normals of a counter-clockwise mesh."""
    tri = verts[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(verts, dtype=np.float64)
    for k in range(3):
        np.add.at(out, faces[:, k], fn)
    return normalised(out)
