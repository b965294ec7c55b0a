"""The reference's object, not the image: its matte's bounding box, unpremultiplied colour, left-right
symmetry, and the reference's own baked lighting reduced before the proxy is relit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from gvfx.errors import InputError

__all__ = ["ObjectMatte", "object_matte", "symmetry", "reduce_baked_light"]

MIN_PIXELS = 64  # fewer opaque pixels than this is no usable matte
OPAQUE = 0.5


@dataclass(frozen=True)
class ObjectMatte:
    """The object cropped out of its reference.

    alpha (h, w) float32 0..1; rgb (h, w, 3) float32 unpremultiplied ACEScg (edge colours extended
    outside the matte, so bilinear lookups at the silhouette never fetch black); ``bbox`` (x0, y0, x1, y1)
    of the matte in the reference, pixels; ``axis_px`` the object's vertical axis, crop column."""

    alpha: np.ndarray
    rgb: np.ndarray
    bbox: tuple[int, int, int, int]
    axis_px: float

    @property
    def height_px(self) -> int:
        return int(self.alpha.shape[0])

    @property
    def width_px(self) -> int:
        return int(self.alpha.shape[1])


def object_matte(cutout: np.ndarray, path: str | Path | None = None) -> ObjectMatte:
    """The object of a (H, W, 4) premultiplied cut-out: crop to the matte's bounding box (alpha > 0.5).

    Raises InputError naming ``path`` when the matte is empty or too small to build an object from."""
    cut = np.asarray(cutout, np.float32)
    a = np.clip(cut[..., 3], 0.0, 1.0)
    solid = a > OPAQUE
    if int(solid.sum()) < MIN_PIXELS:
        raise InputError(f"the reference has no usable matte ({int(solid.sum())} opaque pixels, need "
                         f"{MIN_PIXELS})", path=path, hint="give an RGBA PNG with the object's alpha, or an "
                         "RGB photo of the object on a plain background")
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    if y1 - y0 < 4 or x1 - x0 < 4:
        raise InputError(f"the reference's matte is only {x1 - x0}x{y1 - y0} pixels", path=path,
                         hint="give a reference where the object is at least a few dozen pixels across")
    alpha = a[y0:y1, x0:x1].copy()
    prem = cut[y0:y1, x0:x1, :3]
    rgb = np.where(alpha[..., None] > 1e-3, prem / np.maximum(alpha[..., None], 1e-3), 0.0)
    rgb = _extend_edges(rgb, alpha > 0.25)
    cw = alpha.sum(axis=0)
    axis = float((cw * (np.arange(alpha.shape[1]) + 0.5)).sum() / max(cw.sum(), 1e-9))
    return ObjectMatte(alpha, rgb.astype(np.float32), (x0, y0, x1, y1), axis)


def _extend_edges(rgb: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Colours outside ``inside`` replaced by the nearest inside colour (no black fringe at lookups)."""
    if inside.all() or not inside.any():
        return rgb
    idx = ndimage.distance_transform_edt(~inside, return_distances=False, return_indices=True)
    return rgb[idx[0], idx[1]]


def symmetry(m: ObjectMatte) -> float:
    """Left-right symmetry of the matte about its axis, 0..1 (IoU of the matte and its mirror image)."""
    a = m.alpha > OPAQUE
    h, w = a.shape
    xs = np.arange(w) + 0.5
    mirror_x = np.clip(np.floor(2 * m.axis_px - xs), 0, w - 1).astype(np.intp)
    valid = (2 * m.axis_px - xs >= 0) & (2 * m.axis_px - xs < w)
    b = a[:, mirror_x] & valid[None, :]
    inter, union = np.logical_and(a, b).sum(), np.logical_or(a, b).sum()
    return float(inter / max(union, 1))


def reduce_baked_light(m: ObjectMatte, strength: float) -> ObjectMatte:
    """Divide out the reference's own large-scale shading so the plate's light can replace it.

    The shading is estimated as the luminance blurred over a quarter of the object's size (inside the
    matte only), normalised to its mean; the albedo is ``rgb / shading ** strength`` (0 = keep as is).
    Small-scale detail (print, texture) is kept; broad gradients (a key light's falloff) are removed."""
    if strength <= 0:
        return m
    lum = m.rgb @ np.array([0.2722, 0.6741, 0.0537], np.float32)
    w = (m.alpha > OPAQUE).astype(np.float32)
    sigma = max(2.0, 0.25 * min(m.alpha.shape))
    num = ndimage.gaussian_filter(lum * w, sigma, mode="constant")
    den = ndimage.gaussian_filter(w, sigma, mode="constant")
    shade = np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0)
    mean = float((shade * w).sum() / max(w.sum(), 1.0))
    if mean <= 1e-6:
        return m
    rel = np.clip(shade / mean, 0.25, 4.0)
    rel = np.where(w > 0, rel, 1.0)
    rgb = m.rgb / (rel ** float(strength))[..., None]
    return ObjectMatte(m.alpha, rgb.astype(np.float32), m.bbox, m.axis_px)
