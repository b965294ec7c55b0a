"""Light wrap: the plate's light bleeding onto an element's edges.

Bright background spills over the edge of a foreground object in a real lens and film/sensor;
a comped element without it looks cut out. The wrap layer is::

    wrap = strength * blur(plate, width) * alpha * (1 - blur(alpha, width))

``blur`` is a Gaussian of sigma ``width_px / 2`` (so the wrap reaches about ``width_px`` into the
element). ``alpha * (1 - blur(alpha))`` is the inner edge: zero outside the element and in its
interior. The plate is blurred as a whole (what is behind the element, including under it),
negative and non-finite plate values count as no light. The layer is premultiplied: the stage ADDS
it to the element's rgb before the ``over``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gvfx.errors import InputError
from gvfx.match.flat import finite_pixels, rgb_of

__all__ = ["light_wrap"]


def light_wrap(element_rgba: np.ndarray, plate_rgb: np.ndarray, *, width_px: float = 8.0,
               strength: float = 0.5) -> np.ndarray:
    """(H, W, 3) float32 premultiplied light-wrap layer (see module doc).

    ``element_rgba``: (H, W, 4) premultiplied ACEScg; ``plate_rgb``: (H, W, 3|4) ACEScg.
    """
    el = np.asarray(element_rgba, dtype=np.float32)
    if el.ndim != 3 or el.shape[2] != 4:
        raise InputError(f"element must be (H, W, 4) premultiplied RGBA, got {el.shape}")
    p = rgb_of(plate_rgb)
    h, w = el.shape[:2]
    if p.shape[:2] != (h, w):
        raise InputError(f"plate {p.shape[:2]} and element {(h, w)} differ in size")
    if width_px < 0 or strength < 0:
        raise InputError(f"light wrap width ({width_px}) and strength ({strength}) must be >= 0")
    out = np.zeros((h, w, 3), dtype=np.float32)
    a = np.clip(np.nan_to_num(el[..., 3], nan=0.0), 0.0, 1.0)
    if width_px <= 0 or strength <= 0 or not (a > 0).any():
        return out
    sigma = width_px / 2.0
    # work on the element's box grown by the blur's reach
    reach = int(np.ceil(4 * sigma)) + 1
    rows, cols = np.flatnonzero((a > 0).any(axis=1)), np.flatnonzero((a > 0).any(axis=0))
    y0, y1 = max(0, rows[0] - 2 * reach), min(h, rows[-1] + 2 * reach + 1)
    x0, x1 = max(0, cols[0] - 2 * reach), min(w, cols[-1] + 2 * reach + 1)
    ac = a[y0:y1, x0:x1]
    pc = p[y0:y1, x0:x1]
    ok = finite_pixels(pc)
    light = np.where(ok[..., None], np.maximum(pc, 0.0), 0.0)
    # normalised blur: holes (non-finite plate pixels) take their neighbours' light, not black
    wgt = ndimage.gaussian_filter(ok.astype(np.float32), sigma, mode="nearest")
    blurred = np.stack([ndimage.gaussian_filter(light[..., k], sigma, mode="nearest") for k in range(3)], -1)
    blurred = np.where(wgt[..., None] > 1e-6, blurred / np.maximum(wgt, 1e-6)[..., None], 0.0)
    # alpha beyond the frame edge counts as the element continuing (no false edge at the border)
    edge = ac * (1.0 - ndimage.gaussian_filter(ac, sigma, mode="nearest"))
    out[y0:y1, x0:x1] = (strength * blurred * edge[..., None]).astype(np.float32)
    return out
