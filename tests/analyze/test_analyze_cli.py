"""`gvfx analyze` end to end on a tiny synthetic plate, and the job-file wiring (camera: solve)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from gvfx.cli import main


@pytest.fixture(scope="module")
def tiny_plate(tmp_path_factory) -> tuple[str, object]:
    from gvfx.demo.scene import write_demo_plate

    pattern, track, _ = write_demo_plate(tmp_path_factory.mktemp("plate"), 480, 270, 10)
    return pattern, track


@pytest.fixture(scope="module")
def analyzed(tiny_plate, tmp_path_factory):
    pattern, track = tiny_plate
    out = tmp_path_factory.mktemp("analysis")
    code = main(["analyze", pattern, "-o", str(out), "--proxy-width", "480", "--focal-mm", "35",
                 "--camera-height", "1.6", "-q"])
    assert code == 0
    return out, track


def test_analyze_writes_every_output(analyzed):
    out, track = analyzed
    for name in ("camera.usda", "camera.chan", "points.ply", "report.json", "report.txt"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] and report["static"] == "moving"
    assert report["focal_mm"] == 35.0 and report["focal_estimated"] is False
    assert report["scale_source"] == "hint:camera_height"
    assert report["registered"] == list(range(1001, 1011)) and report["interpolated"] == []
    assert 0 < report["reprojection_error_px"] < 1.0
    assert {"proxies", "colmap", "solve", "total"} <= set(report["seconds"])
    assert "registered 10" in (out / "report.txt").read_text()


def test_camera_files_read_back(analyzed):
    from gvfx.camera_io import read_chan, read_usd_camera

    out, track = analyzed
    cam = read_usd_camera(out / "camera.usda", 480, 270)
    assert cam.frames == tuple(range(1001, 1011))
    assert cam.camera_at(1001).focal_mm == pytest.approx(35.0)
    np.testing.assert_allclose(cam.position(1001), [0.0, 1.6, 0.0], atol=1e-6)
    # the true move, compared as a path: same length within 5% (metric from the height hint)
    true_len = np.sum(np.linalg.norm(np.diff(track.cam_to_world[:, :3, 3], axis=0), axis=1))
    solved_len = np.sum(np.linalg.norm(np.diff(cam.cam_to_world[:, :3, 3], axis=0), axis=1))
    assert solved_len == pytest.approx(true_len, rel=0.05)
    chan = read_chan(out / "camera.chan", 480, 270)
    np.testing.assert_allclose(chan.cam_to_world, cam.cam_to_world, atol=1e-5)


def test_points_file(analyzed):
    from gvfx.analyze.pointcloud import read_ply

    out, _ = analyzed
    pts, cols = read_ply(out / "points.ply")
    assert len(pts) > 200 and cols is not None and cols.shape == pts.shape
    assert np.median(pts[:, 1]) > -0.05  # above the ground


def test_depth_sequence(analyzed):
    from gvfx.exr import read_exr

    out, track = analyzed
    if not (out / "depth" / "depth.1001.exr").exists():
        pytest.skip("the sfm depth back-end (G2) wrote no depth")
    img = read_exr(out / "depth" / "depth.1005.exr")
    z = img.depth()
    conf = img.layer("confidence")[..., 0]
    assert z.shape == (270, 480) and z.dtype == np.float32
    assert conf.min() >= 0 and conf.max() <= 1
    ok = np.isfinite(z)
    assert ok.mean() > 0.3 and np.all(z[ok] > 0)  # coverage is the back-end's business (45% here)
    # metric: the true plate depth and the solved one agree where confident (scale from the hint)
    from gvfx.demo.scene import default_scene, render_plate_frame

    _, z_true = render_plate_frame(default_scene(), track, 1005, grain=False)
    both = ok & np.isfinite(z_true) & (conf > 0.5)
    assert both.mean() > 0.2
    assert np.median(np.abs(z[both] / z_true[both] - 1)) < 0.1


def test_one_frame_plate_is_a_clear_error(tiny_plate, tmp_path, capsys):
    pattern, _ = tiny_plate
    code = main(["analyze", pattern, "-o", str(tmp_path), "--frames", "1001-1001", "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert "1 frame" in err and "longer frame range" in err


def test_bad_scale_points_is_a_clear_error(tiny_plate, tmp_path, capsys):
    pattern, _ = tiny_plate
    assert main(["analyze", pattern, "-o", str(tmp_path), "--scale-points", "1,2,3", "-q"]) == 2
    assert "u1,v1,u2,v2,DIST,FRAME" in capsys.readouterr().err


def test_job_with_camera_solve_analyzes_once(tiny_plate, tmp_path):
    from gvfx.job import load_job
    from gvfx.plate import analysis_dir, open_plate

    pattern, _ = tiny_plate
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump({
        "plate": {"path": pattern, "frames": "1001-1010"},
        "camera": "solve", "depth": {"source": "sfm"}, "output": str(tmp_path / "out"),
        "elements": [{"name": "fire", "effect": "fire", "placement": {"screen": [240, 150], "frame": 1001}}]}))
    job = load_job(job_file)
    assert job.camera.solve and job.depth.source == "sfm"
    plate = open_plate(job)
    out = analysis_dir(job, plate.frames)
    report = out / "report.json"
    assert report.is_file() and json.loads(report.read_text())["static"] == "moving"
    assert plate.camera.position(1001)[1] == pytest.approx(1.6)
    if (out / "depth").is_dir():
        assert plate.depth(1003).shape == (270, 480)
    stamp = report.stat().st_mtime_ns
    open_plate(job)  # cached: no second analysis
    assert report.stat().st_mtime_ns == stamp


def test_job_rejects_file_and_solve(tmp_path):
    from gvfx.errors import JobError
    from gvfx.job import parse_job

    (tmp_path / "cam.usda").write_text("#usda 1.0\n")
    with pytest.raises(JobError, match="either file or solve"):
        parse_job({"plate": {"path": "p.####.exr"}, "camera": {"file": "cam.usda", "solve": True},
                   "elements": [{"effect": "fire"}]}, tmp_path)
    with pytest.raises(JobError, match="depth.source"):
        parse_job({"plate": {"path": "p.####.exr"}, "depth": {"source": "lidar"},
                   "elements": [{"effect": "fire"}]}, tmp_path)
