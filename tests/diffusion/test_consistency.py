"""Consistency across frames: on a static plate (with per-frame grain), shared noise plus the previous
frame's result as the init changes the generated region far less from frame to frame than independent
generations do."""

from __future__ import annotations

import numpy as np
import pytest

import gvfx_image_testkit as kit
from gvfx.engines.diffusion import DiffusionEngine

FRAMES = (1001, 1002, 1003, 1004)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return kit.tiny_store(tmp_path_factory)


def _frame_to_frame_change(store, tmp_path, consistency: bool) -> float:
    ctx = kit.plate_ctx(FRAMES, grain=0.01)
    spec = kit.spec("insert", store, consistency=consistency, consistency_strength=0.5)
    eng = DiffusionEngine()
    eng.prepare(spec, ctx, tmp_path / f"c{int(consistency)}")
    els = [eng.render_frame(spec, ctx, f, tmp_path / f"c{int(consistency)}").rgba for f in FRAMES]
    inside = els[0][..., 3] > 0.5
    return float(np.mean([np.abs(b[inside] - a[inside]).mean() for a, b in zip(els, els[1:])]))


def test_consistency_lowers_frame_to_frame_change(store, tmp_path):
    on = _frame_to_frame_change(store, tmp_path, True)
    off = _frame_to_frame_change(store, tmp_path, False)
    print(f"mean frame-to-frame change inside the mask: consistency on {on:.4f}, off {off:.4f}")
    assert on < 0.7 * off
