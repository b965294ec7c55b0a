"""``inflate`` on a non-symmetric object: a tilted ellipsoid, ray cast exactly, orbit 70 deg + crane
5 -> 50 deg. The figures asserted here are the ones docs/insert.md quotes (inflate's limits)."""

from __future__ import annotations

import numpy as np
import pytest

from gvfx.engines.base import ElementSpec
from gvfx.engines.sim import insert
from gvfx.engines.sim.common import Anchor, SimCache

from gvfx_insert3d_truth import UP, _ellipsoid_frame, ellipsoid_png, iou, orbit_track, plate_context, raycast_ellipsoid


@pytest.fixture(autouse=True)
def _proxy_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GVFX_PROXIES", str(tmp_path / "proxies"))


def test_inflate_follows_a_tilted_ellipsoid(tmp_path):
    ref = ellipsoid_png(tmp_path / "egg.png")
    height = 2 * float(_ellipsoid_frame()[1][1])
    frames = list(range(1, 9))
    track = orbit_track(frames)
    ctx = plate_context(track)
    anchor = Anchor(np.zeros(3), UP, UP, height)
    # the ellipsoid's depth (0.10 m) over its silhouette width from the front
    spec = ElementSpec("egg", "insert", reference=ref, size_m=height, shutter_frames=0.0,
                       params={"light_dir": (0.3, 0.9, 0.3), "thickness": 0.62})
    meta = insert.metadata(spec)
    assert meta["gvfx:insert:proxy"] == "inflate" and float(meta["gvfx:insert:symmetry"]) < 0.9
    cache = SimCache(tmp_path / "cache")
    insert.simulate(spec, ctx, anchor, cache)
    ious = np.array([iou(insert.render(spec, ctx, anchor, f, cache).rgba[..., 3] > 0.5,
                         raycast_ellipsoid(track.camera, track.transform(f))) for f in frames])
    print("inflate IoU per frame", np.round(ious, 3), "mean", round(float(ious.mean()), 3))
    assert ious[0] > 0.9  # the reference's own view
    assert ious.mean() > 0.92 and ious.min() > 0.85
