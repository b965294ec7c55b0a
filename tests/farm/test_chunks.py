"""Chunk planning, the executor registry and options, the local executor (N processes) against a
single-process render, and `gvfx render --executor` on the command line."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from gvfx.errors import GvfxError, InputError
from gvfx.executors import (ChunkFailedError, ChunkFailure, ExecutorOptions, chunk_label, executor_names,
                            get_executor, plan_chunks, render_with_executor)

FRAMES = list(range(1001, 1007))


def test_plan_chunks_examples() -> None:
    assert plan_chunks(1001, 1010, 4) == [(1001, 1004), (1005, 1008), (1009, 1010)]
    assert plan_chunks(1001, 1008, 4) == [(1001, 1004), (1005, 1008)]
    assert plan_chunks(5, 5, 8) == [(5, 5)]
    assert plan_chunks(-3, 2, 10) == [(-3, 2)]
    assert plan_chunks(1, 3, 1) == [(1, 1), (2, 2), (3, 3)]
    assert chunk_label((1001, 1008)) == "1001-1008"


@given(first=st.integers(-1000, 5000), length=st.integers(1, 400), size=st.integers(1, 64))
def test_plan_chunks_cover_the_range_once_in_order(first: int, length: int, size: int) -> None:
    last = first + length - 1
    chunks = plan_chunks(first, last, size)
    frames = [f for a, b in chunks for f in range(a, b + 1)]
    assert frames == list(range(first, last + 1))
    assert all(b - a + 1 == size for a, b in chunks[:-1]) and 1 <= chunks[-1][1] - chunks[-1][0] + 1 <= size
    assert len(chunks) == -(-length // size)


@pytest.mark.parametrize("size", [0, -2, 2.5, True, "8"])
def test_bad_chunk_size_is_one_clear_error(size) -> None:
    with pytest.raises(InputError, match="chunk size .* must be a whole number of frames >= 1"):
        plan_chunks(1, 10, size)


def test_bad_range_is_an_error() -> None:
    with pytest.raises(InputError, match="last frame is before the first"):
        plan_chunks(10, 1, 4)


def test_registry_and_options() -> None:
    assert {"local", "ray"} <= set(executor_names())
    assert get_executor("local").name == "local"
    with pytest.raises(InputError, match="unknown executor 'slurm'.*known executors: local, ray"):
        get_executor("slurm")
    with pytest.raises(InputError, match="--workers 0"):
        ExecutorOptions(workers=0)
    with pytest.raises(InputError, match="mode 'threads'"):
        ExecutorOptions(mode="threads")
    assert ExecutorOptions(workers=3).worker_count() == 3


def test_chunk_failed_error_names_every_failed_range() -> None:
    err = ChunkFailedError([ChunkFailure((1, 4), "RuntimeError: a"), ChunkFailure((9, 10), "OSError: b")], 3,
                           "shot.yaml")
    text = str(err)
    assert text.startswith("shot.yaml: 2 of 3 chunks failed: frames 1-4: RuntimeError: a; frames 9-10: OSError: b")
    assert "--resume" in text and isinstance(err, GvfxError)


def test_missing_ray_says_how_to_install(monkeypatch) -> None:
    from gvfx.executors.ray_executor import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(GvfxError, match=r"needs Ray, which is not installed.*pip install"):
        import_ray()


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> Path:
    """A tiny shot (48x27, 6 frames, sparks) and its single-process render in ``ref/``."""
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.scene import write_demo_plate
    from gvfx.job import load_job
    from gvfx.render import render_job

    root = tmp_path_factory.mktemp("chunkshot")
    _, track, scene = write_demo_plate(root / "plate", 48, 27, FRAMES)
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    job = {"name": "t", "plate": {"path": "plate/plate.####.exr"}, "depth": {"layer": "Z"},
           "camera": {"file": "cam.usda"}, "output": "ref",
           "elements": [{"name": "sparks", "effect": "sparks", "placement": {"point": list(scene.table_edge_point)},
                         "size_m": 0.3, "seed": 2, "motion_samples": 2}]}
    (root / "job.yaml").write_text(yaml.safe_dump(job))
    render_job(load_job(root / "job.yaml"))
    return root


def _assert_same(ref: Path, out: Path) -> None:
    from gvfx.exr import read_exr
    from gvfx.versions import read_version_info

    for kind, name in (("elements/sparks", "sparks"), ("comp", "comp")):
        assert read_version_info(out / kind / "v001")["status"] == "complete"
        for f in FRAMES:
            a = read_exr(ref / kind / "v001" / f"{name}.{f}.exr").channels
            b = read_exr(out / kind / "v001" / f"{name}.{f}.exr").channels
            assert a.keys() == b.keys() and all(np.array_equal(a[c], b[c]) for c in a), f"{kind} {f}"


def test_local_executor_equals_single_process_render(shot: Path, tmp_path: Path) -> None:
    from gvfx.job import load_job

    job = replace(load_job(shot / "job.yaml"), output=tmp_path / "out")
    run = render_with_executor(job, "local", options=ExecutorOptions(workers=2), chunk_size=2)
    assert [c.chunk for c in run.chunks] == [(1001, 1002), (1003, 1004), (1005, 1006)]
    assert run.result.timeline is not None and run.result.timeline.exists()
    assert len({c.pid for c in run.chunks}) <= 2 and run.frames_per_second > 0
    _assert_same(shot / "ref", tmp_path / "out")


def test_cli_render_with_local_executor(shot: Path, tmp_path: Path, capsys) -> None:
    from gvfx.cli import main

    out = tmp_path / "cli"
    rc = main(["render", str(shot / "job.yaml"), "--out", str(out), "--executor", "local", "--workers", "2",
               "--chunk-size", "4", "-q"])
    assert rc == 0
    assert f"element sparks: {out}" in capsys.readouterr().out
    _assert_same(shot / "ref", out)


def test_cli_executor_errors_are_one_line(shot: Path, tmp_path: Path, capsys) -> None:
    from gvfx.cli import main

    base = ["render", str(shot / "job.yaml"), "--out", str(tmp_path / "x"), "-q"]
    assert main(base + ["--executor", "slurm"]) == 2
    assert "unknown executor 'slurm'" in capsys.readouterr().err
    assert main(base + ["--executor", "local", "--chunk-size", "0"]) == 2
    assert "chunk size 0" in capsys.readouterr().err
    assert main(base + ["--executor", "local", "--sim-only"]) == 2
    assert "--sim-only and --executor" in capsys.readouterr().err


def test_unreachable_ray_address_fails_fast_in_one_line(shot: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("ray")
    from gvfx.cli import main
    from gvfx.executors.ray_executor import check_reachable

    with pytest.raises(GvfxError, match="cannot reach the Ray cluster at ray://127.0.0.1:1"):
        check_reachable("ray://127.0.0.1:1")
    check_reachable("auto")  # left to Ray
    rc = main(["render", str(shot / "job.yaml"), "--out", str(tmp_path / "x"), "--address", "127.0.0.1:1", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot reach the Ray cluster at 127.0.0.1:1" in err and err.count("\n") == 1
    assert not (tmp_path / "x" / "cache").exists()  # refused before the sim step
