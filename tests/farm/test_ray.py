"""The Ray executor on a local Ray instance (``ray.init(num_cpus=2)``, shared by the module): a chunked
render equals a single-process render bit for bit, a worker killed mid-chunk is retried and the
result is still complete and equal, and a chunk that always fails is reported with its frames."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

ray = pytest.importorskip("ray")

from gvfx.camera_io import write_usd_camera  # noqa: E402
from gvfx.demo.scene import write_demo_plate  # noqa: E402
from gvfx.executors import ChunkFailedError, ExecutorOptions, render_chunk, render_with_executor  # noqa: E402
from gvfx.exr import read_exr  # noqa: E402
from gvfx.job import load_job  # noqa: E402
from gvfx.render import render_job  # noqa: E402
from gvfx.versions import read_version_info  # noqa: E402

FRAMES = list(range(1001, 1009))

# the crash/fail hooks below are defined here: ship them to Ray's workers by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def ray_local():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> Path:
    """A small shot (64x36, 8 frames, smoke + sparks) and its single-process render in ``ref/``."""
    root = tmp_path_factory.mktemp("rayshot")
    _, track, scene = write_demo_plate(root / "plate", 64, 36, FRAMES)
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    cx, top, cz = scene.table_top_center
    job = {"name": "t", "plate": {"path": "plate/plate.####.exr"}, "depth": {"layer": "Z"},
           "camera": {"file": "cam.usda"}, "output": "ref",
           "elements": [
               {"name": "smoke", "effect": "smoke", "placement": {"point": [cx - 0.2, top, cz]}, "size_m": 0.5,
                "seed": 1, "motion_samples": 1, "params": {"resolution": 12, "preroll_frames": 0}},
               {"name": "sparks", "effect": "sparks", "placement": {"point": list(scene.table_edge_point)},
                "size_m": 0.3, "seed": 2, "motion_samples": 2, "start_frame": 1002}]}
    (root / "job.yaml").write_text(yaml.safe_dump(job))
    render_job(load_job(root / "job.yaml"))
    return root


def _job(shot: Path, out: Path):
    return replace(load_job(shot / "job.yaml"), output=out)


def assert_same_as_reference(shot: Path, out: Path) -> None:
    """Every element and comp frame in ``out`` equals the single-process render, channel by channel."""
    for kind in ("elements/smoke", "elements/sparks", "comp"):
        name = kind.rsplit("/", 1)[-1]
        vdir = out / kind / "v001"
        assert read_version_info(vdir)["status"] == "complete", f"{kind} is not complete"
        assert sorted(int(p.name.split(".")[1]) for p in vdir.glob("*.exr")) == FRAMES
        for f in FRAMES:
            ref = read_exr(shot / "ref" / kind / "v001" / f"{name}.{f}.exr").channels
            got = read_exr(vdir / f"{name}.{f}.exr").channels
            assert ref.keys() == got.keys()
            for c in ref:
                assert np.array_equal(ref[c], got[c]), f"{kind} frame {f} channel {c} differs"
    assert (out / "t.otio").exists()
    assert not list(out.rglob(".*.tmp"))


class KillOnce:
    """A chunk function: the chunk holding ``frame`` renders its first frame, then its worker is
    SIGKILLed, on the first attempt only (a marker file remembers the attempt across processes)."""

    def __init__(self, frame: int, marker: Path) -> None:
        self.frame, self.marker = frame, marker

    def __call__(self, job, chunk):
        if chunk[0] <= self.frame <= chunk[1] and not self.marker.exists():
            render_chunk(job, (chunk[0], chunk[0]))  # mid-chunk: one frame written, the rest not
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return render_chunk(job, chunk)


class AlwaysFails:
    """A chunk function that raises for the chunk holding ``frame``, on every attempt."""

    def __init__(self, frame: int) -> None:
        self.frame = frame

    def __call__(self, job, chunk):
        if chunk[0] <= self.frame <= chunk[1]:
            raise RuntimeError(f"boom in chunk {chunk[0]}-{chunk[1]}")
        return render_chunk(job, chunk)


def test_ray_tasks_equal_single_process_render(ray_local, shot: Path, tmp_path: Path) -> None:
    seen = []
    run = render_with_executor(_job(shot, tmp_path / "out"), "ray", options=ExecutorOptions(workers=2),
                               chunk_size=3, progress=lambda s, d, t: seen.append((s, d, t)))
    assert [c.chunk for c in run.chunks] == [(1001, 1003), (1004, 1006), (1007, 1008)]
    assert all(c.pid != os.getpid() for c in run.chunks)  # rendered by Ray's workers, not here
    chunk_progress = [(d, t) for s, d, t in seen if s.startswith("render chunks (ray tasks)")]
    assert chunk_progress[0] == (0, 8) and chunk_progress[-1] == (8, 8) and len(chunk_progress) == 4
    assert_same_as_reference(shot, tmp_path / "out")


@pytest.mark.parametrize("mode", ["tasks", "actors"])
def test_killed_worker_is_retried(ray_local, shot: Path, tmp_path: Path, mode: str) -> None:
    marker = tmp_path / "killed-once"
    run = render_with_executor(_job(shot, tmp_path / "out"), "ray", chunk_size=4,
                               options=ExecutorOptions(workers=2, mode=mode, max_retries=2),
                               chunk_fn=KillOnce(1006, marker))
    assert marker.exists(), "the first attempt was not killed"
    killed_pid = int(marker.read_text())
    retried = next(c for c in run.chunks if c.chunk == (1005, 1008))
    assert retried.pid != killed_pid  # a new worker process did it
    if mode == "actors":  # two actors (one restarted) rendered both chunks
        assert len({c.pid for c in run.chunks}) <= 2
    assert_same_as_reference(shot, tmp_path / "out")


def test_chunk_that_always_fails_is_reported_with_its_frames(ray_local, shot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ChunkFailedError) as info:
        render_with_executor(_job(shot, out), "ray", chunk_size=3,
                             options=ExecutorOptions(workers=2, max_retries=1), chunk_fn=AlwaysFails(1005))
    err = info.value
    assert [f.chunk for f in err.failures] == [(1004, 1006)]
    assert "frames 1004-1006" in str(err) and "boom in chunk 1004-1006" in str(err)
    assert "after 2 attempts" in str(err) and "--resume" in str(err)
    assert "\n" not in str(err)
    # the other chunks finished; the failed one left its frames missing
    written = sorted(int(p.name.split(".")[1]) for p in (out / "elements/smoke/v001").glob("*.exr"))
    assert written == [1001, 1002, 1003, 1007, 1008]
    # the same command with resume=True renders only what is missing, and matches the reference
    render_with_executor(_job(shot, out), "ray", chunk_size=3, resume=True, options=ExecutorOptions(workers=2))
    assert_same_as_reference(shot, out)
