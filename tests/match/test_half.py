"""gvfx.match.half.round_to_half gives the bits numpy's own float16 round trip gives (the reference:
IEEE round-to-nearest-even), over random bit patterns of every exponent and the edge cases."""

import numpy as np

from gvfx.match.half import round_to_half


def _reference(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -65504.0, 65504.0).astype(np.float16).astype(np.float32)


def test_random_bit_patterns_match_numpy():
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2 ** 32, 2_000_000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    assert np.array_equal(round_to_half(x).view(np.uint32), _reference(x).view(np.uint32))


def test_every_half_step_and_tie_matches_numpy():
    h = np.arange(0, 2 ** 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    h = h[np.isfinite(h)].astype(np.float32)
    h.sort()
    mids = (h[:-1] + h[1:]) / 2  # exact ties (float32 holds them): round to the even neighbour
    near = np.concatenate([mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf), h])
    x = np.concatenate([near, [-0.0, 0.0, 65504.0, 65519.0, 65520.0, 1e9, -1e9, np.inf, -np.inf]]).astype(np.float32)
    got, ref = round_to_half(x), _reference(x)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


def test_nan_stays_nan_and_shape_kept():
    x = np.array([[np.nan, 1e-6], [3.14159, -2.0e-8]], np.float32)
    out = round_to_half(x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.isnan(out[0, 0]) and np.array_equal(out[1:], _reference(x[1:]))
