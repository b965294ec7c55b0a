"""Tiled refinement at plate resolution: an element made at the model's 512-1024 px and resized up to
its size in a 2K+ plate is soft; a second, light img2img pass over overlapping model-sized tiles of the
upscaled picture puts detail back at full size.

Every tile runs with the same seed, the same prompt and the depth control cropped to it, at
``tile_strength`` (img2img: only the last part of the schedule, so the tile keeps the picture and adds
texture). Tiles overlap by at least a quarter; each contributes with a weight ramping linearly from 0
at its inner overlap edges to 1 (a feathered blend, normalised by the weights' sum), so no seam shows.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["tile_starts", "feather", "refine_tiled"]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of evenly spaced tiles of ``tile`` px covering ``0..length``, neighbours sharing at least
    ``overlap`` px; the first starts at 0, the last ends on the edge. One tile when ``length <= tile``."""
    if length <= tile:
        return [0]
    n = -(-(length - overlap) // max(1, tile - overlap))  # fewest tiles sharing >= overlap px
    n = max(n, 2)
    return sorted(set(int(round(v)) for v in np.linspace(0, length - tile, n)))


def feather(size: int, start: int, starts: list[int], tile: int) -> np.ndarray:
    """(size,) weights of the tile at ``start`` along one axis: 1 inside, a linear ramp over the part it
    shares with its neighbours (0 -> 1 into the tile), 0 outside; :func:`refine_tiled` divides by the sum
    of all tiles' weights (exactly 1 already where only two tiles meet)."""
    w = np.zeros(size, np.float32)
    w[start:start + tile] = 1.0
    i = starts.index(start)
    if i > 0:  # shared with the previous tile
        prev_end = starts[i - 1] + tile
        n = prev_end - start
        w[start:prev_end] = (np.arange(n, dtype=np.float32) + 0.5) / n
    if i + 1 < len(starts):  # shared with the next tile
        nxt = starts[i + 1]
        n = start + tile - nxt
        w[nxt:start + tile] = 1.0 - (np.arange(n, dtype=np.float32) + 0.5) / n
    return w


def refine_tiled(image: np.ndarray, control: np.ndarray, tile: int,
                 run_tile: Callable[[np.ndarray, np.ndarray], np.ndarray], multiple: int = 8) -> np.ndarray:
    """``image`` (H, W, 3) 0..1 refined tile by tile: ``run_tile(tile_rgb, tile_control) -> tile_rgb`` on
    each overlapping ``tile`` x ``tile`` window (clipped to the image, sides rounded down to
    ``multiple``), blended with :func:`feather` weights. Returns (H, W, 3) float32."""
    h, w = image.shape[:2]
    th = max(multiple, min(tile, h) // multiple * multiple)
    tw = max(multiple, min(tile, w) // multiple * multiple)
    ys, xs = tile_starts(h, th, th // 4), tile_starts(w, tw, tw // 4)
    acc = np.zeros((h, w, 3), np.float32)
    wsum = np.zeros((h, w, 1), np.float32)
    for y in ys:
        wy = feather(h, y, ys, th)
        for x in xs:
            wx = feather(w, x, xs, tw)
            out = run_tile(image[y:y + th, x:x + tw], control[y:y + th, x:x + tw])
            weight = (wy[y:y + th, None] * wx[None, x:x + tw])[..., None]
            acc[y:y + th, x:x + tw] += weight * out
            wsum[y:y + th, x:x + tw] += weight
    covered = wsum[..., 0] > 0
    result = image.astype(np.float32).copy()
    result[covered] = acc[covered] / wsum[covered]
    return result


def tile_kwargs(base: dict[str, Any], tile_rgb: np.ndarray, tile_control: np.ndarray, strength: float,
                to_pil: Callable[[np.ndarray], Any]) -> dict[str, Any]:
    """The refine pipeline's arguments for one tile: the shared ones plus the tile and its control."""
    kw = dict(base)
    kw.update(image=to_pil(tile_rgb), control_image=to_pil(tile_control), strength=float(strength))
    return kw
