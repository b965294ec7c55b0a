"""A fuzz test that keeps gvfx closed to hostile input (hypothesis, small example budget for CI).

Job files are generated field by field from a valid one (wrong types, non-finite and extreme numbers,
hostile strings and paths) and worker lines from scratch; each run must either succeed or end in one
gvfx error of one line — never another exception, never a file outside the shot root, never a
non-finite pixel in an element file.
"""

from __future__ import annotations

import copy
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gvfx.errors import GvfxError
from gvfx.exr import read_exr
from gvfx.job import parse_job
from gvfx.render import render_job
from gvfx.worker import Worker

FRAMES = [1001, 1002]
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def arena(tmp_path_factory) -> tuple[Path, Path, dict]:
    """``top/shot`` (the shot root, a tiny demo plate and camera) and ``top/outside`` (must stay empty)."""
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.scene import write_demo_plate

    top = tmp_path_factory.mktemp("fuzz")
    shot, outside = top / "shot", top / "outside"
    outside.mkdir()
    _, track, scene = write_demo_plate(shot / "plate", 24, 16, FRAMES)
    write_usd_camera(shot / "cam.usda", track, fps=24.0)
    base = {"name": "fz", "confine": True, "plate": {"path": "plate/plate.####.exr", "colorspace": "ACEScg"},
            "depth": {"layer": "Z", "near_is_one": True}, "camera": {"file": "cam.usda"}, "output": "out",
            "fps": 24.0,
            "elements": [{"name": "sp", "effect": "sparks", "seed": 1, "size_m": 0.3, "motion_samples": 1,
                          "placement": {"point": list(scene.table_edge_point)}, "params": {"count": 20}}]}
    return shot, outside, base


def _hostile_paths(outside: Path) -> st.SearchStrategy:
    return st.sampled_from(["../outside/x", "../../", str(outside / "abs"), "a/../../outside/y", "/", "~",
                            "out/../../outside", "", "\x00", "x" * 5000, "plate/../../outside/p.####.exr",
                            "elements", ".", ".."])


def _values(outside: Path) -> st.SearchStrategy:
    numbers = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0, -1, 2**63, 10**400 // 10**399,
                               1e-320, 3.5, 10**7, 99999999, 2**32])
    strings = st.one_of(st.sampled_from(["no", "yes", "Bogus", "../..", "/etc", "a b", "é", "\n", "fire;rm",
                                         "ACES - ACEScg", "/World/Nope", "World/Cam"]), st.text(max_size=12))
    return st.one_of(numbers, strings, _hostile_paths(outside), st.booleans(), st.none(),
                     st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                max_size=2))


#: the fields mutated (a path of keys into the job mapping)
FIELDS = [("name",), ("fps",), ("comp",), ("output",), ("plate", "path"), ("plate", "frames"),
          ("plate", "colorspace"), ("plate", "view"), ("depth", "layer"), ("depth", "near_is_one"),
          ("depth", "convention"), ("depth", "scale"), ("camera", "prim"), ("camera", "file"),
          ("camera", "focal_mm"), ("elements", 0, "name"), ("elements", 0, "effect"), ("elements", 0, "size_m"),
          ("elements", 0, "seed"), ("elements", 0, "motion_samples"), ("elements", 0, "shutter"),
          ("elements", 0, "start_frame"), ("elements", 0, "params", "count"), ("elements", 0, "placement", "point"),
          ("elements", 0, "placement", "screen"), ("elements", 0, "reference"), ("version",), ("match",)]


BOOL_FIELDS = {("comp",), ("depth", "near_is_one")}
NUMBER_FIELDS = {("fps",), ("depth", "scale"), ("camera", "focal_mm"), ("elements", 0, "size_m"),
                 ("elements", 0, "seed"), ("elements", 0, "motion_samples"), ("elements", 0, "shutter"),
                 ("elements", 0, "start_frame"), ("elements", 0, "params", "count")}
NAME_FIELDS = [("name",), ("elements", 0, "name"), ("output",), ("plate", "path"), ("camera", "file")]


def _must_refuse(keys: tuple, value) -> bool:
    """Values the job must refuse whatever else it holds: a non-bool for a bool, a non-finite number,
    a name that is a path."""
    if keys in BOOL_FIELDS:
        return not isinstance(value, bool)
    if keys in NUMBER_FIELDS and isinstance(value, float):
        return not math.isfinite(value)
    if keys in (("name",), ("elements", 0, "name")):
        return not (isinstance(value, str) and value[:1].isalpha() and value.replace("_", "").replace("-", "")
                    .isalnum() and value.isascii())
    return False


