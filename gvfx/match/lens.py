"""Overscan and lens distortion: elements render on a canvas larger than the plate, and are re-distorted.

**Overscan.** An element renders through a camera whose canvas is ``margin`` pixels larger on every
side: same focal length in pixels, principal point shifted by the margin (so every display-window pixel
sees exactly the ray it sees without overscan), plate depth and image padded by edge extension. The
written EXR has data window ``(-m, -m, W-1+m, H-1+m)`` over display window ``(0, 0, W-1, H-1)``, so
defocus, motion blur and distortion have real pixels to pull in at the frame edges.

**Distortion.** Elements render through a pinhole; the plate was shot through a real lens. To match,
each element layer is *re-distorted*: every output pixel (a position on the distorted plate) samples the
undistorted element where that plate position maps to. Two sources for the map:

- an ST-map as Nuke's STMap node reads it: an (H, W) image whose R, G are the *normalised source
  coordinates* to sample, ``x = R * W``, ``y = G * H`` with ``y`` measured from the **bottom** of the
  image (Nuke's origin is bottom-left). The identity map is ``R = (i + 0.5) / W``,
  ``G = 1 - (j + 0.5) / H`` for the pixel in column ``i``, row ``j`` counted from the top. Use the
  "redistort" ST-map of your lens solve (the one that turns an undistorted CG render into the plate's
  lens). Values outside 0..1 reach into the overscan margin.
- a radial model ``(k1, k2)``: with ``p`` relative to the display-window centre and divided by half the
  display-window diagonal (``r = 1`` at a corner, as 3DEqualizer's radial models do),
  ``p_distorted = p_undistorted * (1 + k1 r_u^2 + k2 r_u^4)``. Re-distorting inverts this per output
  pixel (Newton iterations).

Depth-based steps (holdout, shadows, motion, haze, defocus) run before re-distortion, on the
undistorted canvas: the plate depth and camera are taken to describe the undistorted (pinhole) plate.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from gvfx.camera import Camera, CameraTrack
from gvfx.element import ElementSpec, Placement, PlateContext

log = logging.getLogger(__name__)

__all__ = ["RadialModel", "overscan_margin", "overscan_camera", "overscan_context", "overscan_spec", "pad_edge",
           "crop", "identity_stmap", "stmap_source_px", "radial_source_px", "remap", "redistort_layers"]


def overscan_margin(width: int, overscan_px: int | None) -> int:
    """The margin in pixels: ``overscan_px`` when given, else 5% of the width (rounded)."""
    if overscan_px is None:
        return int(round(0.05 * width))
    return max(0, int(overscan_px))


def overscan_camera(cam: Camera, m: int) -> Camera:
    """The same lens on a canvas ``m`` pixels larger on every side (same focal in pixels)."""
    if m == 0:
        return cam
    w2, h2 = cam.width + 2 * m, cam.height + 2 * m
    vap = None if cam.vaperture_mm is None else cam.vaperture_mm * h2 / cam.height
    # cx = width / 2 + offset: the wider canvas already moves the principal point by m
    return Camera(cam.focal_mm, cam.haperture_mm * w2 / cam.width, w2, h2, vap, cam.pixel_aspect,
                  cam.center_offset_px)


def pad_edge(a: np.ndarray, m: int) -> np.ndarray:
    """Pad the first two axes by ``m`` pixels, repeating the edge pixels."""
    if m == 0:
        return a
    widths = [(m, m), (m, m)] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, widths, mode="edge")


def crop(a: np.ndarray, m: int) -> np.ndarray:
    """The display-window part of an overscan array (inverse of :func:`pad_edge`)."""
    if m == 0:
        return a
    return a[m:-m, m:-m]


def overscan_context(ctx: PlateContext, m: int) -> PlateContext:
    """A PlateContext whose camera, depth and image cover the overscan canvas (see the module doc)."""
    if m == 0:
        return ctx
    tr = ctx.camera
    track = CameraTrack(overscan_camera(tr.camera, m), tr.frames, tr.cam_to_world, tr.focal_mm, dict(tr.metadata))
    depth = ctx.depth
    image = ctx.image
    return PlateContext(frames=ctx.frames, camera=track, depth=lambda f: pad_edge(depth(f), m),
                        width=ctx.width + 2 * m, height=ctx.height + 2 * m, colorspace=ctx.colorspace,
                        fps=ctx.fps, image=None if image is None else (lambda f: pad_edge(image(f), m)))


def overscan_spec(spec: ElementSpec, m: int, width: int, height: int) -> ElementSpec:
    """The element spec with its screen placement moved onto the overscan canvas (``+m`` pixels)."""
    pl = spec.placement
    if m == 0 or (pl.screen is None and pl.screen_norm is None):
        return spec
    uv = pl.screen if pl.screen is not None else (pl.screen_norm[0] * width, pl.screen_norm[1] * height)
    moved = Placement(screen=(float(uv[0]) + m, float(uv[1]) + m), frame=pl.frame, point=pl.point)
    return dataclasses.replace(spec, placement=moved)


# --------------------------------------------------------------------------------------- distortion

@dataclass(frozen=True)
class RadialModel:
    """``p_d = p_u (1 + k1 r^2 + k2 r^4)``, ``p`` normalised by half the display diagonal (module doc)."""

    k1: float = 0.0
    k2: float = 0.0

    def _norm(self, width: int, height: int) -> tuple[float, float, float]:
        return width / 2.0, height / 2.0, 0.5 * float(np.hypot(width, height))

    def distort_px(self, uv: np.ndarray, width: int, height: int) -> np.ndarray:
        """Undistorted pixel positions (..., 2) -> distorted ones (display-window pixels)."""
        cx, cy, s = self._norm(width, height)
        p = (np.asarray(uv, np.float64) - (cx, cy)) / s
        r2 = (p ** 2).sum(-1, keepdims=True)
        return p * (1 + self.k1 * r2 + self.k2 * r2 * r2) * s + (cx, cy)

    def undistort_px(self, uv: np.ndarray, width: int, height: int, iterations: int = 8) -> np.ndarray:
        """Distorted pixel positions (..., 2) -> undistorted ones, by Newton steps on the radius."""
        cx, cy, s = self._norm(width, height)
        q = (np.asarray(uv, np.float64) - (cx, cy)) / s
        rd = np.sqrt((q ** 2).sum(-1, keepdims=True))
        r = rd.copy()
        for _ in range(iterations):
            f = r * (1 + self.k1 * r ** 2 + self.k2 * r ** 4) - rd
            df = 1 + 3 * self.k1 * r ** 2 + 5 * self.k2 * r ** 4
            r = r - f / np.where(np.abs(df) < 1e-9, 1e-9, df)
        scale = np.where(rd > 1e-12, r / np.maximum(rd, 1e-12), 1.0)
        return q * scale * s + (cx, cy)


def identity_stmap(width: int, height: int) -> np.ndarray:
    """(H, W, 2) ST-map that leaves an image unchanged (Nuke convention, module doc)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([(u + 0.5) / width, 1.0 - (v + 0.5) / height], axis=-1)


