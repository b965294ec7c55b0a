"""Pulling a premultiplied matte from an element generated on a neutral key background.

Method (a luminance/chroma *difference key* against a known background, with a garbage matte):

1. The element is generated on a flat neutral grey background (``KEY_GREY``, display-encoded) and the
   prompt asks for it ("isolated on a plain neutral grey background"); the depth control image is the
   proxy shape in front of a far (black, zero inverse depth) backdrop.
2. The key colour ``K`` is measured, not assumed: the median of a thin ring of border pixels of the
   generation (models drift off the exact grey), falling back to ``KEY_GREY`` if the border is busy.
3. Alpha from the colour distance to ``K``: ``d = max_c |C_c - K_c|``,
   ``alpha = smoothstep(low, high, d)`` — pixels within ``low`` of the key are background, beyond
   ``high`` fully foreground, a soft ramp between (hair/smoke edges keep partial alpha).
4. A garbage matte (the proxy silhouette, dilated and softened) multiplies alpha, so stray marks far
   from the element never leak into the plate.
5. Un-mixing: a pixel is ``C = F + (1 - alpha) K`` with ``F`` premultiplied, so ``F = C - (1 - alpha) K``
   and the straight colour is ``F / alpha`` (clipped to 0..1). The caller converts the straight colour
   to scene-linear (colour.from_model) and multiplies by alpha: premultiplied ACEScg.

Limits: foreground colours close to the key grey lose alpha (a grey-suited figure); the ramp ``low``/
``high`` trades holes against grey fringes. Difference matting against two generations on two
backgrounds is more robust but doubles the cost per frame; it is not implemented.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KEY_GREY", "key_background", "key_colour", "key_matte", "garbage_matte"]

#: the neutral key background, display-encoded (a mid grey the models render cleanly)
KEY_GREY = 0.5


def key_background(height: int, width: int, value: float = KEY_GREY) -> np.ndarray:
    """(H, W, 3) float32 flat display-encoded key background."""
    return np.full((height, width, 3), value, dtype=np.float32)


def key_colour(rgb: np.ndarray, ring_px: int = 2, busy: float = 0.08) -> np.ndarray:
    """(3,) key colour: the median of the image's border ring, or ``KEY_GREY`` when the ring is busy
    (its median absolute deviation above ``busy``)."""
    r = max(1, ring_px)
    ring = np.concatenate([rgb[:r].reshape(-1, 3), rgb[-r:].reshape(-1, 3),
                           rgb[:, :r].reshape(-1, 3), rgb[:, -r:].reshape(-1, 3)])
    med = np.median(ring, axis=0)
    if float(np.median(np.abs(ring - med))) > busy:
        return np.full(3, KEY_GREY, dtype=np.float32)
    return med.astype(np.float32)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / max(e1 - e0, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def garbage_matte(shape: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float],
                  grow: float = 1.25, soft: float = 0.15) -> np.ndarray:
    """(H, W) float32: an ellipse (``centre``/``radii`` in pixels) grown by ``grow`` with a soft edge of
    ``soft`` (fraction of the radius)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    r = np.sqrt(((x - centre[0]) / (radii[0] * grow)) ** 2 + ((y - centre[1]) / (radii[1] * grow)) ** 2)
    return (1.0 - _smoothstep(1.0 - soft, 1.0, r)).astype(np.float32)


def key_matte(rgb: np.ndarray, key: np.ndarray | None = None, *, low: float = 0.04, high: float = 0.16,
              garbage: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(alpha (H, W), straight colour (H, W, 3)) of a generation ``rgb`` (H, W, 3) display-encoded 0..1
    on a key background (see module doc). Where alpha is 0 the colour is 0."""
    rgb = np.asarray(rgb, dtype=np.float32)
    k = key_colour(rgb) if key is None else np.asarray(key, dtype=np.float32)
    d = np.abs(rgb - k).max(axis=-1)
    alpha = _smoothstep(low, high, d).astype(np.float32)
    if garbage is not None:
        alpha *= garbage
    fg = rgb - (1.0 - alpha)[..., None] * k
    with np.errstate(divide="ignore", invalid="ignore"):
        straight = np.where(alpha[..., None] > 1e-6, fg / np.maximum(alpha[..., None], 1e-6), 0.0)
    return alpha, np.clip(straight, 0.0, 1.0).astype(np.float32)
