"""The camera solve on plates gvfx was not tuned on: a ray-cast scene (tests/analyze/raycast_plates.py)
seen by seven kinds of camera move, each checked against the true camera: the motion class from the
matches, the registered frames, the focal length (<= 2%) and the camera path (<= 1% of its length),
and the wording when a solve fails."""

from __future__ import annotations

import numpy as np
import pytest

from analyze_plates import pose_similarity_errors
from gvfx.analyze.ladder import enough_registered, focal_from_attributes, ladder
from gvfx.analyze.solve import Solve, SolveOptions, solve_camera
from gvfx.errors import AnalyzeError
from raycast_plates import render, track

N_FRAMES = 16
W, H = 480, 270
FOCAL_MM = 32.0


class _Solves:
    """One solve per move, made on first use and kept for the module (an AnalyzeError is kept too)."""

    def __init__(self, tmp_path_factory) -> None:
        self._tmp = tmp_path_factory
        self._done: dict[str, tuple] = {}

    def get(self, move: str, **opts) -> tuple:
        key = move + repr(sorted(opts.items()))
        if key not in self._done:
            tr = track(move, W, H, N_FRAMES, FOCAL_MM)
            imgs, _ = render(tr)
            try:
                out: Solve | AnalyzeError = solve_camera(
                    list(tr.frames), imgs.__getitem__, W, H, SolveOptions(proxy_width=W, **opts),
                    work_dir=self._tmp.mktemp(move), plate=f"{move}.####.exr")
            except AnalyzeError as exc:
                out = exc
            self._done[key] = (tr, out)
        return self._done[key]


@pytest.fixture(scope="module")
def solves(tmp_path_factory) -> _Solves:
    return _Solves(tmp_path_factory)


def _check_moving(tr, solve, *, focal_given: bool = False) -> dict:
    assert isinstance(solve, Solve), solve
    assert solve.static == "moving", solve.motion
    assert solve.motion.startswith("moving")
    assert solve.registered == list(tr.frames) and solve.interpolated == []
    assert solve.focal_estimated is not focal_given
    assert abs(solve.focal_mm / FOCAL_MM - 1) <= 0.02, solve.focal_mm
    err = pose_similarity_errors(solve.track, tr)
    assert err["centre_rel"] <= 0.01, err
    assert err["rotation_deg"] < 0.5, err
    assert len(solve.points) > 500
    assert solve.reprojection_error_px < 1.0
    return err


@pytest.mark.parametrize("move", ["sideways", "orbit", "crane", "handheld"])
def test_moving_camera_matches_the_truth(solves, move):
    tr, solve = solves.get(move)
    _check_moving(tr, solve)
    assert len(solve.attempts) == 1 and solve.attempts[0]["try"] == "default"


def test_dolly_with_the_lens_from_the_camera_report(solves):
    """Forward motion barely constrains the focal (bare COLMAP: 29.7 mm of 32): given, the path is exact."""
    tr, solve = solves.get("dolly", focal_mm=FOCAL_MM)
    _check_moving(tr, solve, focal_given=True)
    assert solve.focal_mm == FOCAL_MM


def test_pan_is_nodal_from_the_matches(solves):
    tr, solve = solves.get("pan")
    assert isinstance(solve, Solve), solve
    assert solve.static == "nodal" and solve.motion.startswith("nodal")
    assert solve.registered == list(tr.frames)
    assert solve.focal_estimated and abs(solve.focal_mm / FOCAL_MM - 1) <= 0.02, solve.focal_mm
    for k in range(N_FRAMES):  # rotations relative to the first frame match the truth
        rel_s = solve.track.cam_to_world[0, :3, :3].T @ solve.track.cam_to_world[k, :3, :3]
        rel_t = tr.cam_to_world[0, :3, :3].T @ tr.cam_to_world[k, :3, :3]
        assert np.degrees(np.arccos(np.clip((np.trace(rel_s.T @ rel_t) - 1) / 2, -1, 1))) < 0.5
    assert np.ptp(solve.track.cam_to_world[:, :3, 3], axis=0).max() < 1e-9
    assert len(solve.points) == 0


def test_locked_off_plate(solves):
    tr, solve = solves.get("locked")
    assert isinstance(solve, Solve), solve
    assert solve.static == "locked_off" and solve.motion.startswith("locked_off")
    assert solve.registered == list(tr.frames)
    assert not solve.focal_estimated  # cannot be measured: assumed, and said so
    assert any("focal length cannot be measured" in w for w in solve.warnings)
    np.testing.assert_allclose(solve.track.cam_to_world, np.repeat(solve.track.cam_to_world[:1], N_FRAMES, 0))


def test_a_failed_solve_is_an_error_with_its_reason_never_nodal(solves):
    """A straight dolly: COLMAP alone initialises nothing usable; gvfx climbs its ladder, then says why."""
    _, exc = solves.get("dolly_straight")
    assert isinstance(exc, AnalyzeError), f"expected a failed solve, got {exc.static}"
    text = str(exc)
    assert text.startswith("dolly_straight.####.exr: the camera solve failed")
    assert "not a nodal one" in text
    assert "after 3 tries (default:" in text and "relaxed initialisation:" in text
    assert "more features, exhaustive matching:" in text
    assert "--focal-mm" in exc.hint


def test_ladder_rungs_and_when_to_stop():
    rungs = ladder(16, max_features=4096, overlap=8, focal_px=None, metadata_focal_px=400.0)
    assert [r.name.split(" (")[0] for r in rungs] == ["default", "relaxed initialisation",
                                                      "more features, exhaustive matching",
                                                      "fixed focal from the plate metadata"]
    assert rungs[1].args["reuse_features"] and rungs[1].args["init_min_tri_angle"] < 16.0
    assert rungs[2].args["max_features"] == 8192 and rungs[2].args["exhaustive"]
    assert rungs[3].args["focal_px"] == 400.0
    long = ladder(200, max_features=4096, overlap=8, focal_px=300.0, metadata_focal_px=400.0)
    assert len(long) == 3 and long[2].args["overlap"] == 24 and "exhaustive" not in long[2].args
    assert enough_registered(15, 16) and not enough_registered(14, 16) and not enough_registered(2, 3)
    assert focal_from_attributes({"nominalFocalLength": 35.0}) == 35.0
    assert focal_from_attributes({"focalLength": "bad", "pinholeFocalLength": 0.0}) is None
