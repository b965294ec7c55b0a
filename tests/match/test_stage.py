"""The match stage through the render pipeline: layers, rebuild recipe, overscan, estimates, settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from gvfx.engines.base import ElementFrame
from gvfx.errors import JobError
from gvfx.exr import read_exr
from gvfx.exr_info import read_info
from gvfx.match import stage as stage_mod
from gvfx.match.stage import (MatchSettings, MatchedFrame, PlateSample, estimate, layer_dict, match_frame, occlude,
                              rebuild_comp)

W, H = 128, 72
FRAMES = [1001, 1002, 1003]
HALF_TOL = dict(rtol=2e-3, atol=2e-3)


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """The demo plate at a tiny size, and a job with the demo's ball rolling on the table."""
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.run import reference_image
    from gvfx.demo.scene import write_demo_plate

    root = tmp_path_factory.mktemp("shot")
    pattern, track, scene = write_demo_plate(root / "plate", W, H, FRAMES)
    write_usd_camera(root / "plate" / "camera.usda", track, fps=24.0)
    cx, top_y, cz = scene.table_top_center
    job = {"version": 1, "name": "t", "plate": {"path": str(Path(pattern).relative_to(root)), "frames": "1001-1003"},
           "depth": {"layer": "Z"}, "camera": {"file": "plate/camera.usda"}, "output": "out",
           "match": {"light_dir": [-0.45, 0.8, 0.4], "overscan_px": 8},
           "elements": [{"name": "ball", "effect": "insert", "reference": str(reference_image()),
                         "placement": {"point": [cx + 0.05, top_y, cz + 0.1]}, "size_m": 0.3, "seed": 3,
                         "params": {"velocity_mps": [1.6, 0.0, 0.15]}}]}
    return root, job


def _render(root: Path, job: dict, name: str, frames=None):
    from gvfx.job import load_job
    from gvfx.render import render_job

    p = root / f"{name}.yaml"
    p.write_text(yaml.safe_dump({**job, "output": name}))
    return render_job(load_job(p), frames=frames, write_timeline_file=False)


@pytest.fixture(scope="module")
def rendered(shot):
    root, job = shot
    return _render(root, job, "full")


def test_rebuild_from_written_layers_equals_written_comp(rendered):
    from gvfx.render import _read_matched_layers
    from gvfx.sequence import frame_path

    res = rendered.elements["ball"]
    for f in FRAMES:
        layers = _read_matched_layers(frame_path(res.pattern, f))
        assert set(layers) == {"rgba", "holdout", "shadow", "lightwrap", "grain"}
        rebuilt = rebuild_comp(rendered.plate.rgba(f), [layers])
        comp = read_exr(frame_path(rendered.comp.pattern, f)).rgba()
        assert np.allclose(rebuilt, comp, **HALF_TOL)
    # the element changes the plate: visible element pixels and a shadow
    img = read_exr(frame_path(res.pattern, FRAMES[1]))
    assert img.channels["A"].max() > 0.9 and img.channels["shadow.A"].max() > 0.3


def test_written_element_has_every_layer_overscan_and_estimates(rendered):
    from gvfx.sequence import frame_path

    path = frame_path(rendered.elements["ball"].pattern, FRAMES[0])
    part = read_info(path).parts[0]
    assert part.display_window == (0, 0, W - 1, H - 1)
    assert part.data_window == (-8, -8, W - 1 + 8, H - 1 + 8)
    names = {c for c, _ in part.channels}
    for c in ["R", "G", "B", "A", "Z", "holdout.A", "shadow.A", "lightwrap.R", "grain.R", "motion.U", "motion.V"]:
        assert c in names
    meta = part.attributes
    for key in ["grain", "colour", "focus_m", "fstop", "haze", "light_dir", "sources", "settings"]:
        assert f"gvfx:match:{key}" in meta
    assert '"light_dir": "given"' in meta["gvfx:match:sources"]
    assert rendered.estimates["ball"].light_dir == pytest.approx(tuple(np.array([-0.45, 0.8, 0.4]) / np.linalg.norm([-0.45, 0.8, 0.4])), abs=1e-5)


