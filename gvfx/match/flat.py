"""Flat-region finding, shared by the grain and colour estimators.

Grain is measured where the plate has no structure (a textured or edged region would read as
noise); "flat" here means low local gradient energy of a *smoothed* luminance. Smoothing first
keeps the decision almost independent of the grain itself: the fine-scale grain that the grain
estimator measures barely moves the smoothed gradient, so choosing flat pixels does not select the
quietest noise (which would bias the measured sigma low).

Non-finite pixels (NaN/Inf in a plate) and their neighbourhood are never flat.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gvfx.errors import InputError

__all__ = ["ACESCG_LUMA", "luminance", "finite_pixels", "rgb_of", "flat_mask"]

#: ACEScg (AP1 primaries, D60) -> Y weights.
ACESCG_LUMA = np.array([0.2722287168, 0.6740817658, 0.0536895174], dtype=np.float32)


#: pixels with gradient energy up to this many times the noise floor (the energy at the
#: NOISE_FLOOR_QUANTILE) are flat whatever ``quantile`` says
NOISE_FLOOR_FACTOR = 8.0
NOISE_FLOOR_QUANTILE = 0.05
#: brightness groups in which the noise floor is judged separately
LUMINANCE_GROUPS = 8


def rgb_of(image: np.ndarray) -> np.ndarray:
    """The (H, W, 3) float32 colour channels of an (H, W, 3) or (H, W, 4) image."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"expected an (H, W, 3) or (H, W, 4) image, got shape {a.shape}")
    return np.ascontiguousarray(a[..., :3], dtype=np.float32)


def finite_pixels(rgb: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose every channel is finite."""
    return np.all(np.isfinite(rgb), axis=-1)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) scene-linear ACEScg -> (...) float32 luminance Y (non-finite stays non-finite)."""
    return np.asarray(rgb[..., :3], dtype=np.float32) @ ACESCG_LUMA


def flat_mask(rgb: np.ndarray, *, window_px: int = 7, quantile: float = 0.3) -> np.ndarray:
    """(H, W) bool: finite pixels whose local gradient energy is in the lowest ``quantile``.

    ``rgb``: (H, W, 3|4) float32 scene-linear ACEScg (alpha ignored). The luminance is smoothed with
    a Gaussian of sigma ``window_px / 4`` px, its squared gradient averaged over a ``window_px``
    square; pixels at or below the ``quantile`` of that energy (over finite pixels) are flat, and so
    is any pixel within ``NOISE_FLOOR_FACTOR`` x the 5th-percentile energy (grain alone) of the
    pixels of similar smoothed luminance (``LUMINANCE_GROUPS`` quantile groups). Pixels
    within ``window_px`` of a non-finite pixel are excluded.
    """
    if not 0.0 < quantile <= 1.0:
        raise InputError(f"flat_mask quantile must be in (0, 1], got {quantile}")
    window_px = max(3, int(window_px))
    c = rgb_of(rgb)
    ok = finite_pixels(c)
    if not ok.any():
        return np.zeros(ok.shape, dtype=bool)
    y = np.where(ok, luminance(np.where(ok[..., None], c, 0.0)), 0.0).astype(np.float32)
    if not ok.all():
        # fill holes with the mean so the smoothing does not draw edges into them
        y[~ok] = float(y[ok].mean())
    ys = ndimage.gaussian_filter(y, sigma=window_px / 4.0, mode="nearest")
    gy, gx = np.gradient(ys)
    energy = ndimage.uniform_filter(gx * gx + gy * gy, size=window_px, mode="nearest")
    usable = ok if ok.all() else ~ndimage.binary_dilation(~ok, iterations=window_px)
    if not usable.any():
        return usable
    e = energy[usable]
    flat = usable & (energy <= float(np.quantile(e, quantile)))
    # plus everything near the grain's own floor, judged among pixels of similar brightness: on a
    # mostly flat plate a bare quantile would keep the quietest grain (biasing the estimate low), and
    # grain that grows with brightness would leave bright areas out altogether
    ysu = ys[usable]
    cuts = np.quantile(ysu, np.linspace(0.0, 1.0, LUMINANCE_GROUPS + 1)[1:-1])
    group = np.searchsorted(cuts, ysu)
    keep = np.zeros(e.shape, dtype=bool)
    for g in range(LUMINANCE_GROUPS):
        sel = group == g
        if sel.sum() >= 20:
            keep[sel] = e[sel] <= NOISE_FLOOR_FACTOR * float(np.quantile(e[sel], NOISE_FLOOR_QUANTILE))
    flat[usable] |= keep
    return flat
