"""Float32 values rounded to the nearest half float, kept as float32: what an EXR half channel stores.

numpy's float32 -> float16 cast takes a slow path for small values (|x| below ~1e-3: grain, light wrap,
shadow tails): 0.1 s per million values, most of a frame's comp time. The same IEEE round-to-nearest-even
done on the float32 bits costs a few ms and gives the same bits (tests/match/test_half.py).
"""

from __future__ import annotations

import numpy as np

__all__ = ["round_to_half", "HALF_MAX"]

HALF_MAX = 65504.0
_SUBNORMAL = np.float32(2.0 ** -14)  # below: half subnormals, a fixed step of 2^-24
_SCALE = np.float32(2.0 ** 24)


def round_to_half(x: np.ndarray) -> np.ndarray:
    """``x`` clipped to +-HALF_MAX and rounded to half precision, as a new float32 array (NaN stays NaN)."""
    a = np.clip(np.asarray(x, np.float32), -HALF_MAX, HALF_MAX)
    bits = a.view(np.uint32)
    # normal halves: keep 10 of float32's 23 mantissa bits, ties to even (a carry into the exponent is right)
    lsb = (bits >> np.uint32(13)) & np.uint32(1)
    lsb += bits
    lsb += np.uint32(0x0FFF)
    lsb &= np.uint32(0xFFFFE000)
    out = lsb.view(np.float32)
    # half subnormals: multiples of 2^-24 (exact scalings by powers of two; rint ties to even, keeps -0)
    sub = np.multiply(a, _SCALE)
    np.rint(sub, out=sub)
    sub /= _SCALE
    np.copyto(out, sub, where=np.abs(a) < _SUBNORMAL)
    np.copyto(out, a, where=np.isnan(a))
    return out
