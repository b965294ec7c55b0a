"""`gvfx demo` end to end at a small size, with and without `--solve`."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import yaml
from PIL import Image

from gvfx.cli import main
from gvfx.exr import read_exr
from gvfx.sequence import discover


def _element_alpha(out: Path, name: str) -> float:
    seq = discover(next((out / "elements" / name).glob("v*")) / f"{name}.####.exr")
    return max(float(read_exr(seq.path(f)).channels["A"].max()) for f in seq.frames)


def test_demo_writes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quiet", "--frames", "6", "--resolution", "160x90", "--out", str(out)]) == 0
    assert len(discover(out / "plate" / "plate.####.exr").frames) == 6
    for name in ("fire", "sparks", "ball"):
        assert _element_alpha(out, name) > 0.2, name
    assert len(discover(out / "comp" / "v001" / "comp.####.exr").frames) == 6
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width > 160 * 3 and sheet.height > 90 * 4
    gif = Image.open(out / "comp_preview.gif")
    assert gif.n_frames >= 2
    tl = otio.adapters.read_from_file(str(out / "demo.otio"))
    assert {t.name for t in tl.tracks} >= {"plate", "fire", "sparks", "ball", "comp"}
    job = yaml.safe_load((out / "demo_job.yaml").read_text())
    assert job["camera"]["file"].endswith("camera.usda")
    # the written job re-renders as a new version, as the summary says
    assert main(["render", str(out / "demo_job.yaml"), "--quiet"]) == 0
    assert (out / "elements" / "ball" / "v002").is_dir()


def test_demo_solve_uses_the_solved_camera_and_depth(tmp_path: Path) -> None:
    out = tmp_path / "solve"
    assert main(["demo", "--quiet", "--solve", "--frames", "12", "--resolution", "480x270", "--out", str(out)]) == 0
    job = yaml.safe_load((out / "demo_job.yaml").read_text())
    assert job["camera"].get("solve") is True and job["depth"]["source"] == "sfm"
    assert all("screen" in el["placement"] for el in job["elements"])
    reports = list((out / "analysis").glob("*/report.json"))
    assert len(reports) == 1
    report = yaml.safe_load(reports[0].read_text())
    assert report["complete"] and report["static"] == "moving"
    assert report["registered"] == list(range(1001, 1013)) and report["interpolated"] == []
    assert report["scale_source"] == "hint:camera_height"  # the demo job gives the on-set camera height
    assert (reports[0].parent / "camera.usda").exists()
    assert (out / "depth_sheet.png").exists()
    for name in ("fire", "sparks", "ball"):
        assert _element_alpha(out, name) > 0.2, name
