"""``gvfx.client.WorkerClient`` against a real ``gvfx worker``: a render with progress and outputs on
disk, versions, preview, doctor, cancel (queued and mid-render), a killed worker, start failures, and
the client importing nothing but the standard library."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from gvfx.camera_io import write_usd_camera
from gvfx.client import WorkerClient, WorkerError, WorkerTimeout
from gvfx.demo.run import reference_image
from gvfx.demo.scene import write_demo_plate
from gvfx.exr import read_exr
from gvfx.sequence import discover

WORKER = [sys.executable, "-m", "gvfx", "worker"]
SMALL = (1001, 1006)
LONG_FRAMES = list(range(1001, 1041))


def _job(scene, output: str, frames: tuple[int, int]) -> dict:
    cx, top, cz = scene.table_top_center
    return {
        "name": "t", "plate": {"path": "plate/plate.####.exr", "frames": f"{frames[0]}-{frames[1]}"},
        "depth": {"layer": "Z"}, "camera": {"file": "cam.usda"}, "output": output,
        "elements": [
            {"name": "sparks", "effect": "sparks", "placement": {"point": list(scene.table_edge_point)},
             "size_m": 0.3, "seed": 2, "motion_samples": 2},
            {"name": "ball", "effect": "insert", "reference": str(reference_image()),
             "placement": {"point": [cx, top, cz]}, "size_m": 0.2, "seed": 3,
             "params": {"velocity_mps": [1.5, 0, 0]}},
        ],
    }


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("shot")
    _, track, scene = write_demo_plate(root / "plate", 64, 36, LONG_FRAMES)
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    (root / "long.yaml").write_text(yaml.safe_dump(_job(scene, "long", (LONG_FRAMES[0], LONG_FRAMES[-1]))))
    return root, scene


@pytest.fixture(scope="module")
def client(shot):
    c = WorkerClient(WORKER, start_timeout=60, cwd=str(shot[0]))
    c.start()
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def rendered(client: WorkerClient, shot) -> tuple[dict, list[dict]]:
    root, scene = shot
    job_id = client.submit(_job(scene, "out", SMALL), base_dir=str(root))
    events, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        batch = client.poll()
        assert time.monotonic() - t0 < 0.05, "poll() blocked"
        events += [e for e in batch if e.get("id") == job_id]
        if events and events[-1]["type"] in ("result", "error", "cancelled"):
            break
        time.sleep(0.02)
    return client.wait(job_id, timeout=1), events


def test_start_says_hello(client: WorkerClient) -> None:
    assert client.alive and client.hello["protocol"] == 1 and client.hello["pid"] == client.pid


def test_render_progress_and_outputs(rendered) -> None:
    result, events = rendered
    assert result["type"] == "result", result.get("message")
    types = [e["type"] for e in events]
    assert types[0] == "accepted" and types[-1] == "result"
    progress = [e for e in events if e["type"] == "progress"]
    renders = [e for e in progress if e["stage"] == "render"]
    assert renders and renders[-1]["done"] == renders[-1]["total"] == 6
    assert any(e["stage"].startswith("sim sparks") for e in progress)
    out = result["outputs"]
    assert set(out["elements"]) == {"sparks", "ball"}
    for name, el in out["elements"].items():
        assert el["version"] == "v001" and el["frames"] == list(SMALL) and el["status"] == "complete"
        seq = discover(el["pattern"])
        assert list(seq.frames) == list(range(SMALL[0], SMALL[1] + 1))
        assert read_exr(seq.path(1003)).metadata["gvfx:element"] == name
    assert discover(out["comp"]["pattern"]).frames[-1] == SMALL[1]
    assert Path(out["timeline"]).is_file()
    json.dumps(result)


def test_versions_of_the_rendered_shot(client: WorkerClient, rendered) -> None:
    result, _ = rendered
    ev = client.request("versions", timeline=result["outputs"]["timeline"])
    assert ev["type"] == "result", ev.get("message")
    els = ev["data"]["elements"]
    assert set(els) == {"sparks", "ball"}
    for name, el in els.items():
        assert el["current"] == "v001"
        v = el["versions"][-1]
        assert v["status"] == "complete" and v["frames"] == list(SMALL)
        assert v["spec_hash"] == result["outputs"]["elements"][name]["spec_hash"]
        assert Path(v["pattern"]) == Path(result["outputs"]["elements"][name]["pattern"])


def test_preview_of_an_element(client: WorkerClient, rendered, tmp_path: Path) -> None:
    result, _ = rendered
    pattern = result["outputs"]["elements"]["ball"]["pattern"]
    ev = client.request("preview", path=pattern, frame=1003, channel="rgb", exposure=1.0, max_size=40)
    assert ev["type"] == "result", ev.get("message")
    data = ev["data"]
    assert Path(data["path"]).is_file() and max(data["width"], data["height"]) <= 40
    with Image.open(data["path"]) as im:
        assert im.format == "PNG" and im.size == (data["width"], data["height"]) == (40, 23)
    ev = client.request("preview", path=pattern, frame=1003, channel="nolayer")
    assert ev["type"] == "error" and ev["kind"] == "LayerError" and "holdout" in ev["message"]


def test_doctor(client: WorkerClient) -> None:
    ev = client.request("doctor", timeout=180)
    assert ev["type"] == "result", ev.get("message")
    names = [c["name"] for c in ev["data"]["checks"]]
    assert "python" in names and "ocio" in names and ev["data"]["exit_code"] in (0, 1)
    assert "sim" in ev["data"]["worker"]["engines_loaded"]  # kept loaded from the render


def test_cancel_queued_and_running(client: WorkerClient, shot) -> None:
    root, _ = shot
    running = client.submit(job_file=str(root / "long.yaml"))
    queued = client.submit(job_file=str(root / "long.yaml"))
    client.cancel(queued)
    ev = client.wait(queued, timeout=30)
    assert ev["type"] == "cancelled" and ev["stage"] == "queued"
    for e in client.events(timeout=60):  # cancel after the first frame is written
        if e.get("id") == running:
            assert e["type"] in ("accepted", "progress"), e
            if e["type"] == "progress" and e["stage"] == "render":
                break
    client.cancel(running)
    ev = client.wait(running, timeout=60)
    assert ev["type"] == "cancelled" and ev["stage"] == "running"
    out = root / "long"
    assert not list(out.rglob("*.tmp")), "temp files left behind"
    for name in ("sparks", "ball"):
        vdir = out / "elements" / name / "v001"
        assert json.loads((vdir / "version.json").read_text())["status"] == "partial"
        written = sorted(vdir.glob("*.exr"))
        assert 1 <= len(written) < len(LONG_FRAMES)
        for p in written:  # every file at a final path is whole
            assert read_exr(p).rgba().shape == (36, 64, 4)
    assert not (out / "elements" / "ball" / "v002").exists()  # the queued job never started
    assert client.request("ping")["data"]["running"] is None


def test_killed_worker_raises_promptly(shot) -> None:
    root, scene = shot
    with WorkerClient(WORKER, start_timeout=60, cwd=str(root)) as c:
        job_id = c.submit(_job(scene, "killed", (LONG_FRAMES[0], LONG_FRAMES[-1])), base_dir=str(root),
                          frames="1001-1040")
        for e in c.events(timeout=60):
            if e.get("id") == job_id and e["type"] != "accepted":
                break
        assert e["type"] == "progress", e
        os.kill(c.pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(WorkerError, match=r"exited with code -9"):
            ev = c.wait(job_id, timeout=60)
            pytest.fail(f"the job ended before the kill: {ev}")
        assert time.monotonic() - t0 < 10
        assert not c.alive
        with pytest.raises(WorkerError):
            c.poll()
        with pytest.raises(WorkerError):
            c.submit(job_file="x.yaml")


def test_shutdown_cancels_the_running_job(shot) -> None:
    root, scene = shot
    c = WorkerClient(WORKER, start_timeout=60, cwd=str(root))
    c.start()
    job_id = c.submit(_job(scene, "shut", (LONG_FRAMES[0], LONG_FRAMES[-1])), base_dir=str(root))
    for e in c.events(timeout=60):
        if e.get("id") == job_id and e["type"] == "progress" and e["stage"] == "render":
            break
    assert c.shutdown(timeout=30) == 0
    final = [e for e in c.poll() if e.get("id") == job_id and e["type"] != "progress"]
    assert final and final[-1]["type"] == "cancelled", final
    for name in ("sparks", "ball"):
        info = json.loads((root / "shut" / "elements" / name / "v001" / "version.json").read_text())
        assert info["status"] == "partial"
    assert not list((root / "shut").rglob("*.tmp"))


def test_missing_executable() -> None:
    with pytest.raises(WorkerError, match="no-such-gvfx-here"):
        WorkerClient("/nonexistent/no-such-gvfx-here").start()


def test_worker_dying_at_start_shows_stderr() -> None:
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('boom: no module named torch\\n'); sys.exit(3)"]
    with pytest.raises(WorkerError, match=r"(?s)code 3.*boom: no module named torch"):
        WorkerClient(argv, start_timeout=30).start()


def test_silent_worker_times_out() -> None:
    c = WorkerClient([sys.executable, "-c", "import time; print('not json', flush=True); time.sleep(60)"],
                     start_timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(WorkerError, match="no hello within 1 s"):
        c.start()
    assert time.monotonic() - t0 < 8 and not c.alive
    assert c.noise and c.noise[0] == "not json"


def test_wait_times_out_on_a_live_worker() -> None:
    script = ("import json, sys, time; print(json.dumps({'v': 1, 'type': 'hello', 'protocol': 1, 'pid': 0}), "
              "flush=True); sys.stdin.readline(); time.sleep(60)")
    c = WorkerClient([sys.executable, "-c", script], start_timeout=30)
    c.start()
    try:
        job_id = c.submit({"elements": []})
        with pytest.raises(WorkerTimeout):
            c.wait(job_id, timeout=0.5)
        assert c.poll() == [] and c.alive
    finally:
        assert c.shutdown(timeout=0.5) is not None  # terminated after the timeout


def test_client_imports_only_the_standard_library() -> None:
    client_py = Path(__file__).resolve().parents[2] / "gvfx" / "client.py"
    code = f"""
import importlib.util, sys
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("gvfx_client", {str(client_py)!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
new = {{m.split(".")[0] for m in set(sys.modules) - before}} - {{"gvfx_client"}}
bad = sorted(m for m in new if m not in sys.stdlib_module_names)
assert not bad, bad
assert hasattr(mod, "WorkerClient") and hasattr(mod, "WorkerError")
print("ok")
"""
    # -I -S: no site-packages at all, so numpy, torch or gvfx could not be imported even by accident
    res = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