def _set(d: dict, keys: tuple, value) -> None:
    for k in keys[:-1]:
        d = d[k]
    d[keys[-1]] = value


def _files(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*")}


def _check_elements_finite(out: Path, since: set[str]) -> None:
    for p in sorted(out.rglob("*.exr")):
        if str(p) in since or "elements" not in p.parts:
            continue
        img = read_exr(p)
        assert all(n == (0, 0) for c, n in img.nonfinite.items() if c != "Z"), (p, img.nonfinite)
        assert all(np.isfinite(a).all() for c, a in img.channels.items() if c != "Z"), p


def _one_line(exc: GvfxError) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text, text


def test_fuzzed_job_fields(arena) -> None:
    shot, outside, base = arena

    @FUZZ
    @given(st.data())
    def run(data) -> None:
        job = copy.deepcopy(base)
        refuse = False
        fields = data.draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=2, unique=True))
        if data.draw(st.booleans()):  # half the runs aim a hostile path at a name
            fields = [data.draw(st.sampled_from(NAME_FIELDS))]
        for keys in fields:
            value = data.draw(_hostile_paths(outside) if keys in NAME_FIELDS and data.draw(st.booleans())
                              else _values(outside))
            _set(job, keys, value)
            refuse |= _must_refuse(keys, value)
        before = _files(shot)
        parsed = None
        try:
            parsed = parse_job(job, shot)
            render_job(parsed)
        except GvfxError as exc:
            _one_line(exc)
        assert not (refuse and parsed is not None), (fields, job)
        assert not any(outside.iterdir()), list(outside.iterdir())
        assert not (shot.parent / "fz.otio").exists() and not (shot.parent / ".gvfx.lock").exists()
        _check_elements_finite(shot, before)

    run()


def _worker_lines(outside: Path, base: dict) -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=False), st.text(max_size=8))
    request = st.fixed_dictionaries(
        {"type": st.sampled_from(["ping", "submit", "cancel", "versions", "preview", "doctor", "nope", 1, None])},
        optional={"v": st.one_of(st.just(1), st.just(True), st.just(1.0), st.just("1"), st.just(2)),
                  "id": st.one_of(st.text(max_size=6), st.integers(), st.none(), st.booleans()),
                  "job": st.one_of(st.just(base), scalars, st.lists(scalars, max_size=2),
                                   st.just({**base, "name": "../../outside/w"}),
                                   st.just({**base, "output": str(outside / "w")})),
                  "job_file": st.one_of(_hostile_paths(outside), scalars),
                  "base_dir": st.one_of(_hostile_paths(outside), scalars),
                  "frames": st.one_of(scalars, st.just("1001-1001"), st.just([1002, 1001])),
                  "resume": scalars, "timeline": st.one_of(_hostile_paths(outside), scalars),
                  "path": st.one_of(_hostile_paths(outside), scalars), "max_size": scalars, "exposure": scalars,
                  "channel": scalars})
    as_json = request.map(lambda r: json.dumps(r))
    garbage = st.one_of(st.binary(max_size=40), st.sampled_from([b"{", b"[]", b"null", b'"x"', b"\xff\xfe",
                                                                  b'{"v":1,"type":"ping","id":"a"}' * 2,
                                                                  b'{"v": NaN, "type": "ping", "id": "n"}']))
    return st.one_of(as_json.map(str.encode), garbage)


def test_fuzzed_worker_lines(arena, tmp_path: Path) -> None:
    shot, outside, base = arena

    @FUZZ
    @given(st.lists(_worker_lines(outside, {**base}), min_size=1, max_size=4))
    def run(lines) -> None:
        out = io.BytesIO()
        w = Worker(out, preview_dir=tmp_path / "previews", shutdown_timeout=60)
        w.job_thread.start()
        for raw in lines:
            if b"base_dir" not in raw and b'"submit"' in raw:
                raw = raw.replace(b'"type": "submit"', f'"base_dir": {json.dumps(str(shot))}, "type": "submit"'
                                  .encode(), 1)
            assert w.handle_line(raw) in (True, False)
        w.close()
        for line in out.getvalue().splitlines():
            ev = json.loads(line)  # every event is one JSON line
            assert ev["v"] == 1 and ev["type"] in ("result", "error", "accepted", "progress", "cancelled")
            if ev["type"] == "error":
                assert "\n" not in ev["message"] and ev["kind"] in (
                    "ProtocolError", "JobError", "InputError", "SequenceError", "ColorError", "CameraError",
                    "ImageReadError", "LayerError", "OutputError", "CancelledError", "EngineError"), ev
        assert not any(outside.iterdir()), list(outside.iterdir())

    run()
