"""The worker protocol spoken raw (no client): hello, ping, malformed lines, a bad job, shutdown; and the
``versions`` / ``preview`` handlers in process on hand-made files."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from PIL import Image

from gvfx.exr import write_layers
from gvfx.worker import ProtocolError
from gvfx.worker_views import make_preview, timeline_versions

WORKER = [sys.executable, "-m", "gvfx", "worker"]


class RawWorker:
    """A worker process read line by line by a thread; ``next()`` never waits past its timeout."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=cwd, bufsize=0)
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.stderr: list[bytes] = []
        threading.Thread(target=lambda: self.stderr.extend(iter(self.proc.stderr.readline, b"")), daemon=True).start()

    def _read(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.put(raw)
        self.lines.put(None)

    def send(self, line: str | dict) -> None:
        text = line if isinstance(line, str) else json.dumps(line)
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def next(self, timeout: float = 30.0) -> dict:
        raw = self.lines.get(timeout=timeout)
        assert raw is not None, f"worker exited: {b''.join(self.stderr[-20:]).decode()}"
        return json.loads(raw)  # every stdout line is JSON

    def until(self, id_: str, types: tuple[str, ...] = ("result", "error", "cancelled"),
              timeout: float = 60.0) -> tuple[dict, list[dict]]:
        seen, deadline = [], time.monotonic() + timeout
        while True:
            ev = self.next(max(0.1, deadline - time.monotonic()))
            seen.append(ev)
            if ev.get("id") == id_ and ev["type"] in types:
                return ev, seen


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = RawWorker(tmp_path_factory.mktemp("worker"))
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait(10)


def test_hello_first(worker: RawWorker) -> None:
    hello = worker.next()
    assert hello["type"] == "hello" and hello["v"] == 1 and hello["protocol"] == 1
    assert hello["pid"] == worker.proc.pid and isinstance(hello["gvfx"], str)


def test_ping(worker: RawWorker) -> None:
    worker.send({"v": 1, "type": "ping", "id": "p1"})
    ev, _ = worker.until("p1")
    assert ev["type"] == "result" and ev["v"] == 1 and ev["data"]["pong"] is True
    assert ev["data"]["running"] is None and ev["data"]["pid"] == worker.proc.pid


@pytest.mark.parametrize("line, id_, words", [
    ("this is not json", None, "not JSON"),
    ("[1, 2]", None, "JSON object"),
    ('{"v": 1, "type": "frobnicate", "id": "u1"}', "u1", "unknown request type 'frobnicate'"),
    ('{"v": 1, "type": "ping"}', None, "id"),
    ('{"v": 7, "type": "ping", "id": "old"}', None, "protocol version 7"),
    ('{"v": 1, "type": "submit", "id": "s0"}', "s0", "exactly one of job"),
    ('{"v": 1, "type": "cancel", "id": "nobody"}', "nobody", "no job with id"),
    ("\xff\xfe garbage", None, "UTF-8"),
])
def test_malformed_lines_get_errors_and_the_worker_stays_up(worker: RawWorker, line: str, id_: str | None,
                                                            words: str) -> None:
    if line.startswith("\xff"):
        worker.proc.stdin.write(b"\xff\xfe garbage\n")
        worker.proc.stdin.flush()
    else:
        worker.send(line)
    ev = worker.next()
    assert ev["type"] == "error" and ev["id"] == id_, ev
    assert words in ev["message"] and "\n" not in ev["message"]
    assert ev["kind"] in ("ProtocolError", "InputError") and "Traceback" in ev["traceback"]
    worker.send({"v": 1, "type": "ping", "id": f"after-{words}"})
    assert worker.until(f"after-{words}")[0]["type"] == "result"


def test_bad_job_names_the_field(worker: RawWorker, tmp_path: Path) -> None:
    job = {"plate": {"path": "plate/plate.####.exr"}, "output": "out",
           "elements": [{"name": "blob", "effect": "lava"}]}
    worker.send({"v": 1, "type": "submit", "id": "bad1", "job": job, "base_dir": str(tmp_path)})
    ev, seen = worker.until("bad1")
    assert [e["type"] for e in seen if e.get("id") == "bad1"] == ["accepted", "error"]
    assert ev["kind"] == "JobError"
    assert ev["message"].startswith("elements[blob].effect: unknown effect 'lava'"), ev["message"]
    assert "JobError" in ev["traceback"]
    worker.send({"v": 1, "type": "submit", "id": "bad2", "job_file": str(tmp_path / "missing.yaml")})
    ev, _ = worker.until("bad2")
    assert ev["kind"] == "JobError" and "job file not found" in ev["message"]


def test_shutdown_exits_cleanly(worker: RawWorker) -> None:
    worker.send({"v": 1, "type": "shutdown"})
    assert worker.proc.wait(30) == 0
    assert worker.lines.get(timeout=5) is None  # nothing after: stdout carried only protocol lines


def test_end_of_input_stops_the_worker(tmp_path: Path) -> None:
    w = RawWorker(tmp_path)
    assert w.next()["type"] == "hello"
    w.proc.stdin.close()
    assert w.proc.wait(30) == 0


# ------------------------------------------------------------------------------- handlers in process

def _seqref(base: str, prefix: str, first: int, last: int, meta: dict) -> otio.schema.ImageSequenceReference:
    ref = otio.schema.ImageSequenceReference(
        target_url_base=base, name_prefix=prefix, name_suffix=".exr", start_frame=first, frame_step=1, rate=24,
        frame_zero_padding=4,
        available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(first, 24),
                                                otio.opentime.RationalTime(last - first + 1, 24)))
    ref.metadata["gvfx"] = meta
    return ref


