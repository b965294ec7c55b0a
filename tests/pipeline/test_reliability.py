"""Reliability: a render killed at a random frame resumes to the same bits, no partial EXR ever sits at
a final path, a second render of a shot is refused (or waits), farm chunks share the shot lock, and the
timeline stays valid under concurrent updates."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import OpenEXR
import opentimelineio as otio
import pytest
from pipeline_shot import GVFX, make_shot

from gvfx.cli import main
from gvfx.exr import read_exr
from gvfx.job import load_job
from gvfx.lock import FileLock, LockError
from gvfx.render import render_job
from gvfx.timeline import timeline_versions

FRAMES = list(range(1001, 1011))


def _element_exrs(root: Path) -> list[Path]:
    return sorted(root.glob("elements/*/v*/*.exr"))


def _reads_cleanly(path: Path) -> None:
    parts = OpenEXR.File(str(path), separate_channels=True).parts
    assert parts and parts[0].channels, f"{path} is not a whole EXR"
    for ch in parts[0].channels.values():
        assert ch.pixels is not None and ch.pixels.size > 0
    read_exr(path)  # and gvfx's own reader


def test_killed_render_resumes_to_the_same_bits(tmp_path: Path) -> None:
    ref_root, run_root = tmp_path / "ref", tmp_path / "run"
    ref = render_job(load_job(make_shot(ref_root, FRAMES)))
    n_final = 2 * len(FRAMES)  # two elements
    kill_after = random.Random(os.getpid()).randint(2, n_final - 6)
    for attempt in range(3):  # a loaded machine may finish the render before the kill lands: try again
        if run_root.exists():
            shutil.rmtree(run_root)
        job_file = make_shot(run_root, FRAMES)
        proc = subprocess.Popen([*GVFX, "render", str(job_file), "-q"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while len(_element_exrs(run_root)) < kill_after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        written = _element_exrs(run_root)
        if proc.returncode == -signal.SIGKILL and len(written) < n_final:
            break
        kill_after = 2
    assert proc.returncode == -signal.SIGKILL, f"the render ended before the kill: {proc.stderr.read()!r}"
    assert kill_after <= len(written) < n_final
    for p in written + sorted(run_root.glob("comp/v*/*.exr")):  # nothing half-written at a final name
        _reads_cleanly(p)
    # the timeline is readable and says the killed version is incomplete
    status = {(e.track, e.version): e.status for e in timeline_versions(run_root / "sh010.otio")}
    assert status[("smoke", "v001")] == "incomplete"

    assert main(["render", str(job_file), "--resume", "-q"]) == 0  # in this process: no second import
    for name, res in ref.elements.items():
        vdir = run_root / "elements" / name / "v001"
        assert not list(vdir.glob(".*.tmp")), "stale temporary files were not cleaned"
        assert not (run_root / "elements" / name / "v002").exists()
        for f in FRAMES:
            a = read_exr(res.version_dir / f"{name}.{f}.exr").channels
            b = read_exr(vdir / f"{name}.{f}.exr").channels
            assert a.keys() == b.keys()
            for c in a:
                assert np.array_equal(a[c], b[c], equal_nan=True), f"{name} frame {f} channel {c}"
    for f in FRAMES:
        a, b = read_exr(ref.comp.version_dir / f"comp.{f}.exr"), read_exr(run_root / f"comp/v001/comp.{f}.exr")
        assert all(np.array_equal(a.channels[c], b.channels[c]) for c in a.channels)
    status = {(e.track, e.version): e.status for e in timeline_versions(run_root / "sh010.otio")}
    assert set(status.values()) == {"complete"} and len(status) == 3


def test_second_render_is_refused_or_waits(tmp_path: Path, capsys) -> None:
    """flock locks belong to an open file: a lock taken here excludes a render in this process too."""
    job_file = make_shot(tmp_path, FRAMES[:3])
    with FileLock(tmp_path / ".gvfx.lock", timeout=0):  # another render holds the shot
        assert main(["render", str(job_file), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"another gvfx process (pid {os.getpid()} on {socket.gethostname()}) holds the shot lock" in err
    assert "--wait-lock" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "elements").exists()

    lock = FileLock(tmp_path / ".gvfx.lock", timeout=0).acquire()
    timer = threading.Timer(1.0, lock.release)
    timer.start()
    t0 = time.monotonic()
    result = render_job(load_job(job_file), wait_lock=60)
    assert time.monotonic() - t0 >= 1.0  # it waited for the holder
    assert result.elements["smoke"].version_dir.name == "v001"
    assert (tmp_path / "elements/smoke/v001/smoke.1003.exr").is_file()


def test_farm_chunks_share_the_lock(tmp_path: Path) -> None:
    """sim_only opens the versions; two --resume chunks run at once (a third shared holder is the test
    itself) while a fresh render is refused; the timeline ends complete with one version each."""
    job_file = make_shot(tmp_path, FRAMES[:6])
    render_job(load_job(job_file), sim_only=True)
    with FileLock(tmp_path / ".gvfx.lock", shared=True, timeout=0):
        chunks = [subprocess.Popen([*GVFX, "render", str(job_file), "--resume", "--frames", fr, "-q"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                  for fr in ("1001-1003", "1004-1006")]
        with pytest.raises(LockError, match="holds the shot lock"):  # a fresh render is refused meanwhile
            render_job(load_job(job_file))
        codes = [c.wait(timeout=180) for c in chunks]
    assert codes == [0, 0], [c.stderr.read() for c in chunks]
    tl = otio.adapters.read_from_file(str(tmp_path / "sh010.otio"))
    entries = timeline_versions(tl)
    assert {(e.track, e.version, e.status) for e in entries} == {
        ("smoke", "v001", "complete"), ("sparks", "v001", "complete"), ("comp", "v001", "complete")}
    assert all(e.metadata["renderers"] == [] for e in entries)


def test_concurrent_timeline_updates_keep_every_version(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from gvfx.timeline import SeqRef, VersionEntry, timeline_lock, update_timeline
        root, track = Path(sys.argv[1]), sys.argv[2]
        plate = SeqRef("plate", root / "plates", "p.", ".exr", 1, 4)
        for i in range(1, 16):
            v = f"v{i:03d}"
            e = VersionEntry(track, "element", v, SeqRef(track, root / track / v, track + ".", ".exr", 1, 4, 4,
                                                         {"status": "complete", "n": i}))
            with timeline_lock(root / "s.otio", timeout=60):
                update_timeline(root / "s.otio", name="s", fps=24, plate=plate, entries=[e], metadata={})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), t]) for t in ("fire", "smoke")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    entries = timeline_versions(tmp_path / "s.otio")
    for t in ("fire", "smoke"):
        assert [e.version for e in entries if e.track == t] == [f"v{i:03d}" for i in range(1, 16)]
    assert not list(tmp_path.glob(".s.otio.*.tmp"))


def test_lock_basics(tmp_path: Path) -> None:
    p = tmp_path / "x.lock"
    with FileLock(p, timeout=0, what="shot lock"):
        with pytest.raises(LockError, match=rf"pid {os.getpid()} on .* holds the shot lock after 0.2 s"):
            FileLock(p, timeout=0.2, what="shot lock").acquire()
        with pytest.raises(LockError):
            FileLock(p, timeout=0, shared=True).acquire()
    with FileLock(p, shared=True, timeout=0), FileLock(p, shared=True, timeout=0):
        with pytest.raises(LockError):
            FileLock(p, timeout=0).acquire()
    # a holder that dies releases the lock
    holder = subprocess.Popen([sys.executable, "-c", f"from gvfx.lock import FileLock; import time; "
                               f"FileLock({str(p)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LockError, match=f"pid {holder.pid}"):
        FileLock(p, timeout=0).acquire()
    holder.kill()
    holder.wait()
    with FileLock(p, timeout=5):
        pass
