"""The ``sfm`` depth back-end against the demo scene's ground truth."""

from __future__ import annotations


import numpy as np
import pytest
from scipy import ndimage

from gvfx.analyze.depth_backends import get_depth_backend
from gvfx.analyze.depth_sfm import edge_aware_filter, fit_scene_planes, visible_points
from gvfx.analyze.solve import Solve
from gvfx.demo.scene import default_scene, demo_camera, render_plate_frame
from gvfx.errors import DepthError

W, H = 960, 540
FRAMES = [1001, 1012, 1024]  # of a 24-frame move
NOISE_REL = 0.005


def _features(rgb: np.ndarray, n: int) -> np.ndarray:
    """(n, 2) pixel centres of the strongest Harris corners: where a tracker would put points."""
    g = rgb.mean(axis=2)
    gx, gy = ndimage.sobel(g, 1), ndimage.sobel(g, 0)
    sxx, syy, sxy = (ndimage.gaussian_filter(a, 1.5) for a in (gx * gx, gy * gy, gx * gy))
    resp = sxx * syy - sxy * sxy - 0.05 * (sxx + syy) ** 2
    ys, xs = np.nonzero((resp == ndimage.maximum_filter(resp, 5)) & (resp > 0))
    order = np.argsort(-resp[ys, xs])[:n]
    return np.stack([xs[order] + 0.5, ys[order] + 0.5], axis=1)


def ground_truth_solve(frames: list[int], n_per_key: int = 1500, seed: int = 0):
    """A Solve built from the demo's true camera: corners of the first and last frame unprojected with
    the true depth (+0.5% noise), observed wherever they project onto their own surface."""
    rng = np.random.default_rng(seed)
    scene = default_scene()
    track = demo_camera(scene, W, H, 24)
    plates = {f: render_plate_frame(scene, track, f) for f in frames}
    pts = []
    for f in (frames[0], frames[-1]):
        rgb, z = plates[f]
        uv = _features(rgb, n_per_key)
        zz = z[uv[:, 1].astype(int), uv[:, 0].astype(int)]
        ok = np.isfinite(zz)
        zz = zz[ok] * (1 + NOISE_REL * rng.standard_normal(ok.sum()))
        pts.append(track.unproject_world(uv[ok], zz, f))
    points = np.concatenate(pts)
    obs = {}
    for f in frames:
        uv, zp = track.project_world(points, f)
        ids = np.flatnonzero((zp > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H))
        zt = plates[f][1][uv[ids, 1].astype(int), uv[ids, 0].astype(int)]
        seen = np.abs(zp[ids] - zt) < 0.02 * zt
        obs[f] = (ids[seen], uv[ids[seen]])
    solve = Solve(track=track, points=points, point_colors=None, point_errors=np.full(len(points), 0.5),
                  observations=obs, registered=list(frames), interpolated=[], focal_mm=35.0, focal_estimated=False,
                  static="moving", scale_source="ground truth", reprojection_error_px=0.5)
    return solve, plates


@pytest.fixture(scope="module")
def shot():
    return ground_truth_solve(FRAMES)


def _score(z: np.ndarray, conf: np.ndarray, zt: np.ndarray) -> tuple[float, float]:
    solid = np.isfinite(zt)
    good = solid & (conf >= 0.5) & np.isfinite(z)
    return float(np.mean(np.abs(z[good] - zt[good]) / zt[good])), float(good.sum() / solid.sum())


def test_sfm_depth_matches_ground_truth(shot):
    solve, plates = shot
    be = get_depth_backend("sfm")
    calls = []
    out = list(be.estimate_sequence(FRAMES, lambda f: plates[f][0], solve,
                                    progress=lambda d, t, m: calls.append(d)))
    assert [f for f, _, _ in out] == FRAMES and calls == [1, 2, 3]
    for f, z, conf in out:
        zt = plates[f][1]
        assert z.shape == (H, W) and z.dtype == np.float32 and conf.dtype == np.float32
        absrel, coverage = _score(z, conf, zt)
        assert absrel <= 0.10, (f, absrel)  # measured ~0.002-0.004
        assert coverage >= 0.40, (f, coverage)  # measured ~0.93
        sky = ~np.isfinite(zt)
        assert np.mean(np.isinf(z[sky])) >= 0.95 and np.mean(conf[sky] >= 0.5) < 0.01  # bar boundary pixels
        assert np.all(conf[np.isinf(z)] == 0) and 0 <= conf.min() and conf.max() <= 1


def test_interpolated_frame_projects_all_points_with_occlusion(shot):
    solve, plates = shot
    f = FRAMES[1]
    ids, uv, z = visible_points(solve, f)
    solve_no_obs = Solve(**{**solve.__dict__, "observations": {}})
    ids2, uv2, z2 = visible_points(solve_no_obs, f)
    # the z-buffer keeps nearly the same points the observations list (hidden ones drop out)
    assert len(set(ids2) ^ set(ids)) < 0.1 * len(ids)
    _, z_map, conf = next(get_depth_backend("sfm").estimate_sequence([f], lambda k: plates[k][0], solve_no_obs))
    absrel, coverage = _score(z_map, conf, plates[f][1])
    assert absrel <= 0.10 and coverage >= 0.40


def test_planes_found(shot):
    solve, _ = shot
    planes = fit_scene_planes(solve.points, solve.track.cam_to_world[:, :3, 3])
    ground = planes[0].plane
    assert abs(ground.normal @ [0, 1, 0]) > 0.999 and abs(ground.offset) < 0.02  # y = 0
    # the back wall z = -3.4 is among them
    assert any(abs(p.plane.normal[2]) > 0.999 and abs(abs(p.plane.offset) - 3.4) < 0.03 for p in planes)


def test_edge_aware_filter_stops_at_colour_edges():
    guide = np.zeros((20, 40, 3), np.float32)
    guide[:, 20:] = 1.0
    data = np.zeros((20, 40, 2), np.float32)
    data[10, 5] = (1.0, 1.0)  # one point, on the left
    f = edge_aware_filter(data, guide, sigma_spatial_px=10, sigma_range=0.1)
    assert f[10, 19, 0] > 1e3 * f[10, 21, 0]  # across the edge the weight all but vanishes
    assert f[10, 15, 0] > 0.1 * f[10, 5, 0]


def test_no_points_is_a_clear_error(shot):
    solve, plates = shot
    empty = Solve(**{**solve.__dict__, "points": np.zeros((0, 3)), "point_errors": np.zeros(0),
                     "observations": {}, "static": "locked_off"})
    with pytest.raises(DepthError, match="estimator"):
        next(get_depth_backend("sfm").estimate_sequence(FRAMES, lambda k: plates[k][0], empty))