def test_overscan_display_pixels_equal_a_render_without_overscan(shot, rendered):
    """The engine's pixels inside the display window do not change with the margin."""
    from gvfx.engines import get_engine
    from gvfx.job import load_job
    from gvfx.match.lens import crop, overscan_context, overscan_spec
    from gvfx.plate import open_plate

    root, _ = shot
    job = load_job(root / "full.yaml")
    plate = open_plate(job)
    ctx = plate.context()
    spec = job.elements[0]
    eng = get_engine("insert" if False else spec.engine)
    cache = next((root / "full" / "cache").iterdir())
    big = eng.render_frame(overscan_spec(spec, 8, W, H), overscan_context(ctx, 8), FRAMES[1], cache)
    eng.prepare(spec, ctx, root / "cache0")
    small = eng.render_frame(spec, ctx, FRAMES[1], root / "cache0")
    assert big.rgba.shape == (H + 16, W + 16, 4)
    assert np.allclose(crop(big.rgba, 8), small.rgba, atol=1e-4)
    assert small.rgba[..., 3].max() > 0.5


def test_a_chunk_renders_the_same_pixels(shot, rendered):
    from gvfx.sequence import frame_path

    root, job = shot
    chunk = _render(root, job, "chunk", frames=(1002, 1002))
    a = read_exr(frame_path(rendered.elements["ball"].pattern, 1002)).channels
    b = read_exr(frame_path(chunk.elements["ball"].pattern, 1002)).channels
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=True), k


# ------------------------------------------------------------------------------------ unit level

def _sample(z=None):
    from gvfx.camera import Camera, CameraTrack

    cam = Camera(35.0, 36.0, 64, 48)
    rgb = np.full((48, 64, 3), 0.18, np.float32)
    return PlateSample(1, rgb, z, CameraTrack.static(cam, [1, 2]))


def test_defocus_uses_the_given_focus_and_fstop(monkeypatch):
    from gvfx.match import defocus as defocus_mod

    z_plate = np.full((48, 64), 4.0, np.float32)
    st = MatchSettings(focus_m=3.0, fstop=2.0, grain=False, colour_strength=0.0, haze=False, lightwrap_strength=0.0,
                       shadow_strength=0.0, contact_strength=0.0, light_dir=(0, 1, 0))
    est = estimate(st, _sample(z_plate))
    assert (est.focus_m, est.fstop, est.focus_estimated) == (3.0, 2.0, False)
    assert est.sources["focus"] == "given"
    seen = {}

    def fake_defocus(rgba, z, radius):
        seen["radius"] = np.asarray(radius)
        return rgba

    monkeypatch.setattr(defocus_mod, "defocus", fake_defocus)
    rgba = np.zeros((48, 64, 4), np.float32)
    rgba[10:20, 10:20] = 1.0
    z = np.where(rgba[..., 3] > 0, 0.6, np.inf).astype(np.float32)  # near: a large circle of confusion
    s = _sample(z_plate)
    match_frame(ElementFrame(rgba, z, np.zeros((48, 64), np.float32)), frame=1, plate_rgb=s.rgb, plate_z=z_plate,
                track=s.track, settings=st, estimates=est, seed=1)
    cam = s.track.camera
    expect = defocus_mod.coc_radius_px(np.float32(0.6), focus_m=3.0, focal_mm=cam.focal_mm, fstop=2.0,
                                       haperture_mm=cam.haperture_mm, width_px=cam.width)
    assert np.allclose(np.max(seen["radius"]), expect) and float(expect) > 0.5  # the element's circle of confusion


def test_estimates_are_overridable_and_serialisable():
    from gvfx.match.grain import GrainProfile

    prof = GrainProfile((0.0, 1.0), ((0.01, 0.02, 0.03),), 0.5, (100,))
    st = MatchSettings(grain_profile=prof.to_dict(), haze_density_per_m=0.05, haze_colour=(0.5, 0.6, 0.7),
                       light_dir=(0, 2, 0), colour_strength=0.0)
    est = estimate(st, _sample(np.full((48, 64), 5.0, np.float32)))
    assert est.grain == prof and est.sources["grain"] == "given"
    assert est.haze.density_per_m == 0.05 and tuple(est.haze.colour) == (0.5, 0.6, 0.7)
    assert est.light_dir == (0.0, 1.0, 0.0)
    meta = est.metadata()
    import json

    assert json.loads(meta["gvfx:match:grain"]) == prof.to_dict()
    # printed values go back into a job's match: section
    again = MatchSettings.from_dict({"grain_profile": json.loads(meta["gvfx:match:grain"])})
    assert estimate(again, _sample()).grain == prof