def test_versions_reads_clips_and_references_generically(tmp_path: Path) -> None:
    """Today's layout (one clip per track, metadata on the clip) and a multi-version layout (one clip with
    a media reference per version, metadata on each reference) give the same answer shape."""
    tl = otio.schema.Timeline(name="sh010")
    plate = otio.schema.Track(name="plate")
    plate.append(otio.schema.Clip(name="plate", media_reference=_seqref("plate", "plate.", 1001, 1010, {}),
                                  metadata={"gvfx": {"kind": "plate"}}))
    fire = otio.schema.Track(name="fire")
    clip = otio.schema.Clip(name="fire", metadata={"gvfx": {"kind": "element", "element": "fire", "effect": "fire",
                                                            "version": "v002", "status": "complete"}})
    clip.set_media_references({
        "v001": _seqref("elements/fire/v001", "fire.", 1001, 1010, {"version": "v001", "status": "partial",
                                                                    "spec_hash": "aaaa"}),
        "v002": _seqref("elements/fire/v002", "fire.", 1001, 1010, {"spec_hash": "bbbb"}),
    }, "v002")
    fire.append(clip)
    sparks = otio.schema.Track(name="sparks")
    sparks.append(otio.schema.Gap(duration=otio.opentime.RationalTime(2, 24)))
    sparks.append(otio.schema.Clip(name="sparks", media_reference=_seqref(
        "/abs/elements/sparks/v003", "sparks.", 1003, 1010, {}), metadata={"gvfx": {
            "kind": "element", "status": "complete", "spec_hash": "cccc", "frame_range": [1003, 1010]}}))
    tl.tracks.extend([plate, fire, sparks])
    path = tmp_path / "sh010.otio"
    otio.adapters.write_to_file(tl, str(path))

    data = timeline_versions(path)
    json.dumps(data)  # plain JSON
    assert data["name"] == "sh010" and data["plate"]["versions"][0]["frames"] == [1001, 1010]
    fire_v = data["elements"]["fire"]
    assert [v["version"] for v in fire_v["versions"]] == ["v001", "v002"] and fire_v["current"] == "v002"
    v1, v2 = fire_v["versions"]
    assert (v1["status"], v1["spec_hash"], v1["active"]) == ("partial", "aaaa", False)
    assert (v2["status"], v2["spec_hash"], v2["active"]) == ("complete", "bbbb", True)
    assert v1["pattern"] == str(tmp_path / "elements/fire/v001/fire.####.exr")
    assert v1["metadata"]["effect"] == "fire"  # clip-level shared keys reach every reference
    sp = data["elements"]["sparks"]
    assert sp["current"] == "v003"  # from the folder name when metadata has no version
    assert sp["versions"][0]["frames"] == [1003, 1010]
    assert sp["versions"][0]["pattern"] == "/abs/elements/sparks/v003/sparks.####.exr"