def stmap_source_px(stmap: np.ndarray, m: int) -> np.ndarray:
    """(H+2m, W+2m, 2) source pixel positions on the overscan canvas from a display-size ST-map.

    The map is extended linearly into the margin (odd reflection), so a smooth lens map stays smooth.
    """
    st = np.asarray(stmap, np.float64)[..., :2]
    h, w = st.shape[:2]
    x = st[..., 0] * w + m
    y = (1.0 - st[..., 1]) * h + m
    src = np.stack([x, y], axis=-1)
    if m:
        src = np.pad(src, [(m, m), (m, m), (0, 0)], mode="reflect", reflect_type="odd")
    return src


def radial_source_px(model: RadialModel, width: int, height: int, m: int) -> np.ndarray:
    """(H+2m, W+2m, 2) source positions on the overscan canvas for re-distorting with ``model``."""
    v, u = np.mgrid[-m:height + m, -m:width + m].astype(np.float64) + 0.5
    src = model.undistort_px(np.stack([u, v], axis=-1), width, height)
    return src + m  # display pixels -> overscan canvas pixels


def remap(img: np.ndarray, src_px: np.ndarray, *, order: int = 1, fill: float = 0.0) -> np.ndarray:
    """Sample ``img`` (H, W) or (H, W, C) at continuous pixel positions ``src_px`` (H', W', 2) (x, y;
    centres at i + 0.5): bilinear (``order=1``) or nearest (``order=0``); outside is ``fill``."""
    a = np.asarray(img)
    squeeze = a.ndim == 2
    if squeeze:
        a = a[..., None]
    h, w = a.shape[:2]
    fx = src_px[..., 0] - 0.5
    fy = src_px[..., 1] - 0.5
    inside = (fx > -1) & (fx < w) & (fy > -1) & (fy < h)
    if order == 0:
        xi = np.clip(np.rint(fx).astype(np.int64), 0, w - 1)
        yi = np.clip(np.rint(fy).astype(np.int64), 0, h - 1)
        out = a[yi, xi]
    else:
        x0 = np.floor(fx).astype(np.int64)
        y0 = np.floor(fy).astype(np.int64)
        tx = (fx - x0)[..., None].astype(np.float32)
        ty = (fy - y0)[..., None].astype(np.float32)
        x0c, x1c = np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
        y0c, y1c = np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
        out = ((a[y0c, x0c] * (1 - tx) + a[y0c, x1c] * tx) * (1 - ty)
               + (a[y1c, x0c] * (1 - tx) + a[y1c, x1c] * tx) * ty)
    out = np.where(inside[..., None], out, fill).astype(a.dtype, copy=False)
    return out[..., 0] if squeeze else out


def redistort_layers(layers: dict[str, np.ndarray], src_px: np.ndarray | None) -> dict[str, np.ndarray]:
    """Re-distort every layer with the same map: bilinear for colour and mattes, nearest for ``z`` and
    ``motion`` (depths and vectors must not be averaged across edges). ``None`` returns them unchanged."""
    if src_px is None:
        return layers
    out = {}
    for name, arr in layers.items():
        if arr is None:
            out[name] = None
        elif name in ("z", "motion"):
            out[name] = remap(arr, src_px, order=0, fill=np.inf if name == "z" else 0.0)
        else:
            out[name] = remap(arr, src_px, order=1)
    return out
