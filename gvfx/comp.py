"""A plain depth-aware over: premultiplied elements over the plate, held out where the plate is in front.

All images are (H, W, 4) float32 scene-linear RGBA in the same colour space; elements are
premultiplied. A holdout (H, W) is 1 where the plate must hide the element (the plate is nearer).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from gvfx.errors import InputError, ResolutionMismatchError

log = logging.getLogger(__name__)

__all__ = ["over", "comp_elements", "lit_background"]


def _rgba(a: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 4:
        raise InputError(f"{what} has shape {arr.shape}; expected (H, W, 4) RGBA")
    return arr


def _check_hw(shape: tuple[int, ...], ref: tuple[int, ...], what: str) -> None:
    if tuple(shape[:2]) != tuple(ref[:2]):
        raise ResolutionMismatchError(f"{what} is {shape[1]}x{shape[0]} but the plate is {ref[1]}x{ref[0]}")


def over(plate_rgba: np.ndarray, element_rgba: np.ndarray, holdout: np.ndarray | None = None) -> np.ndarray:
    """Composite one premultiplied element over the plate, held out by ``holdout``.

    ``comp = el * (1 - holdout) + plate * (1 - el.a * (1 - holdout))``, alpha included.
    Returns (H, W, 4) float32.
    """
    plate = _rgba(plate_rgba, "plate")
    el = _rgba(element_rgba, "element")
    _check_hw(el.shape, plate.shape, "element")
    if holdout is None:
        vis = np.ones(plate.shape[:2], dtype=np.float32)
    else:
        h = np.asarray(holdout, dtype=np.float32)
        if h.ndim == 3 and h.shape[2] == 1:
            h = h[:, :, 0]
        if h.ndim != 2:
            raise InputError(f"holdout has shape {h.shape}; expected (H, W)")
        _check_hw(h.shape, plate.shape, "holdout")
        vis = 1.0 - np.clip(h, 0.0, 1.0)
    vis = vis[:, :, None]
    return el * vis + plate * (1.0 - el[:, :, 3:4] * vis)


def comp_elements(plate_rgba: np.ndarray,
                  elements: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> np.ndarray:
    """Composite several elements ``(rgba, z, holdout)`` over the plate, back to front by Z per pixel.

    Each element is held out by its own holdout. Z is (H, W) metric depth (``inf``/NaN where the
    element is empty); at equal Z the earlier element in the list goes underneath. Returns
    (H, W, 4) float32.
    """
    plate = _rgba(plate_rgba, "plate")
    if not elements:
        return plate.copy()
    h, w = plate.shape[:2]
    n = len(elements)
    rgbas = np.empty((n, h, w, 4), dtype=np.float32)
    zs = np.empty((n, h, w), dtype=np.float32)
    vis = np.empty((n, h, w), dtype=np.float32)
    for i, (rgba, z, hold) in enumerate(elements):
        el = _rgba(rgba, f"element {i}")
        _check_hw(el.shape, plate.shape, f"element {i}")
        zi = np.asarray(z, dtype=np.float32)
        if zi.shape != (h, w):
            raise ResolutionMismatchError(f"element {i} Z has shape {zi.shape}; expected {(h, w)}")
        rgbas[i] = el
        zs[i] = np.where(np.isnan(zi), np.inf, zi)
        if hold is None:
            vis[i] = 1.0
        else:
            hi = np.asarray(hold, dtype=np.float32)
            if hi.shape != (h, w):
                raise ResolutionMismatchError(f"element {i} holdout has shape {hi.shape}; expected {(h, w)}")
            vis[i] = 1.0 - np.clip(hi, 0.0, 1.0)
    # far to near: sort by -Z (stable, so ties keep list order: earlier goes underneath)
    order = np.argsort(-zs, axis=0, kind="stable")
    out = plate.copy()
    for k in range(n):
        idx = order[k]
        el = np.take_along_axis(rgbas, idx[None, :, :, None], axis=0)[0]
        v = np.take_along_axis(vis, idx[None], axis=0)[0][:, :, None]
        out = el * v + out * (1.0 - el[:, :, 3:4] * v)
    return out


def lit_background(plate_rgba: np.ndarray, keep: np.ndarray | None = None,
                   light: np.ndarray | None = None) -> np.ndarray:
    """The plate under the elements: its rgb times ``keep`` (H, W), the product of the elements'
    ``1 - shadow``, plus ``light`` (H, W, 3), the sum of their platelight layers (the light emissive
    elements cast on the plate). Alpha is untouched. Returns (H, W, 4) float32."""
    plate = _rgba(plate_rgba, "plate")
    bg = plate.copy()
    if keep is not None:
        k = np.asarray(keep, np.float32)
        _check_hw(k.shape, plate.shape, "shadow")
        bg[..., :3] *= k[..., None]
    if light is not None:
        li = np.asarray(light, np.float32)
        _check_hw(li.shape, plate.shape, "platelight")
        bg[..., :3] += li[..., :3]
    return bg
