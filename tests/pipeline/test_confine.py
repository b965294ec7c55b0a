"""Job files: `confine: true` keeps every path inside the shot root; unknown keys and wrong types name
their field in one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gvfx.cli import main
from gvfx.errors import JobError
from gvfx.job import load_job

BASE = {"name": "sh010", "confine": True, "plate": {"path": "plates/p.####.exr"}, "output": ".",
        "elements": [{"name": "fx", "effect": "smoke"}]}


def _write(tmp_path: Path, **changes) -> Path:
    data = {**BASE, **changes}
    p = tmp_path / "shot" / "job.yaml"
    p.parent.mkdir(exist_ok=True)
    p.write_text(yaml.safe_dump(data))
    return p


def test_confined_job_inside_the_root_loads(tmp_path: Path) -> None:
    job = load_job(_write(tmp_path, output="out/../renders"))
    assert job.confine and job.output == tmp_path / "shot" / "out/../renders"
    assert not load_job(_write(tmp_path, confine=False, output="../elsewhere")).confine


@pytest.mark.parametrize("changes, field", [
    ({"plate": {"path": "../../etc/plates/p.####.exr"}}, "plate.path"),
    ({"output": "../.."}, "output"),
    ({"output": "/tmp/elsewhere"}, "output"),
    ({"depth": {"path": "../depth/d.####.exr"}}, "depth.path"),
    ({"match": {"stmap": "sub/../../st.exr"}}, "match.stmap"),
])
def test_paths_escaping_the_shot_root_are_refused(tmp_path: Path, changes: dict, field: str) -> None:
    with pytest.raises(JobError) as err:
        load_job(_write(tmp_path, **changes))
    text = str(err.value)
    assert f"job.yaml: {field}: " in text and "is outside the shot root" in text and "confine: false" in text


def test_reference_and_camera_escaping(tmp_path: Path) -> None:
    outside = tmp_path / "ref.png"
    outside.write_bytes(b"x")
    cam = tmp_path / "cam.chan"
    cam.write_text("1 0 0 0 0 0 0\n")
    with pytest.raises(JobError, match=r"elements\[fx\]\.reference: .* is outside the shot root"):
        load_job(_write(tmp_path, elements=[{"name": "fx", "effect": "smoke", "reference": "../ref.png"}]))
    with pytest.raises(JobError, match=r"camera\.file: .* is outside the shot root"):
        load_job(_write(tmp_path, camera={"file": "../cam.chan"}))


@pytest.mark.parametrize("changes, message", [
    ({"confine": "yes"}, "confine: expected true or false, got 'yes'"),
    ({"comp": 1}, "comp: expected true or false, got 1"),
    ({"name": 12}, "name: expected text, got 12"),
    ({"fps": "24"}, "fps: expected a number, got '24'"),
    ({"outptu": "."}, "job: unknown key(s) outptu"),
    ({"plate": {"path": "p.####.exr", "frame": "1-2"}}, "plate: unknown key(s) frame"),
    ({"elements": [{"name": "fx", "effect": "smoke", "size_m": "big"}]}, "elements[fx].size_m: expected a number"),
    ({"elements": [{"name": "fx", "effect": "smoke", "params": {"nope": 1}}]}, "elements[fx].params: unknown key(s) nope"),
    ({"elements": "smoke"}, "elements: expected a list"),
])
def test_wrong_keys_and_types_name_the_field(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(JobError) as err:
        load_job(_write(tmp_path, **changes))
    assert message in str(err.value)


def test_cli_prints_one_line(tmp_path: Path, capsys) -> None:
    job = _write(tmp_path, output="../../x")
    assert main(["render", str(job), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gvfx: error: ") and "output: " in err[0]
