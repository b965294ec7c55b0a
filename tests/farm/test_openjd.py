"""`gvfx farm openjd`: the job template validates with openjd-model (TASK_CHUNKING), and
``openjd run --step Sim / Render / Finalize`` executes it locally, producing the same frames (bitwise)
as a single-process render."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

openjd_model = pytest.importorskip("openjd.model")

from gvfx.errors import InputError  # noqa: E402
from gvfx.farm.openjd import EXTENSIONS, job_template, validate_job_template, write_job_template  # noqa: E402
from gvfx.job import load_job  # noqa: E402

FRAMES = list(range(1001, 1007))
BIN = Path(sys.executable).parent
OPENJD = shutil.which("openjd", path=str(BIN)) or shutil.which("openjd")
GVFX = shutil.which("gvfx", path=str(BIN)) or shutil.which("gvfx")


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> Path:
    """A tiny shot (48x27, 6 frames, sparks) and its single-process render in ``ref/``."""
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.scene import write_demo_plate
    from gvfx.render import render_job

    root = tmp_path_factory.mktemp("ojdshot")
    _, track, scene = write_demo_plate(root / "plate", 48, 27, FRAMES)
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    job = {"name": "t", "plate": {"path": "plate/plate.####.exr"}, "depth": {"layer": "Z"},
           "camera": {"file": "cam.usda"}, "output": "out",
           "elements": [{"name": "sparks", "effect": "sparks", "placement": {"point": list(scene.table_edge_point)},
                         "size_m": 0.3, "seed": 2, "motion_samples": 2}]}
    (root / "job.yaml").write_text(yaml.safe_dump(job))
    from dataclasses import replace

    render_job(replace(load_job(root / "job.yaml"), output=root / "ref"))
    return root


def test_template_shape_and_validation(shot: Path) -> None:
    t = job_template(load_job(shot / "job.yaml"), chunk_size=4, template_dir=shot, target_runtime_s=600)
    assert t["specificationVersion"] == "jobtemplate-2023-09" and t["extensions"] == ["TASK_CHUNKING"]
    params = {p["name"]: p for p in t["parameterDefinitions"]}
    assert params["JobFile"]["default"] == "job.yaml" and params["OutputDir"]["default"] == "out"
    assert params["Frames"]["default"] == "1001-1006" and params["ChunkSize"]["default"] == 4
    sim, render, final = t["steps"]
    assert [s["name"] for s in t["steps"]] == ["Sim", "Render", "Finalize"]
    assert "--sim-only" in sim["script"]["actions"]["onRun"]["args"]
    assert render["dependencies"] == [{"dependsOn": "Sim"}] and final["dependencies"] == [{"dependsOn": "Render"}]
    (frame,) = render["parameterSpace"]["taskParameterDefinitions"]
    assert frame["type"] == "CHUNK[INT]" and frame["range"] == "{{Param.Frames}}"
    assert frame["chunks"] == {"defaultTaskCount": "{{Param.ChunkSize}}", "rangeConstraint": "CONTIGUOUS",
                               "targetRuntimeSeconds": 600}
    args = render["script"]["actions"]["onRun"]["args"]
    assert args[args.index("--frames") + 1] == "{{Task.Param.Frame}}" and "--resume" in args
    decoded = openjd_model.decode_job_template(template=t, supported_extensions=list(EXTENSIONS))
    assert [s.name for s in decoded.steps] == ["Sim", "Render", "Finalize"]
    validate_job_template(t)
    # without the extension the chunked parameter is refused: the template really uses TASK_CHUNKING
    with pytest.raises(openjd_model.DecodeValidationError, match="TASK_CHUNKING"):
        openjd_model.decode_job_template(template=t, supported_extensions=[])


def test_paths_outside_the_template_folder_have_no_default(shot: Path, tmp_path: Path) -> None:
    t = job_template(load_job(shot / "job.yaml"), template_dir=tmp_path)
    params = {p["name"]: p for p in t["parameterDefinitions"]}
    assert "default" not in params["JobFile"] and "default" not in params["OutputDir"]
    validate_job_template(t)
    with pytest.raises(InputError, match="--chunk-size 0"):
        job_template(load_job(shot / "job.yaml"), chunk_size=0)


def _openjd(template: Path, step: str, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([OPENJD, "run", str(template), "--step", step, "-p", f"Gvfx={GVFX}", *extra],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Session ended with errors" not in proc.stdout, proc.stdout[-3000:] + proc.stderr
    return proc


@pytest.mark.skipif(OPENJD is None or GVFX is None, reason="needs the openjd and gvfx commands")
def test_openjd_run_renders_the_same_frames(shot: Path, tmp_path: Path, capsys) -> None:
    from gvfx.cli import main
    from gvfx.exr import read_exr
    from gvfx.versions import read_version_info

    template = shot / "job-template.yaml"
    assert main(["farm", "openjd", str(shot / "job.yaml"), "-o", str(template), "--chunk-size", "4"]) == 0
    assert "openjd run" in capsys.readouterr().out
    check = subprocess.run([OPENJD, "check", str(template)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "passes validation" in check.stdout

    _openjd(template, "Sim")
    vdir = shot / "out" / "elements" / "sparks" / "v001"
    assert vdir.is_dir() and not list(vdir.glob("*.exr"))  # versions opened, nothing rendered
    render = _openjd(template, "Render")
    # the runner forms the chunks (openjd balances them: 6 frames, at most 4 a chunk -> 3 + 3)
    chunks = [tuple(map(int, m.split("-"))) for m in re.findall(r"Frame\(CHUNK\[INT\]\) = (\d+-\d+)", render.stdout)]
    assert len(chunks) == 2 and all(b - a + 1 <= 4 for a, b in chunks)
    assert [f for a, b in sorted(chunks) for f in range(a, b + 1)] == FRAMES
    _openjd(template, "Finalize")

    for kind, name in (("elements/sparks", "sparks"), ("comp", "comp")):
        got_dir = shot / "out" / kind / "v001"
        assert read_version_info(got_dir)["status"] == "complete"
        for f in FRAMES:
            a = read_exr(shot / "ref" / kind / "v001" / f"{name}.{f}.exr").channels
            b = read_exr(got_dir / f"{name}.{f}.exr").channels
            assert a.keys() == b.keys() and all(np.array_equal(a[c], b[c]) for c in a), f"{kind} frame {f}"
    assert (shot / "out" / "t.otio").exists()


def test_write_json_template(shot: Path, tmp_path: Path) -> None:
    import json

    out = write_job_template(load_job(shot / "job.yaml"), tmp_path / "t.json", frames=(1002, 1005))
    t = json.loads(out.read_text())
    assert {p["name"]: p.get("default") for p in t["parameterDefinitions"]}["Frames"] == "1002-1005"