@pytest.fixture(scope="module")
def element_exr(tmp_path_factory) -> Path:
    h, w = 36, 64
    rgba = np.zeros((h, w, 4), np.float32)
    rgba[:, : w // 2] = (0.18, 0.18, 0.18, 1.0)
    z = np.where(rgba[..., 3] > 0, np.linspace(1, 10, w, dtype=np.float32)[None, :].repeat(h, 0), np.inf)
    path = tmp_path_factory.mktemp("exr") / "el.1001.exr"
    write_layers(path, rgba=rgba, z=z.astype(np.float32),
                 layers={"holdout": np.full((h, w), 0.5, np.float32), "lightwrap": np.ones((h, w, 3), np.float32)})
    return path


@pytest.mark.parametrize("channel, check", [
    ("rgb", lambda px: px[5, 2, 0] > px[5, -2, 0] == 0),
    ("alpha", lambda px: px[5, 2, 0] == 255 and px[5, -2, 0] == 0),
    ("Z", lambda px: px[5, 1, 0] > px[5, 15, 0] > 0 and px[5, -2, 0] == 0),  # near bright, no depth black
    ("holdout", lambda px: abs(int(px[5, 5, 0]) - 128) <= 1),
    ("lightwrap", lambda px: px[5, 5].min() == 255),
])
def test_preview_channels(element_exr: Path, tmp_path: Path, channel: str, check) -> None:
    out = make_preview(element_exr, channel=channel, max_size=32, out_dir=tmp_path)
    assert (out["width"], out["height"]) == (32, 18)
    px = np.asarray(Image.open(out["path"]).convert("RGB"))
    assert px.shape == (18, 32, 3) and check(px)
    if channel == "Z":
        assert out["depth_range"][0] == pytest.approx(1.0, abs=0.2)


def test_preview_exposure_pattern_and_errors(element_exr: Path, tmp_path: Path) -> None:
    pattern = str(element_exr).replace("1001", "####")
    dark = np.asarray(Image.open(make_preview(pattern, frame=1001, out_dir=tmp_path)["path"]))
    bright = np.asarray(Image.open(make_preview(pattern, frame=1001, exposure=2, out_dir=tmp_path)["path"]))
    assert bright[5, 5, 0] > dark[5, 5, 0] > 0
    big = make_preview(element_exr, max_size=4096, out_dir=tmp_path)
    assert (big["width"], big["height"]) == (64, 36)  # never upscaled
    from gvfx.errors import InputError, LayerError

    with pytest.raises(LayerError, match="holdout"):
        make_preview(element_exr, channel="nope", out_dir=tmp_path)
    with pytest.raises(ProtocolError, match="give frame"):
        make_preview(pattern, out_dir=tmp_path)
    with pytest.raises(ProtocolError, match="max_size"):
        make_preview(element_exr, max_size=0, out_dir=tmp_path)
    with pytest.raises(InputError, match="not found"):
        make_preview(tmp_path / "missing.exr", out_dir=tmp_path)


# ------------------------------------------------------------------------------------------ the docs

DOC = Path(__file__).resolve().parents[2] / "docs" / "worker_protocol.md"
EVENTS = {"hello", "accepted", "progress", "result", "error", "cancelled"}


def _doc_messages() -> list[dict]:
    text = DOC.read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```json\n")[1:]]
    return [json.loads(b) for b in blocks]


def test_doc_examples_are_valid_messages(tmp_path: Path) -> None:
    """Every JSON example in docs/worker_protocol.md parses; messages carry v 1 and a known type; the
    documented hello and ping fields are the ones a real worker sends."""
    from gvfx.worker import _REQUESTS

    msgs = _doc_messages()
    typed = [m for m in msgs if "type" in m]
    assert len(typed) >= 14
    for m in typed:
        assert m["v"] == 1 and m["type"] in set(_REQUESTS) | EVENTS, m
        if m["type"] in _REQUESTS and m["type"] != "shutdown":
            assert isinstance(m["id"], str)
    w = RawWorker(tmp_path)
    try:
        hello = w.next()
        doc_hello = next(m for m in typed if m["type"] == "hello")
        assert set(doc_hello) == set(hello)
        doc_ping = next(m for m in typed if m["type"] == "ping")
        w.send(doc_ping)
        ev, _ = w.until(doc_ping["id"])
        doc_reply = next(m for m in typed if m["type"] == "result" and m["id"] == doc_ping["id"])
        assert set(doc_reply) == set(ev) and set(doc_reply["data"]) == set(ev["data"])
        w.send({"type": "shutdown"})
        assert w.proc.wait(30) == 0
    finally:
        if w.proc.poll() is None:
            w.proc.kill()


def test_unexpected_exceptions_become_one_line_errors(monkeypatch, tmp_path: Path) -> None:
    """A bug in a handler (not a GvfxError) gives kind = its class name, a one-line message and the
    traceback; the worker keeps answering."""
    import io

    import gvfx.worker as wmod

    def broken(path):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(wmod, "timeline_versions", broken)
    out = io.BytesIO()
    w = wmod.Worker(out)
    w.handle_line(json.dumps({"v": 1, "type": "versions", "id": "x1", "timeline": "a.otio"}).encode())
    deadline = time.monotonic() + 10
    while b'"x1"' not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    w.handle_line(b'{"v": 1, "type": "ping", "id": "x2"}')
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    err = next(e for e in events if e["id"] == "x1")
    assert err["type"] == "error" and err["kind"] == "RuntimeError"
    assert err["message"] == "boom second line" and "broken" in err["traceback"]
    assert next(e for e in events if e["id"] == "x2")["type"] == "result"
