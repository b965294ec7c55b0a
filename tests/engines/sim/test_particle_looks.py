"""The looks of sparks, rain and snow on the demo plate, and the light emitters cast on the plate.

Truth comes from outside the renderer: the demo plate's own ray-cast geometry, analytic projectile
motion for streak lengths, ray-plane intersections for the light on a surface, and the EXRs a real
render writes (read back with OpenImageIO).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import ndimage

from gvfx.camera import Camera, CameraTrack, look_at
from gvfx.camera_io import write_usd_camera
from gvfx.comp import over
from gvfx.demo.run import demo_job_dict, reference_image
from gvfx.demo.scene import default_scene, demo_camera, render_plate_frame, write_demo_plate
from gvfx.engines.base import ElementSpec, PlateContext, Placement
from gvfx.engines.sim import SimEngine
from gvfx.engines.sim.common import SimCache
from gvfx.engines.sim.emitters import GRAVITY_MPS2, NEAR_BOX_M
from gvfx.exr import read_exr
from gvfx.job import load_job
from gvfx.match import emitted_light
from gvfx.match.stage import rebuild_comp
from gvfx.render import render_job
from gvfx.surface import Plane, raycast_depth

W, H, N = 480, 270, 8
LUMA = np.array([0.2722287168, 0.6740817658, 0.0536895174])


@pytest.fixture(scope="module")
def demo():
    """The demo plate in memory: scene, camera, {frame: (rgb, z)} and a PlateContext with the image."""
    scene = default_scene()
    track = demo_camera(scene, W, H, N)
    frames = {f: render_plate_frame(scene, track, f) for f in track.frames}
    ctx = PlateContext(list(track.frames), track, depth=lambda f: frames[f][1], width=W, height=H,
                       image=lambda f: np.concatenate([frames[f][0], np.ones((H, W, 1), np.float32)], -1))
    return scene, track, frames, ctx


def _render(tmp_path: Path, ctx: PlateContext, spec: ElementSpec, frames: list[int]):
    eng = SimEngine()
    eng.prepare(spec, ctx, tmp_path / spec.name)
    return {f: eng.render_frame(spec, ctx, f, tmp_path / spec.name) for f in frames}


def _demo_sparks(scene, track, **params) -> ElementSpec:
    job = demo_job_dict(scene, "p", "c", list(track.frames), "r")
    el = next(e for e in job["elements"] if e["name"] == "sparks")
    assert "intensity" not in el["params"]  # the demo uses the default brightness
    return ElementSpec("sparks", "sparks", placement=Placement(point=tuple(el["placement"]["point"])), seed=11,
                       params={**el["params"], **params}, shutter_frames=0.5, motion_samples=3,
                       start_frame=track.frames[0])


def _weather(effect: str, track, **params) -> ElementSpec:
    return ElementSpec(effect, effect, placement=Placement(point=(0.0, 0.0, 0.0)), seed=3, params=params,
                       shutter_frames=0.5, motion_samples=5, start_frame=track.frames[0])


# ------------------------------------------------------------------------------------------- sparks
def test_sparks_are_hdr_and_glow(demo, tmp_path):
    scene, track, frames, ctx = demo
    f = track.frames[5]
    ef = _render(tmp_path, ctx, _demo_sparks(scene, track), [f])[f]
    lum = ef.rgba[..., :3] @ LUMA
    streak = ef.rgba[..., 3] > 0.02
    assert streak.sum() > 200
    assert np.median(lum[streak]) > 3.0 and lum.max() > 40.0  # scene-linear HDR, not a 0..1 dot
    glow = (ef.rgba[..., 3] == 0) & (lum > 1e-3)
    assert glow.sum() > streak.sum()  # light around the streaks, with no alpha
    assert np.isfinite(ef.z[glow]).all()  # held out like the sparks it comes from
    plain = _render(tmp_path / "noglow", ctx, _demo_sparks(scene, track, glow=0.0), [f])[f]
    assert np.all(plain.rgba[..., :3][plain.rgba[..., 3] == 0] == 0)
    assert ef.emission is not None and np.array_equal(ef.emission, ef.rgba[..., :3])
    assert ef.lights is not None and len(ef.lights.positions) >= 5


def test_spark_streak_length_is_the_shutter(tmp_path):
    """One spark in free flight: its streak is the projected path over the shutter (within 15%)."""
    cam = Camera(35.0, 36.0, 320, 180)
    frames = list(range(1, 9))
    mats = np.stack([look_at(np.array([0.0, 1.2, 4.0]), np.array([0.0, 1.2, 0.0]))] * len(frames))
    track = CameraTrack(cam, tuple(frames), mats)
    floor = raycast_depth(cam, mats[0], planes=(Plane(np.array([0.0, 1.0, 0.0]), 0.0),))
    ctx = PlateContext(frames, track, depth=lambda f: floor, width=320, height=180)
    for shutter in (0.5, 1.0):
        spec = ElementSpec(f"s{shutter}", "sparks", placement=Placement(point=(-1.5, 1.0, 0.0)), seed=5,
                           shutter_frames=shutter, motion_samples=9, start_frame=1,
                           params={"count": 1, "emit_frames": 0, "speed_mps": 20.0, "spread_deg": 0.0,
                                   "direction": [1.0, 0.3, 0.0], "drag": 0.0, "turbulence_mps": 0.0,
                                   "lifetime_s": 5.0, "glow": 0.0})
        f = 4
        ef = _render(tmp_path, ctx, spec, [f])[f]
        state = SimCache(tmp_path / spec.name).read(f)
        x0, v0 = state["pos"][0].astype(float), state["vel"][0].astype(float)
        g = np.array([0.0, -GRAVITY_MPS2, 0.0])
        ts = np.array([-0.5, 0.5]) * shutter / 24.0
        ends = x0 + v0 * ts[:, None] + 0.5 * g * ts[:, None] ** 2
        uv = np.stack([track.project_world(e[None], f + t * 24.0)[0][0] for e, t in zip(ends, ts)])
        expected = float(np.linalg.norm(uv[1] - uv[0]))
        a = ef.rgba[..., 3].astype(np.float64)
        yy, xx = np.mgrid[0:180, 0:320] + 0.5
        m = a.sum()
        mx, my = (a * xx).sum() / m, (a * yy).sum() / m
        cov = np.cov(np.stack([xx.ravel() - mx, yy.ravel() - my]), aweights=a.ravel(), bias=True)
        lo, hi = np.linalg.eigvalsh(cov)
        measured = float(np.sqrt(12.0 * (hi - lo)))  # a uniform segment of length L has variance L^2/12
        assert expected > 10
        assert abs(measured - expected) < 0.15 * expected, (shutter, measured, expected)


# --------------------------------------------------------------------------------------------- rain
def test_rain_shows_and_never_darkens(demo, tmp_path):
    scene, track, frames, ctx = demo
    picked = track.frames[2::3]
    efs = _render(tmp_path, ctx, _weather("rain", track), picked)
    for f, ef in efs.items():
        plate = np.concatenate([frames[f][0], np.ones((H, W, 1), np.float32)], -1)
        comp = over(plate, ef.rgba, ef.holdout)
        pl, cl = plate[..., :3] @ LUMA, comp[..., :3] @ LUMA
        med = float(np.median(pl))
        covered = ef.rgba[..., 3] > 0.005
        assert covered.mean() > 0.05  # rain over much of the frame
        assert ef.rgba[..., 3].max() < 0.6  # blurred drops are low-alpha
        core = np.percentile((cl - pl)[covered], 99) / med
        assert core > 0.3, core  # bright streak cores: the light the drops catch
        assert np.median(cl) >= med  # the frame brightens, never darkens
        assert np.mean(cl < pl * 0.99) < 1e-3


def test_rain_has_a_near_layer_and_lognormal_drops(demo, tmp_path):
    scene, track, frames, ctx = demo
    f = track.frames[4]
    spec = _weather("rain", track)
    ef = _render(tmp_path, ctx, spec, [f])[f]
    state = SimCache(tmp_path / spec.name).read(f)
    main = state["alive"] & (state["kind"] == 0)
    zc = -(track.to_camera_space(state["pos"][main].astype(float), f)[:, 2])
    near = (zc > 0) & (zc < NEAR_BOX_M)
    assert near.sum() > 0.05 * main.sum()  # the foreground layer, within 3 m of the lens
    visible_near = np.isfinite(ef.z) & (ef.z < NEAR_BOX_M) & (ef.rgba[..., 3] > 0)
    assert visible_near.sum() > 200  # and it is seen (defocused: wide, faint footprints)
    sizes = state["size_m"][state["kind"] == 0].astype(float)
    assert abs(np.median(sizes) - 0.0015) < 0.1 * 0.0015
    assert abs(np.std(np.log(sizes)) - 0.35) < 0.05
    no_near = _render(tmp_path / "nn", ctx, _weather("rain", track, near_fraction=0.0), [f])[f]
    assert not (np.isfinite(no_near.z) & (no_near.z < 2.0)).any()


# --------------------------------------------------------------------------------------------- snow
def test_snow_flakes_are_soft_and_near_ones_defocused(demo, tmp_path):
    scene, track, frames, ctx = demo
    f = track.frames[4]
    far = _render(tmp_path, ctx, _weather("snow", track, count=60, near_fraction=0.0), [f])[f]
    a = far.rgba[..., 3]
    peaks = (a == ndimage.maximum_filter(a, size=9)) & (a > 0.05)
    iy, ix = np.nonzero(peaks)
    ok = (ix > 1) & (ix < W - 2)
    iy, ix = iy[ok], ix[ok]
    assert len(iy) >= 5
    side = 0.5 * (a[iy, ix - 1] + a[iy, ix + 1]) / a[iy, ix]
    assert np.median(side) > 0.25  # a soft gaussian edge, not a one-pixel dot (~0.02)
    sharp = _render(tmp_path / "s", ctx, _weather("snow", track, count=300, near_fraction=1.0, near_fstop=0.0), [f])[f]
    soft = _render(tmp_path / "d", ctx, _weather("snow", track, count=300, near_fraction=1.0, near_fstop=1.0), [f])[f]
    a0, a1 = sharp.rgba[..., 3], soft.rgba[..., 3]
    assert np.percentile(a1[a1 > 0.002], 99) < 0.8 * np.percentile(a0[a0 > 0.002], 99)  # defocus spreads them...
    assert (a1 > 0.002).sum() > 1.5 * (a0 > 0.002).sum()
    assert abs(float(-np.log1p(-np.minimum(a1, 0.999)).sum()) / float(-np.log1p(-np.minimum(a0, 0.999)).sum())
               - 1.0) < 0.25  # ...keeping their covered area


# ------------------------------------------------------------------------------------ emitted light
def test_point_light_on_a_floor_and_a_face_turned_away():
    cam = Camera(30.0, 36.0, 160, 90)
    c2w = look_at(np.array([0.0, 1.5, 3.0]), np.array([0.0, 0.3, 0.0]))
    box = ((-0.3, 0.0, -0.3), (0.3, 0.6, 0.3))
    z = raycast_depth(cam, c2w, planes=(Plane(np.array([0.0, 1.0, 0.0]), 0.0),), boxes=(box,))
    grey = np.full((90, 160, 3), 0.4, np.float32)
    light_pos = np.array([[0.9, 0.3, -0.2]])
    inten = np.array([[2.0, 1.0, 0.5]], np.float32)
    out = emitted_light.plate_light(light_pos, inten, grey, z, cam, c2w, white=0.8)
    # independent truth: each pixel's ray meets the floor (or box) at P with normal n
    uv = np.stack(np.meshgrid(np.arange(160) + 0.5, np.arange(90) + 0.5), -1).reshape(-1, 2)
    pc = cam.unproject(uv, z.reshape(-1).astype(float))
    pw = pc @ c2w[:3, :3].T + c2w[:3, 3]
    on_floor = (np.abs(pw[:, 1]) < 1e-4) & np.isfinite(pw).all(1)
    d = light_pos[0] - pw[on_floor]
    dist = np.linalg.norm(d, axis=1)
    expect = (0.4 / 0.8) / np.pi * inten[0][None] * (d[:, 1] / dist)[:, None] / np.maximum(dist, 0.08)[:, None] ** 2
    got = out.reshape(-1, 3)[on_floor]
    inner = ndimage.binary_erosion(on_floor.reshape(90, 160), iterations=2).reshape(-1)[on_floor]
    assert np.allclose(got[inner], expect[inner], rtol=0.03)
    front = (np.abs(pw[:, 2] - 0.3) < 1e-4) & (pw[:, 1] > 0.02) & (pw[:, 1] < 0.58)  # the box face z = +0.3
    assert front.sum() > 50
    # the light at z = -0.2 is behind the plane of that face: it faces away and gets nothing
    assert np.all(out.reshape(-1, 3)[ndimage.binary_erosion(front.reshape(90, 160)).reshape(-1)] == 0)
    assert np.all(out[~np.isfinite(z)] == 0)


def test_lights_sampled_from_an_emission_layer_keep_its_power():
    cam = Camera(30.0, 36.0, 200, 120)
    c2w = np.eye(4)
    zdist, radius_m, radiance = 4.0, 0.3, 5.0
    uv = np.stack(np.meshgrid(np.arange(200) + 0.5, np.arange(120) + 0.5), -1)
    pc = cam.unproject(uv.reshape(-1, 2), np.full(200 * 120, zdist)).reshape(120, 200, 3)
    disc = np.hypot(pc[..., 0], pc[..., 1] - 0.1) < radius_m
    em = np.where(disc[..., None], np.float32(radiance), np.float32(0)) * np.ones(3, np.float32)
    z = np.where(disc, zdist, np.inf).astype(np.float32)
    pos, inten = emitted_light.sample_lights(em, z, cam, c2w)
    assert 2 <= len(pos) <= emitted_light.MAX_LIGHTS
    assert abs(inten[:, 1].sum() / (radiance * np.pi * radius_m ** 2) - 1.0) < 0.03  # L x area of the disc
    centre = (pos * inten[:, 1:2]).sum(0) / inten[:, 1].sum()
    assert np.allclose(centre, [0.0, 0.1, -zdist], atol=0.01)


# --------------------------------------------------------------------------- a render on the demo plate
@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> tuple[Path, CameraTrack]:
    root = tmp_path_factory.mktemp("looks")
    frames = list(range(1001, 1005))
    pattern, track, scene = write_demo_plate(root / "plate", 320, 180, frames)
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    job = demo_job_dict(scene, "plate/plate.####.exr", "cam.usda", frames, str(reference_image()))
    job["elements"] = [e for e in job["elements"] if e["name"] == "sparks"]
    (root / "job.yaml").write_text(yaml.safe_dump(job))
    render_job(load_job(root / "job.yaml"))
    return root, track


def test_render_writes_emission_and_lights_the_table(shot):
    shot, track = shot
    scene = default_scene()
    f = 1004
    el = read_exr(shot / "elements/sparks/v001/sparks.1004.exr")
    plate = read_exr(shot / "plate/plate.1004.exr")
    rgba, em, pl = el.rgba(), el.layer("emission")[..., :3], el.layer("platelight")[..., :3]
    lum = rgba[..., :3] @ LUMA
    assert np.median(lum[rgba[..., 3] > 0.02]) > 3.0 and lum.max() > 40.0
    assert np.allclose(em, rgba[..., :3], rtol=1e-2, atol=1e-3)  # sparks are all emission
    # the table top around the emitter, from the plate's own depth and camera
    z = plate.channels["Z"]
    cam = track.camera_at(f)
    uv = np.stack(np.meshgrid(np.arange(320) + 0.5, np.arange(180) + 0.5), -1).reshape(-1, 2)
    with np.errstate(invalid="ignore"):  # sky: inf depth
        pw = track.to_world(cam.unproject(uv, z.reshape(-1).astype(float)), f).reshape(180, 320, 3)
    edge = np.asarray(scene.table_edge_point)
    top = (np.abs(pw[..., 1] - scene.table_top_height_m) < 0.005) & (np.linalg.norm(pw - edge, axis=-1) < 0.3)
    top &= rgba[..., 3] < 0.01
    assert top.sum() > 20
    assert np.median(pl[top] @ LUMA) > 0.02  # lit by the sparks
    assert np.all(pl[~np.isfinite(z)] == 0)
    comp = read_exr(shot / "comp/v001/comp.1004.exr").rgba()
    layers = {"rgba": rgba, "holdout": el.layer("holdout")[..., 0], "shadow": el.layer("shadow")[..., 0],
              "lightwrap": el.layer("lightwrap")[..., :3], "grain": el.layer("grain")[..., :3], "platelight": pl}
    rebuilt = rebuild_comp(plate.rgba(), [layers])
    assert np.allclose(comp, rebuilt, rtol=2e-3, atol=2e-3)
    unlit = rebuild_comp(plate.rgba(), [{**layers, "platelight": None}])
    gain = (comp - unlit)[..., :3]
    assert np.allclose(gain[top], pl[top] * (1 - rgba[top][:, 3:4]), rtol=5e-3, atol=2e-3)
