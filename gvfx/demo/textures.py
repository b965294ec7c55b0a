"""Deterministic procedural textures of the demo scene: hashed value noise, fBm and the materials built
on it (paving, bricks, wood, cardboard), as ACEScg albedo. Used by :mod:`gvfx.demo.scene`."""

from __future__ import annotations

import numpy as np



_HASH_X, _HASH_Y = np.uint32(0x8DA6B343), np.uint32(0xD8163841)


def _mix01(h: np.ndarray) -> np.ndarray:
    """Finalise uint32 hashes (in place) into floats in [0, 1)."""
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def _lattice(ix: np.ndarray, iy: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis hash terms of integer lattice coordinates (uint32, wrapping)."""
    hx = ix.astype(np.int64).astype(np.uint32) * _HASH_X
    hy = iy.astype(np.int64).astype(np.uint32) * _HASH_Y ^ np.uint32((seed * 0x9E3779B1) & 0xFFFFFFFF)
    return hx, hy


def _hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic per-lattice-point value in [0, 1)."""
    hx, hy = _lattice(ix, iy, seed)
    return _mix01(hx ^ hy)


def _value_noise(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Smooth 2D value noise in [0, 1) (float32 in, float32 out)."""
    fx, fy = np.floor(x), np.floor(y)
    tx, ty = x - fx, y - fy
    tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    hx, hy = _lattice(fx, fy, seed)
    hx1, hy1 = hx + _HASH_X, hy + _HASH_Y
    a, b = _mix01(hx ^ hy), _mix01(hx1 ^ hy)
    c, d = _mix01(hx ^ hy1), _mix01(hx1 ^ hy1)
    ab = a + (b - a) * tx
    return ab + (c + (d - c) * tx - ab) * ty


def _fbm(x: np.ndarray, y: np.ndarray, freq: float, octaves: int, seed: int,
         gain: float = 0.55) -> np.ndarray:
    """Multi-scale value noise (octaves at ``freq``, 2x, 4x... per metre), normalised to about [0, 1]."""
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
    total = np.zeros(np.shape(x), dtype=np.float32)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        f = np.float32(freq)
        total += np.float32(amp) * _value_noise(x * f, y * f, seed + 101 * k)
        norm += amp
        freq *= 2.0
        amp *= gain
    return total / np.float32(norm)


def _tint(rgb: tuple[float, float, float], k: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, dtype=np.float32)[None, :] * k[:, None]


def _paving(x: np.ndarray, z: np.ndarray, seed: int) -> np.ndarray:
    """Ground: 0.6 m stone slabs in staggered rows, grout lines, per-slab tone, multi-scale grain."""
    size, grout = 0.6, 0.012
    row = np.floor(z / size)
    xs = x / size + 0.5 * (row % 2)
    col = np.floor(xs)
    ex = np.minimum(xs - col, col + 1 - xs) * size
    ez = np.minimum(z / size - row, row + 1 - z / size) * size
    edge = np.minimum(ex, ez)
    slab = 0.78 + 0.44 * _hash01(col.astype(np.int64), row.astype(np.int64), seed)
    n = _fbm(x, z, 3.0, 5, seed + 1, gain=0.7)
    k = slab * (0.55 + 0.9 * n)
    alb = _tint((0.30, 0.27, 0.23), k.astype(np.float32))
    is_grout = (edge < grout / 2).astype(np.float32)
    grout_rgb = _tint((0.10, 0.095, 0.09), (0.8 + 0.4 * n).astype(np.float32))
    return alb * (1 - is_grout[:, None]) + grout_rgb * is_grout[:, None]


def _bricks(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Wall: running-bond bricks 21.5 x 6.5 cm with 1 cm mortar, per-brick tone, noise and speckle."""
    bw, bh, mortar = 0.225, 0.075, 0.01
    row = np.floor(y / bh)
    xs = x / bw + 0.5 * (row % 2)
    col = np.floor(xs)
    ex = np.minimum(xs - col, col + 1 - xs) * bw
    ey = np.minimum(y / bh - row, row + 1 - y / bh) * bh
    is_mortar = (np.minimum(ex, ey) < mortar / 2).astype(np.float32)
    hb = _hash01(col.astype(np.int64), row.astype(np.int64), seed)
    n = _fbm(x, y, 4.0, 4, seed + 2, gain=0.6)
    k = (0.65 + 0.6 * hb) * (0.7 + 0.6 * n)
    brick = np.stack([0.42 * k, (0.17 + 0.06 * hb) * k, 0.11 * k], axis=-1).astype(np.float32)
    mort = _tint((0.33, 0.32, 0.30), (0.75 + 0.5 * n).astype(np.float32))
    return brick * (1 - is_mortar[:, None]) + mort * is_mortar[:, None]


def _wood(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Table: planks 14 cm wide along ``u`` with stretched grain, knots of noise, per-plank tone."""
    plank = np.floor(v / 0.14)
    hp = _hash01(plank.astype(np.int64), np.zeros_like(plank, dtype=np.int64), seed)
    grain = _fbm(u * 0.15 + 3.1 * hp, v * 3.0, 6.0, 5, seed + 3)
    rings = 0.5 + 0.5 * np.sin((v * 90.0 + 8.0 * grain + 11.0 * hp).astype(np.float32))
    seam = (np.abs(v / 0.14 - np.round(v / 0.14)) * 0.14 < 0.003).astype(np.float32)
    k = (0.75 + 0.5 * hp) * (0.7 + 0.35 * rings + 0.3 * grain) * (1 - 0.6 * seam)
    return _tint((0.36, 0.20, 0.10), k.astype(np.float32))


def _cardboard(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Box: cardboard with fibre noise and a printed checker band (plenty of corners to track)."""
    n = _fbm(u, v, 5.0, 5, seed + 4, gain=0.7)
    alb = _tint((0.45, 0.31, 0.17), (0.75 + 0.5 * n).astype(np.float32))
    band = (np.abs(v) < 0.07) & ((np.floor(u / 0.05) + np.floor(v / 0.05)) % 2 == 0)
    alb[band] = alb[band] * 0.25
    return alb
