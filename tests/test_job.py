"""Job files: parsing, defaults, and every validation error naming its field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from gvfx.errors import JobError
from gvfx.job import load_job, parse_frame_range, parse_job

DOCS = Path(__file__).resolve().parents[1] / "docs" / "jobs.md"


def _base(**over) -> dict:
    d = {"plate": {"path": "plates/p.####.exr"},
         "elements": [{"name": "fire1", "effect": "fire", "placement": {"screen": [10, 20]}, "size_m": 0.5}]}
    d.update(over)
    return d


def test_minimal_job_defaults(tmp_path: Path) -> None:
    job = parse_job(_base(), tmp_path)
    assert job.plate.path == str(tmp_path / "plates/p.####.exr")
    assert job.plate.colorspace == "ACEScg"
    assert job.depth.convention == "z" and job.depth.path is None
    assert job.output == tmp_path / "gvfx-out"
    (el,) = job.elements
    assert el.engine == "sim" and el.effect == "fire" and el.size_m == 0.5 and el.seed == 0
    assert el.placement.screen == (10.0, 20.0)
    assert el.params == {}


@pytest.mark.parametrize("text,expected", [("1001-1048", (1001, 1048)), ("7", (7, 7)), ([3, 9], (3, 9)),
                                           ("-5--1", (-5, -1)), ("10:20", (10, 20))])
def test_frame_ranges(text, expected) -> None:
    assert parse_frame_range(text) == expected


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.update(bogus=1), "job: unknown key(s) bogus"),
    (lambda d: d.pop("plate"), "plate: missing"),
    (lambda d: d["plate"].update(frames="20-10"), "plate.frames"),
    (lambda d: d.update(depth={"convention": "weird"}), "depth.convention"),
    (lambda d: d.update(camera={"focal_mm": -3}), "camera.focal_mm"),
    (lambda d: d.update(camera={"file": "nope.usda"}), "camera.file"),
    (lambda d: d.update(elements=[]), "elements"),
    (lambda d: d["elements"][0].update(effect="plasma"), "elements[fire1].effect: unknown effect 'plasma'"),
    (lambda d: d["elements"][0].pop("effect"), "elements[fire1].effect: missing"),
    (lambda d: d["elements"][0].update(size_m=-1), "elements[fire1].size_m: must be positive"),
    (lambda d: d["elements"][0].update(seed=1.5), "elements[fire1].seed"),
    (lambda d: d["elements"][0].update(params={"nonsense": 1}), "elements[fire1].params: unknown key(s) nonsense"),
    (lambda d: d["elements"][0].update(reference="missing.png"), "elements[fire1].reference: file not found"),
    (lambda d: d["elements"][0].update(placement={"screen": [1, 2], "point": [0, 0, 0]}),
     "elements[fire1].placement: give only one"),
    (lambda d: d["elements"][0].update(placement={"screen_norm": [1.5, 0.2]}), "elements[fire1].placement.screen_norm"),
    (lambda d: d["elements"][0].update(engine="nosuch"), "unknown engine 'nosuch'"),
    (lambda d: d["elements"].append(dict(d["elements"][0])), "duplicate name(s) fire1"),
    (lambda d: d["elements"][0].update(name="1bad"), "elements[0].name"),
])
def test_validation_names_the_field(tmp_path: Path, mutate, field: str) -> None:
    d = _base()
    mutate(d)
    with pytest.raises(Exception) as info:
        parse_job(d, tmp_path)
    assert field in str(info.value)


def test_param_range_and_type_checked_from_effect_description(tmp_path: Path) -> None:
    from gvfx.engines import get_engine

    info = get_engine("sim").effects()["fire"]
    numeric = next(p for p in info.params if p.type in (int, float) and p.min is not None)
    d = _base()
    d["elements"][0]["params"] = {numeric.name: numeric.min - 1}
    with pytest.raises(JobError, match=re.escape(f"elements[fire1].params.{numeric.name}") + ".*below the minimum"):
        parse_job(d, tmp_path)
    d["elements"][0]["params"] = {numeric.name: "hot"}
    with pytest.raises(JobError, match="expected a"):
        parse_job(d, tmp_path)
    d["elements"][0]["params"] = {numeric.name: numeric.default}
    assert parse_job(d, tmp_path).elements[0].params[numeric.name] == numeric.default


def test_load_job_yaml_and_json_agree(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(_base()))
    (tmp_path / "a.json").write_text(json.dumps(_base()))
    a, b = load_job(tmp_path / "a.yaml"), load_job(tmp_path / "a.json")
    assert a.elements == b.elements and a.plate == b.plate


def test_load_job_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("plate: [unclosed")
    with pytest.raises(JobError, match="bad.yaml: cannot parse"):
        load_job(bad)
    with pytest.raises(JobError, match="missing.yaml"):
        load_job(tmp_path / "missing.yaml")
    (tmp_path / "f.yaml").write_text(yaml.safe_dump(_base(bogus=2)))
    with pytest.raises(JobError, match=r"f\.yaml: job: unknown key"):
        load_job(tmp_path / "f.yaml")


def test_docs_example_validates(tmp_path: Path) -> None:
    """The complete example in docs/jobs.md parses against the installed engines."""
    text = DOCS.read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    data = yaml.safe_load(block)
    (tmp_path / "shot010_cam.usda").write_text("#usda 1.0\n")
    job = parse_job(data, tmp_path)
    assert [e.name for e in job.elements] == ["fire", "sparks"]
    assert job.plate.frames == (1001, 1048) and job.plate.view == "left"
    assert job.elements[0].params == {"buoyancy": 1.5}
