"""Plate pixels to model pixels and back, exactly.

Image models take and return display-referred values in 0..1. A plate is scene-linear (ACEScg) with
highlights far above display white. The path is:

    scene-linear --gvfx.color.to_display (srgb_tx, exact)--> sRGB-encoded v (may exceed 1)
                 --highlight curve (above the knee k)-------> y in 0..1 for the model

and back through the exact inverses (``from_model``). The highlight curve, in headroom units
``s = (v - k) / (1 - k)`` for ``v > k`` (identity below the knee)::

    y = k + (1 - k) * s / (1 + a*s),   a = 1 - 1/s_w,   s_w = (W - k) / (1 - k)
    s = u / (1 - a*u),                 u = (y - k) / (1 - k)            (the inverse)

It has slope 1 at the knee (no kink), maps the display-encoded *white point* ``W`` to exactly 1, and its
inverse is finite everywhere in 0..1 — so a model's pure white comes back as ``W`` (a highlight, about
``(W+0.055)/1.055)^2.4`` linear), not infinity. Encoded values above ``W`` and below 0 (out of gamut)
cannot be given to the model: they are clamped, and the clamp is logged with the pixel fraction,
never silent.
"""

from __future__ import annotations

import logging

import numpy as np

from gvfx.color import from_display, to_display

__all__ = ["KNEE", "WHITE", "tone_map", "inverse_tone_map", "to_model", "from_model"]

log = logging.getLogger(__name__)

#: display-encoded value where the highlight curve starts
KNEE = 0.8
#: display-encoded value the model's 1.0 stands for (about 16x linear white in sRGB encoding)
WHITE = 4.0


def _a(knee: float, white: float) -> float:
    if not 0.0 < knee < 1.0 or white <= 1.0:
        raise ValueError(f"highlight curve needs 0 < knee < 1 < white (got knee={knee}, white={white})")
    s_w = (white - knee) / (1.0 - knee)
    return 1.0 - 1.0 / s_w


def tone_map(v: np.ndarray, knee: float = KNEE, white: float = WHITE) -> np.ndarray:
    """Display-encoded ``v`` in [0, white] -> [0, 1] (identity below ``knee``); see module doc."""
    a = _a(knee, white)
    v = np.asarray(v, dtype=np.float32)
    s = np.maximum(v - knee, 0.0) / (1.0 - knee)
    y = knee + (1.0 - knee) * s / (1.0 + a * s)
    return np.where(v > knee, y, v).astype(np.float32)


def inverse_tone_map(y: np.ndarray, knee: float = KNEE, white: float = WHITE) -> np.ndarray:
    """Exact inverse of :func:`tone_map` on [0, 1]."""
    a = _a(knee, white)
    y = np.asarray(y, dtype=np.float32)
    u = np.clip(y - knee, 0.0, 1.0 - knee) / (1.0 - knee)
    v = knee + (1.0 - knee) * u / (1.0 - a * u)
    return np.where(y > knee, v, y).astype(np.float32)


def to_model(rgb: np.ndarray, colorspace: str = "ACEScg", *, knee: float = KNEE, white: float = WHITE,
             what: str = "image") -> np.ndarray:
    """Scene-linear (..., 3) in ``colorspace`` -> model input (..., 3) float32 in 0..1."""
    v = to_display(np.ascontiguousarray(rgb[..., :3], dtype=np.float32), src=colorspace)
    out_of_range = (v < 0.0) | (v > white)
    if out_of_range.any():
        log.warning("%s: %.3f%% of values are outside what the model can see (display-encoded < 0 or > %.1f) "
                    "and are clamped for the model input", what, 100.0 * out_of_range.mean(), white)
    return np.clip(tone_map(np.clip(v, 0.0, white), knee, white), 0.0, 1.0)


def from_model(y: np.ndarray, colorspace: str = "ACEScg", *, knee: float = KNEE, white: float = WHITE) -> np.ndarray:
    """Model output (..., 3) in 0..1 -> scene-linear float32 in ``colorspace`` (exact inverse of
    :func:`to_model` for values the model could see)."""
    v = inverse_tone_map(np.clip(np.asarray(y, dtype=np.float32), 0.0, 1.0), knee, white)
    return from_display(np.ascontiguousarray(v), dst=colorspace).astype(np.float32)