def test_settings_are_validated_by_field_name():
    with pytest.raises(JobError, match="match.holdout_mode"):
        MatchSettings.from_dict({"holdout_mode": "bogus"})
    with pytest.raises(JobError, match="unknown key"):
        MatchSettings.from_dict({"shaddow_strength": 1})
    with pytest.raises(JobError, match="match.light_dir"):
        MatchSettings.from_dict({"light_dir": [1, 2]})
    base = MatchSettings.from_dict({"shadow_strength": 0.3})
    el = MatchSettings.from_dict({"grain": False}, "elements[a].match", base=base)
    assert (el.shadow_strength, el.grain) == (0.3, False)
    assert {p.name for p in stage_mod.MATCH_PARAMS} == {f.name for f in dataclasses.fields(MatchSettings)}
    for p in stage_mod.MATCH_PARAMS:
        assert getattr(MatchSettings(), p.name) == p.default


def test_job_match_sections(shot):
    from gvfx.job import parse_job

    root, job = shot
    d = {**job, "elements": [{**job["elements"][0], "match": {"grain": False}}]}
    parsed = parse_job(d, root)
    assert parsed.match_settings().overscan_px == 8
    assert parsed.match_settings("ball").grain is False and parsed.match_settings("ball").overscan_px == 8
    with pytest.raises(JobError, match=r"elements\[ball\].match.k1"):
        parse_job({**job, "elements": [{**job["elements"][0], "match": {"k1": "x"}}]}, root)


def _mf(rgba, z, hold=None):
    h, w = z.shape
    zero = np.zeros((h, w), np.float32)
    return MatchedFrame(rgba=rgba, z=z, holdout=zero.copy() if hold is None else hold, shadow=zero.copy(),
                        lightwrap=np.zeros((h, w, 3), np.float32), grain=np.zeros((h, w, 3), np.float32),
                        motion=np.zeros((h, w, 2), np.float32))


def test_occlusion_makes_the_plus_recipe_equal_the_depth_sorted_over():
    from gvfx.comp import comp_elements

    rng = np.random.default_rng(1)
    h, w = 16, 16
    plate = rng.random((h, w, 4)).astype(np.float32)
    els = []
    for _ in range(3):
        a = rng.random((h, w)).astype(np.float32) * (rng.random((h, w)) > 0.3)
        rgba = np.concatenate([rng.random((h, w, 3)).astype(np.float32) * a[..., None], a[..., None]], -1)
        z = np.where(a > 0, rng.uniform(1, 5, (h, w)), np.inf).astype(np.float32)
        hold = (rng.random((h, w)) * 0.5).astype(np.float32)
        els.append((rgba, z, hold))
    expect = comp_elements(plate, els)
    mfs = [_mf(r.copy(), z, hold.copy()) for r, z, hold in els]
    occlude(mfs)
    got = rebuild_comp(plate, [layer_dict(m) for m in mfs])
    assert np.allclose(got, expect, atol=1e-5)


def test_shadow_darkens_only_the_plate_and_holdout_hides():
    h, w = 4, 4
    plate = np.ones((h, w, 4), np.float32)
    mf = _mf(np.zeros((h, w, 4), np.float32), np.full((h, w), np.inf, np.float32))
    mf.shadow[0, 0] = 0.5
    mf.rgba[1, 1] = (2.0, 2.0, 2.0, 1.0)
    mf.holdout[1, 1] = 1.0
    comp = rebuild_comp(plate, [layer_dict(mf)])
    assert np.allclose(comp[0, 0], (0.5, 0.5, 0.5, 1.0)) and np.allclose(comp[1, 1], 1.0)


def test_gvfx_match_on_a_user_element(shot, rendered, tmp_path):
    """`gvfx match`: a rendered element sequence re-matched to the plate, estimates printed, comp rebuilt."""
    import subprocess
    import sys

    root, job = shot
    plate = str(root / job["plate"]["path"])
    el = rendered.elements["ball"].pattern
    settings = tmp_path / "m.yaml"
    settings.write_text("match: {light_dir: [0, 1, 0], focus_m: 5.0, fstop: 8.0}\n")
    out = subprocess.run([sys.executable, "-m", "gvfx", "match", "--plate", plate, "--element", el,
                          "--camera", str(root / "plate" / "camera.usda"), "-o", str(tmp_path / "o"),
                          "--settings", str(settings), "-q"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "focus_m: 5.0" in out.stdout and "light_dir:" in out.stdout and "grain:" in out.stdout
    from gvfx.render import _read_matched_layers

    for f in FRAMES:
        layers = _read_matched_layers(tmp_path / "o" / f"element.{f}.exr")
        comp = read_exr(tmp_path / "o" / f"comp.{f}.exr").rgba()
        assert np.allclose(rebuild_comp(rendered.plate.rgba(f), [layers]), comp, **HALF_TOL)
