"""Tiled refinement: the tile layout covers the image with feathered weights summing to 1, and the
element mode refines a large element tile by tile at its plate size."""

from __future__ import annotations

import numpy as np
import pytest

import gvfx_image_testkit as kit
from gvfx.engines.diffusion import DiffusionEngine
from gvfx.engines.diffusion.tiles import feather, refine_tiled, tile_starts


@pytest.mark.parametrize("length,tile", [(64, 64), (100, 64), (200, 64), (257, 96)])
def test_tiles_cover_and_feathers_sum_to_one(length, tile):
    starts = tile_starts(length, tile, tile // 4)
    assert starts[0] == 0 and starts[-1] + tile >= length
    assert all(b - a <= tile - tile // 4 for a, b in zip(starts, starts[1:]))  # neighbours share >= overlap
    total = sum(feather(length, s, starts, tile) for s in starts)
    assert total.min() > 0.0  # every pixel covered with weight
    if len(starts) == 1 or all(b - a >= tile / 2 for a, b in zip(starts, starts[1:])):
        assert np.allclose(total, 1.0, atol=1e-6)  # pairwise overlaps: the ramps sum to 1 on their own


def test_refine_tiled_identity_and_tile_sizes():
    rng = np.random.default_rng(0)
    img = rng.random((150, 230, 3), dtype=np.float32)
    seen = []

    def same(rgb, ctrl):
        seen.append(rgb.shape[:2])
        return rgb

    out = refine_tiled(img, img, 64, same)
    assert np.allclose(out, img, atol=1e-6)  # an identity tile pass gives the image back: no seams
    assert all(s == (64, 64) for s in seen) and len(seen) == len(tile_starts(150, 64, 16)) * len(tile_starts(230, 64, 16))
    shifted = refine_tiled(img, img, 64, lambda rgb, ctrl: rgb + 0.25)
    assert np.allclose(shifted, img + 0.25, atol=1e-5)


def test_element_tile_refine_runs_tiles_at_plate_size(tmp_path_factory, tmp_path):
    import torch

    torch.set_num_threads(1)
    store = kit.tiny_store(tmp_path_factory)
    ctx = kit.plate_ctx((1001,), width=160, height=160)
    calls = []
    from dataclasses import replace

    spec_plain = replace(kit.spec("element", store, steps=2, model_resolution=32), size_m=3.0)
    spec_tiled = replace(kit.spec("element", store, steps=2, model_resolution=32, tile_refine=True, tile_strength=0.5),
                         size_m=3.0)
    eng = DiffusionEngine()
    eng.prepare(spec_plain, ctx, tmp_path / "plain")
    plain = eng.render_frame(spec_plain, ctx, 1001, tmp_path / "plain")
    eng.prepare(spec_tiled, ctx, tmp_path / "tiled", progress=lambda d, t, m="": calls.append(m))
    tiled = eng.render_frame(spec_tiled, ctx, 1001, tmp_path / "tiled")
    assert sum("refine" in m for m in calls) > 1  # more than one refine pass: tiles
    a = tiled.rgba[..., 3]
    assert np.isfinite(tiled.rgba).all() and a.max() > 0 and np.all(tiled.rgba[..., :3][a == 0] == 0)
    assert not np.array_equal(plain.rgba, tiled.rgba)
