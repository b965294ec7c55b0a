"""The worker under abuse: SIGTERM mid-render cancels like a closed stdin (a ``cancelled`` event,
versions ``partial``), requests already received are answered before it exits, ``versions`` says
``incomplete`` for a dead renderer's version, and ``"v": true`` is not protocol version 1."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio

from gvfx.worker import Worker
from gvfx.worker_views import timeline_versions
from tests.pipeline.pipeline_shot import make_shot
from tests.worker.test_worker_protocol import RawWorker, _seqref


def _in_process(*lines: str) -> list[dict]:
    out = io.BytesIO()
    w = Worker(out)
    for line in lines:
        w.handle_line(line)
    return [json.loads(x) for x in out.getvalue().splitlines()]


def test_v_true_is_not_version_1() -> None:
    for v in ("true", "1.0", '"1"'):
        (ev,) = _in_process(f'{{"v": {v}, "type": "ping", "id": "p"}}')
        assert ev["type"] == "error" and ev["kind"] == "ProtocolError" and "protocol version" in ev["message"], ev
    (ok,) = _in_process('{"v": 1, "type": "ping", "id": "p"}')
    assert ok["type"] == "result" and ok["data"]["pong"] is True


def test_sigterm_mid_render_cancels_and_leaves_partial_versions(tmp_path: Path) -> None:
    job = make_shot(tmp_path / "sh", list(range(1001, 1041)), size=(32, 18))
    w = RawWorker(tmp_path)
    try:
        assert w.next()["type"] == "hello"
        w.send({"v": 1, "type": "submit", "id": "j1", "job_file": str(job)})
        while True:  # wait until frames are being written
            ev = w.next(120)
            assert ev["type"] not in ("result", "error"), ev
            if ev["type"] == "progress" and ev["stage"] == "render" and ev["done"] >= 2:
                break
        w.proc.send_signal(signal.SIGTERM)
        ev, _ = w.until("j1", timeout=60)
        assert ev["type"] == "cancelled" and ev["stage"] == "running", ev
        assert w.proc.wait(60) == 0
        assert w.lines.get(timeout=5) is None
        assert b"Traceback" not in b"".join(w.stderr)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    root = job.parent
    for kind in ("elements/smoke", "elements/sparks", "comp"):
        info = json.loads((root / kind / "v001" / "version.json").read_text())
        assert info["status"] == "partial" and info["stopped"] == "cancelled" and info["renderers"] == [], info
        frames = sorted((root / kind / "v001").glob("*.exr"))
        assert 2 <= len(frames) < 40
    assert not list(root.rglob("*.tmp"))
    data = timeline_versions(root / "sh010.otio")
    assert data["elements"]["smoke"]["versions"][0]["status"] == "partial"


def test_requests_received_are_answered_before_exit(tmp_path: Path) -> None:
    """doctor and versions sent with shutdown (and with end of input) in the same write still get replies."""
    tl = otio.schema.Timeline(name="t")
    tr = otio.schema.Track(name="fire")
    tr.append(otio.schema.Clip(name="fire", media_reference=_seqref("elements/fire/v001", "fire.", 1, 2, {}),
                               metadata={"gvfx": {"kind": "element", "status": "complete"}}))
    tl.tracks.append(tr)
    otio.adapters.write_to_file(tl, str(tmp_path / "t.otio"))
    for ending in ("shutdown", "eof"):
        w = RawWorker(tmp_path)
        assert w.next()["type"] == "hello"
        lines = [{"v": 1, "type": "doctor", "id": "d", "output_root": str(tmp_path)},
                 {"v": 1, "type": "versions", "id": "v", "timeline": str(tmp_path / "t.otio")}]
        lines += [{"v": 1, "type": "shutdown"}] if ending == "shutdown" else []
        w.proc.stdin.write(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
        w.proc.stdin.flush()
        if ending == "eof":
            w.proc.stdin.close()
        got = {}
        while (raw := w.lines.get(timeout=120)) is not None:
            ev = json.loads(raw)
            got[ev.get("id")] = ev
        assert w.proc.wait(60) == 0
        assert got["d"]["type"] == "result" and "checks" in got["d"]["data"], (ending, got)
        assert got["v"]["type"] == "result" and got["v"]["data"]["elements"]["fire"]["current"] == "v001"


def test_versions_of_a_dead_renderer_read_incomplete(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    tl = otio.schema.Timeline(name="t")
    tr = otio.schema.Track(name="fire")
    clip = otio.schema.Clip(name="fire", metadata={"gvfx": {"kind": "element", "element": "fire"}})
    clip.set_media_references({
        "v001": _seqref("elements/fire/v001", "fire.", 1, 2, {"version": "v001", "status": "rendering",
                                                              "renderers": [{"pid": dead.pid, "host": host}]}),
        "v002": _seqref("elements/fire/v002", "fire.", 1, 2, {"version": "v002", "status": "rendering",
                                                              "renderers": [{"pid": 1, "host": host}]}),
    }, "v002")
    tr.append(clip)
    tl.tracks.append(tr)
    otio.adapters.write_to_file(tl, str(tmp_path / "t.otio"))
    v1, v2 = timeline_versions(tmp_path / "t.otio")["elements"]["fire"]["versions"]
    assert v1["status"] == "incomplete"  # the word the timeline uses (gvfx.versions.effective_status)
    assert v2["status"] == "rendering"   # pid 1 is alive
