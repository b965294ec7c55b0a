"""The ``estimator`` depth back-end: alignment, temporal smoothing, and the real loading code on a tiny
random Depth Anything written by ``model/tiny.py``."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from gvfx.analyze.align import (AffineFit, apply_inverse_depth_affine, fit_inverse_depth_affine,
                                sample_bilinear, smooth_fits)
from gvfx.analyze.depth_backends import get_depth_backend
from gvfx.analyze.depth_estimator import load_depth_model
from gvfx.analyze.solve import Solve
from gvfx.demo.scene import default_scene, demo_camera, render_plate_frame
from gvfx.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def _tiny_module():
    spec = importlib.util.spec_from_file_location("gvfx_model_tiny", REPO / "model" / "tiny.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny_da(tmp_path_factory) -> Path:
    return _tiny_module().build_tiny("depth_anything", tmp_path_factory.mktemp("models") / "tiny_da")


def _truth_depth(h: int = 60, w: int = 80) -> np.ndarray:
    """A ground plane rising to a wall: 2..12 m."""
    v = np.linspace(0, 1, h)[:, None] * np.ones((1, w))
    return (2.0 + 10.0 * (1 - v) ** 2 + 0.5 * np.sin(np.linspace(0, 6, w))[None, :]).astype(np.float64)


# ------------------------------------------------------------------------------------------ alignment

def test_affine_alignment_recovers_depth():
    rng = np.random.default_rng(1)
    z_true = _truth_depth()
    s_true, t_true = 0.37, 0.021
    d = (1.0 / z_true - t_true) / s_true  # what an affine-invariant model would output
    uv = rng.uniform([0, 0], [80, 60], size=(300, 2))
    z_pts = sample_bilinear(z_true, uv)
    d_pts = (1.0 / z_pts - t_true) / s_true
    z_pts_bad = z_pts.copy()
    z_pts_bad[:20] *= 3.0  # 7% gross outliers (points across an edge) must not matter
    fit = fit_inverse_depth_affine(d_pts, z_pts_bad)
    assert fit.valid and fit.n_points == 300 and fit.n_inliers >= 275
    assert abs(fit.scale / s_true - 1) < 1e-4 and abs(fit.shift / t_true - 1) < 1e-4
    z = apply_inverse_depth_affine(d, fit.scale, fit.shift)
    np.testing.assert_allclose(z, z_true, rtol=1e-4)


def test_alignment_with_too_few_points_is_invalid():
    assert not fit_inverse_depth_affine(np.array([1.0, 2.0]), np.array([3.0, 4.0])).valid


def test_temporal_smoothing_lowers_flicker():
    rng = np.random.default_rng(2)
    z_true = _truth_depth()
    s_true, t_true = 0.37, 0.021
    d = (1.0 / z_true - t_true) / s_true  # a static background: the model sees the same every frame
    fits = []
    for _ in range(40):  # per-frame fits jitter by ~3% in s and in t (noisy sparse points)
        fits.append(AffineFit(s_true * (1 + 0.03 * rng.standard_normal()),
                              t_true * (1 + 0.03 * rng.standard_normal()), 0.02, 100, 100))
    fits[17] = AffineFit(s_true * 1.5, t_true * 0.2, 0.02, 100, 100)  # one bad frame
    fits[25] = AffineFit(1.0, 0.0, np.inf, 3, 0, valid=False)  # one frame with too few points

    def flicker(st):
        zs = [apply_inverse_depth_affine(d, s, t) for s, t in st]
        return float(np.mean([np.mean(np.abs(b - a) / a) for a, b in zip(zs, zs[1:])]))

    raw = [(f.scale, f.shift) if f.valid else (fits[24].scale, fits[24].shift) for f in fits]
    smoothed = smooth_fits(fits, radius=4, sigma_frames=2.0)
    before, after = flicker(raw), flicker(smoothed)
    assert after < 0.35 * before, (before, after)  # measured: 0.048 -> 0.004 mean |dz|/z per frame
    err = np.mean([np.mean(np.abs(apply_inverse_depth_affine(d, s, t) - z_true) / z_true) for s, t in smoothed])
    assert err < 0.02  # and it stays metric (the bad frame is rejected, not averaged in)


# ------------------------------------------------------------------------------------------ model

def test_tiny_model_backend_yields_metric_depth(tiny_da):
    w, h = 96, 54
    scene = default_scene()
    track = demo_camera(scene, w, h, 4)
    frames = list(track.frames)
    plates = {f: render_plate_frame(scene, track, f) for f in frames}
    rng = np.random.default_rng(0)
    rgb0, z0 = plates[frames[0]]
    uv = rng.uniform([0, 0], [w, h], size=(400, 2))
    zz = z0[uv[:, 1].astype(int), uv[:, 0].astype(int)]
    keep = np.isfinite(zz)
    points = track.unproject_world(uv[keep], zz[keep], frames[0])
    solve = Solve(track=track, points=points, point_colors=None, point_errors=np.full(len(points), 0.3),
                  observations={}, registered=frames, interpolated=[], focal_mm=35.0, focal_estimated=False,
                  static="moving", scale_source="test", reprojection_error_px=0.3)
    be = get_depth_backend("estimator")
    done = []
    out = list(be.estimate_sequence(frames, lambda f: plates[f][0], solve, model_dir=tiny_da, smooth_radius=2,
                                    progress=lambda d, t, m: done.append((d, t))))
    assert [f for f, _, _ in out] == frames and done[-1] == (4, 4)
    for f, z, conf in out:
        assert z.shape == (h, w) and z.dtype == np.float32 and conf.shape == (h, w)
        finite = np.isfinite(z)
        assert finite.mean() > 0.5 and (z[finite] > 0).all()
        assert np.all(conf[~finite] == 0) and conf.min() >= 0 and conf.max() <= 1
        # metric: a random model cannot be right, but the alignment puts it on the plate's scale
        med = float(np.median(z[finite]))
        assert 1.0 < med < 20.0, med


def test_pickle_only_folder_refused(tmp_path, tiny_da):
    import torch

    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(tiny_da / name, folder / name)
    model = load_depth_model(tiny_da).model
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(InputError, match="pytorch_model.bin.*refusing pickled weights"):
        load_depth_model(folder)
    loaded = load_depth_model(folder, allow_pickle=True)  # explicitly allowed: loads
    assert loaded.output_kind == "relative"


def test_missing_folder_and_files_are_clear(tmp_path, tiny_da):
    with pytest.raises(InputError, match="not found.*model.safetensors"):
        load_depth_model(tmp_path / "nowhere")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(tiny_da / "config.json", partial / "config.json")
    with pytest.raises(InputError, match="no preprocessor_config.json"):
        load_depth_model(partial)
    shutil.copy(tiny_da / "preprocessor_config.json", partial / "preprocessor_config.json")
    with pytest.raises(InputError, match="no weights"):
        load_depth_model(partial)


def test_backend_aligns_an_affine_model_to_metric(monkeypatch):
    """End to end with a stand-in model whose output is the true disparity under a different unknown
    affine map every frame: the back-end must return metric depth close to the truth."""
    import gvfx.analyze.depth_estimator as est

    w, h = 160, 90
    scene = default_scene()
    track = demo_camera(scene, w, h, 5)
    frames = list(track.frames)
    plates = {f: render_plate_frame(scene, track, f) for f in frames}
    affine = {f: (0.5 + 0.1 * i, 0.01 * i) for i, f in enumerate(frames)}  # keeps disparity > 0
    calls = iter(frames)

    class Oracle:
        output_kind = "relative"

        def predict(self, srgb):
            f = next(calls)
            z = plates[f][1][::2, ::2]  # half resolution, like a model's working size
            s, t = affine[f]
            return np.where(np.isfinite(z), (1.0 / z - t) / s, 0.0).astype(np.float32)

    monkeypatch.setattr(est, "load_depth_model", lambda *a, **k: Oracle())
    rng = np.random.default_rng(3)
    pts = []
    for f in frames:
        uv = rng.uniform([0, 0], [w, h], size=(200, 2))
        zz = plates[f][1][uv[:, 1].astype(int), uv[:, 0].astype(int)]
        ok = np.isfinite(zz)
        pts.append(track.unproject_world(uv[ok], zz[ok] * (1 + 0.005 * rng.standard_normal(ok.sum())), f))
    points = np.concatenate(pts)
    solve = Solve(track=track, points=points, point_colors=None, point_errors=np.full(len(points), 0.3),
                  observations={}, registered=frames, interpolated=[], focal_mm=35.0, focal_estimated=False,
                  static="moving", scale_source="test", reprojection_error_px=0.3)
    # the model's scale changes every frame, so no temporal smoothing of (s, t) here: radius 0
    out = list(get_depth_backend("estimator").estimate_sequence(frames, lambda f: plates[f][0], solve,
                                                                model_dir="unused", smooth_radius=0))
    for f, z, conf in out:
        zt = plates[f][1]
        good = np.isfinite(zt) & (conf >= 0.5) & np.isfinite(z)
        assert good.sum() > 0.5 * np.isfinite(zt).sum()
        assert np.mean(np.abs(z[good] - zt[good]) / zt[good]) < 0.02
        assert np.mean(np.isinf(z[~np.isfinite(zt)])) > 0.9  # sky (disparity 0) stays unknown
