"""Motion vectors and vector blur for elements.

**Convention of the ``motion`` layer** (written as ``motion.U``, ``motion.V``): screen-space, in pixels
per frame, *forward* (where this pixel's content is at the next frame), **U to the right, V up** — the
convention of Nuke's ``forward.u/v`` (Nuke's y axis points up), so VectorBlur and Kronos take the layer
as it is. Note that gvfx's pixel coordinates (``gvfx.camera``) have v *down*: ``V = -(v1 - v0)``.
At the last frame of the camera track the motion from the previous frame is used (held velocity).

Where an engine gives ``extra["motion"]`` it is taken as is (same convention); otherwise the motion is
camera-induced: each element pixel is unprojected with its Z, assumed static in the world, and
projected with the next frame's camera.

**Vector blur** matches elements rendered without motion blur to the plate's shutter: every pixel
averages ``n`` samples along its vector over ``shutter_frames`` centred on the frame. Vectors are first
spread a little beyond the element's silhouette (nearest element pixel) so the element smears outward.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gvfx.camera import CameraTrack

__all__ = ["camera_motion", "vector_blur"]


def camera_motion(element_z: np.ndarray, track: CameraTrack, frame: int,
                  alpha: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 2) float32 camera-induced motion (U right, V up, px/frame, forward) of static world points.

    ``element_z``: (H, W) metric Z on ``track``'s canvas (inf = nothing: motion 0). ``alpha`` optional:
    only pixels with alpha > 0 are computed.
    """
    z = np.asarray(element_z, dtype=np.float64)
    h, w = z.shape
    out = np.zeros((h, w, 2), np.float32)
    ok = np.isfinite(z) & (z > 0)
    if alpha is not None:
        ok &= np.asarray(alpha) > 0
    if not ok.any():
        return out
    ys, xs = np.nonzero(ok)
    uv0 = np.stack([xs + 0.5, ys + 0.5], axis=-1).astype(np.float64)
    last = track.frames[-1]
    f0, f1 = (frame, frame + 1) if frame < last else (frame - 1, frame)
    if f0 != frame:  # held velocity at the end: unproject at `frame`, compare with the previous frame
        world = track.unproject_world(uv0, z[ok], frame)
        prev, _ = track.project_world(world, f0)
        d = uv0 - prev
    else:
        world = track.unproject_world(uv0, z[ok], f0)
        nxt, _ = track.project_world(world, f1)
        d = nxt - uv0
    out[ys, xs, 0] = d[:, 0]
    out[ys, xs, 1] = -d[:, 1]
    return out


def _spread(motion: np.ndarray, alpha: np.ndarray, reach_px: int) -> np.ndarray:
    """Vectors of the nearest element pixel, up to ``reach_px`` beyond the silhouette."""
    inside = alpha > 0
    if not inside.any() or reach_px <= 0:
        return motion
    ys, xs = np.nonzero(inside)
    h, w = alpha.shape
    y0, y1 = max(0, ys.min() - reach_px), min(h, ys.max() + reach_px + 1)
    x0, x1 = max(0, xs.min() - reach_px), min(w, xs.max() + reach_px + 1)
    sub = ~inside[y0:y1, x0:x1]
    dist, (iy, ix) = ndimage.distance_transform_edt(sub, return_indices=True)
    spread = motion[y0:y1, x0:x1][iy, ix]
    spread[dist > reach_px] = 0.0
    out = motion.copy()
    out[y0:y1, x0:x1] = spread
    return out


def vector_blur(rgba: np.ndarray, motion: np.ndarray, shutter_frames: float, *,
                max_samples: int = 16) -> np.ndarray:
    """(H, W, 4) premultiplied ``rgba`` blurred along ``motion`` (module convention) over the shutter.

    Each pixel gathers ``n`` bilinear samples at ``p - t * m`` for ``t`` spread evenly over
    ``[-shutter/2, shutter/2]``; ``n`` follows the longest streak (1 sample per pixel, 2 to
    ``max_samples``). A shutter of 0 or no motion returns the input.
    """
    a = np.asarray(rgba, dtype=np.float32)
    mv = np.asarray(motion, dtype=np.float32)
    longest = float(np.abs(mv).max()) * shutter_frames if mv.size else 0.0
    if shutter_frames <= 0 or longest < 0.25:
        return a
    n = int(np.clip(np.ceil(longest * 1.5), 2, max_samples))
    reach = int(np.ceil(longest / 2)) + 1
    mv = _spread(mv, a[..., 3], reach)
    lit = np.flatnonzero(np.any(a != 0, axis=-1).any(axis=1)), np.flatnonzero(np.any(a != 0, axis=-1).any(axis=0))
    if lit[0].size == 0:
        return a
    # only the element's box grown by the streak length can change
    y0, y1 = max(0, lit[0][0] - reach - 1), min(a.shape[0], lit[0][-1] + reach + 2)
    x0, x1 = max(0, lit[1][0] - reach - 1), min(a.shape[1], lit[1][-1] + reach + 2)
    out = a.copy()
    out[y0:y1, x0:x1] = _blur_box(a[y0:y1, x0:x1], mv[y0:y1, x0:x1], shutter_frames, n)
    return out


def _blur_box(a: np.ndarray, mv: np.ndarray, shutter_frames: float, n: int) -> np.ndarray:
    from gvfx.match.lens import remap

    h, w = a.shape[:2]
    v, u = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    d = np.stack([mv[..., 0], -mv[..., 1]], axis=-1)  # to gvfx pixel axes (v down)
    acc = np.zeros_like(a)
    for t in (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5:
        src = np.stack([u, v], axis=-1) - t * shutter_frames * d
        acc += remap(a, src, order=1)
    return acc / n
