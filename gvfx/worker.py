"""``gvfx worker``: a long-lived process that renders jobs for host applications (Blender, Nuke, Qt).

It speaks newline-delimited JSON (docs/worker_protocol.md): requests on stdin, events on stdout, logs on
stderr. Why a process: hosts stay free of numpy/torch/OIIO, and the worker keeps what it loaded (engines
cached by :func:`gvfx.engines.get_engine`, and their models) between jobs.

Threads: the main thread reads stdin and answers ``ping``/``cancel``/``shutdown`` at once; one job
thread runs submitted jobs from a queue, one at a time; ``doctor``/``versions``/``preview`` run on short
daemon threads (at most two at a time) so they answer while a job renders (``versions`` and ``preview``
are answered by :mod:`gvfx.worker_views`). Every event is written by
:meth:`Worker.emit` under one lock, one line each.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence
from typing import Any, BinaryIO, Callable

import gvfx
from gvfx.errors import CancelledError, GvfxError, InputError
from gvfx.worker_views import make_preview, timeline_versions

log = logging.getLogger(__name__)

__all__ = ["PROTOCOL", "ProtocolError", "Worker", "run_worker"]

PROTOCOL = 1
#: progress events of one stage are sent at most this often (the first and the last always are)
PROGRESS_INTERVAL_S = 0.1
_REQUESTS = ("submit", "cancel", "doctor", "ping", "versions", "preview", "shutdown")


class ProtocolError(InputError):
    """A request line the worker cannot understand: not JSON, not an object, unknown type, bad field."""


class Terminated(BaseException):
    """SIGTERM arrived: the worker stops as on a closed stdin (jobs cancelled, versions ``partial``)."""


@dataclass
class _Entry:
    """A submitted job: its request, its cancel flag and its state (queued, running, done)."""

    id: str
    request: dict
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"


def _jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON: non-finite floats become null, paths and unknown objects text."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if hasattr(obj, "items"):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset, Sequence)) and not isinstance(obj, (str, bytes)):
        return [_jsonable(v) for v in obj]  # also OTIO's AnyVector
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        try:
            return _jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    return str(obj)


def one_line(text: str) -> str:
    """``text`` on one line (newlines become spaces), as the CLI prints an error."""
    return " ".join(str(text).split())


def error_fields(exc: BaseException) -> dict:
    """``kind``, ``message`` (one line: ``str(exc)``, as the CLI prints it), ``traceback``; plus ``path``,
    ``frame`` and ``hint`` of a GvfxError."""
    fields: dict[str, Any] = {"kind": type(exc).__name__, "message": one_line(str(exc)) or type(exc).__name__,
                              "traceback": "".join(traceback.format_exception(exc))}
    if isinstance(exc, GvfxError):
        fields.update(path=exc.path, frame=exc.frame, hint=exc.hint)
    return fields


class Worker:
    """The request loop. ``out`` receives the protocol lines (bytes); see :func:`run_worker`."""

    def __init__(self, out: BinaryIO, *, preview_dir: Path | None = None, shutdown_timeout: float = 30.0) -> None:
        self._out = out
        self._out_lock = threading.Lock()
        self._lock = threading.Lock()  # guards _entries / entry states
        self._entries: dict[str, _Entry] = {}
        self._jobs: queue.Queue[_Entry | None] = queue.Queue()
        self._aux = threading.BoundedSemaphore(2)
        self._aux_threads: list[threading.Thread] = []  # answered before the worker exits
        self._preview_dir = preview_dir
        self._shutdown_timeout = shutdown_timeout
        self._started = time.monotonic()
        self.job_thread = threading.Thread(target=self._job_loop, name="gvfx-job", daemon=True)

    # ------------------------------------------------------------------------------------ events
    def emit(self, type_: str, id_: str | None = None, **fields: Any) -> None:
        """Write one event line (``v``, ``type``, ``id`` when about a request, then ``fields``)."""
        msg: dict[str, Any] = {"v": PROTOCOL, "type": type_}
        if id_ is not None or type_ in ("error", "result", "accepted", "progress", "cancelled"):
            msg["id"] = id_
        msg.update(fields)
        line = json.dumps(_jsonable(msg), ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        with self._out_lock:
            try:
                self._out.write(line.encode("ascii") + b"\n")
                self._out.flush()
            except (BrokenPipeError, ValueError, OSError) as exc:  # the host went away: stdin EOF follows
                log.warning("cannot write event %s: %s", type_, exc)

    def _error(self, id_: str | None, exc: BaseException) -> None:
        if not isinstance(exc, GvfxError):
            log.error("request %s failed unexpectedly", id_, exc_info=exc)
        self.emit("error", id_, **error_fields(exc))

    # ----------------------------------------------------------------------------------- serving
    def serve(self, inp: BinaryIO) -> int:
        """Send ``hello``, then answer request lines until ``shutdown`` or end of input."""
        self.job_thread.start()
        self.emit("hello", gvfx=gvfx.__version__, pid=os.getpid(), protocol=PROTOCOL,
                  python=sys.version.split()[0], cwd=os.getcwd())
        try:
            for raw in iter(inp.readline, b""):
                if not self.handle_line(raw):
                    break
            else:
                log.info("end of input: shutting down")
        except KeyboardInterrupt:
            log.info("interrupted: shutting down")
        except Terminated:
            log.info("SIGTERM: cancelling and shutting down")
        self.close()
        return 0

    def handle_line(self, raw: bytes | str) -> bool:
        """Answer one request line; False when it was ``shutdown``."""
        id_: str | None = None
        try:
            try:
                text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            except UnicodeDecodeError:
                raise ProtocolError("request line is not UTF-8") from None
            if not text.strip():
                return True
            try:
                req = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ProtocolError(f"not JSON ({exc.msg} at column {exc.colno}): {text.strip()[:80]!r}") from None
            if not isinstance(req, dict):
                raise ProtocolError(f"a request must be a JSON object, got {type(req).__name__}")
            v = req.get("v", PROTOCOL)
            if isinstance(v, bool) or not isinstance(v, int) or v != PROTOCOL:  # true == 1 in Python
                raise ProtocolError(f"v: protocol version {req.get('v')!r} is not supported",
                                    hint=f"this worker speaks version {PROTOCOL}")
            type_ = req.get("type")
            if type_ == "shutdown":
                return False
            raw_id = req.get("id")
            if not isinstance(raw_id, str) or not raw_id:
                raise ProtocolError(f"request {type_!r}: id: expected a non-empty string, got {raw_id!r}")
            if type_ not in _REQUESTS:
                id_ = raw_id
                raise ProtocolError(f"type: unknown request type {type_!r}", hint=f"one of {', '.join(_REQUESTS)}")
            id_ = raw_id
            self._dispatch(type_, id_, req)
        except Exception as exc:  # noqa: BLE001 - the worker stays up whatever a request does
            self._error(id_, exc)
        return True

    def _dispatch(self, type_: str, id_: str, req: dict) -> None:
        if type_ == "ping":
            self.emit("result", id_, outputs=None, data=self._status())
        elif type_ == "cancel":
            self._cancel(id_)
        elif type_ == "submit":
            self._submit(id_, req)
        else:
            handler: Callable[[dict], dict] = getattr(self, f"_do_{type_}")
            t = threading.Thread(target=self._run_aux, args=(handler, id_, req), name=f"gvfx-{type_}", daemon=True)
            with self._lock:
                self._aux_threads = [a for a in self._aux_threads if a.is_alive()] + [t]
            t.start()

    def _status(self) -> dict:
        with self._lock:
            running = next((e.id for e in self._entries.values() if e.state == "running"), None)
            queued = [e.id for e in self._entries.values() if e.state == "queued"]
        engines = sorted(getattr(sys.modules.get("gvfx.engines"), "_cache", {}) or {})
        return {"pong": True, "pid": os.getpid(), "gvfx": gvfx.__version__, "protocol": PROTOCOL,
                "running": running, "queued": queued, "engines_loaded": engines,
                "uptime_s": round(time.monotonic() - self._started, 3)}

    def _run_aux(self, handler: Callable[[dict], dict], id_: str, req: dict) -> None:
        """Run a doctor/versions/preview handler on its own thread (two at a time: the reader never waits)."""
        with self._aux:
            try:
                self.emit("result", id_, outputs=None, data=handler(req))
            except Exception as exc:  # noqa: BLE001
                self._error(id_, exc)

    # -------------------------------------------------------------------------------------- jobs
    def _submit(self, id_: str, req: dict) -> None:
        has_job, has_file = req.get("job") is not None, req.get("job_file") is not None
        if has_job == has_file:
            raise ProtocolError("submit: give exactly one of job (a mapping) or job_file (a path)")
        if has_job and not isinstance(req["job"], dict):
            raise ProtocolError(f"job: expected a mapping, got {type(req['job']).__name__}")
        for key in ("job_file", "base_dir"):
            if req.get(key) is not None and not isinstance(req[key], str):
                raise ProtocolError(f"{key}: expected a path (string), got {req[key]!r}")
        for key in ("resume", "sim_only"):
            if not isinstance(req.get(key, False), bool):
                raise ProtocolError(f"{key}: expected true or false, got {req[key]!r}")
        with self._lock:
            if id_ in self._entries:
                raise ProtocolError(f"id {id_!r} was already used for a job", hint="give each submit a new id")
            entry = _Entry(id_, req)
            self._entries[id_] = entry
            position = sum(e.state in ("queued", "running") for e in self._entries.values()) - 1
        self.emit("accepted", id_, position=position)
        self._jobs.put(entry)

    def _cancel(self, id_: str) -> None:
        with self._lock:
            entry = self._entries.get(id_)
            if entry is None:
                raise InputError(f"cancel: no job with id {id_!r}", hint="cancel takes the id of a submit")
            entry.cancel.set()
            was = entry.state
            if was == "queued":
                entry.state = "done"
        if was == "queued":
            self.emit("cancelled", id_, stage="queued")
        elif was == "done":
            log.info("cancel %s: the job has already finished", id_)

    def _job_loop(self) -> None:
        while True:
            entry = self._jobs.get()
            if entry is None:
                return
            with self._lock:
                if entry.state != "queued":
                    continue  # cancelled while queued: its event was sent
                entry.state = "running"
            try:
                self._run_job(entry)
            finally:
                with self._lock:
                    entry.state = "done"

    def _run_job(self, entry: _Entry) -> None:
        t0 = time.monotonic()
        try:
            job, frames = _load_job(entry.request)
            if entry.cancel.is_set():
                raise CancelledError("render cancelled before it started")
            outputs, data = _render(job, frames, entry, self._progress(entry.id))
            data["elapsed_s"] = round(time.monotonic() - t0, 3)
            self.emit("result", entry.id, outputs=outputs, data=data)
        except CancelledError as exc:
            self.emit("cancelled", entry.id, stage="running", message=one_line(str(exc)), frame=exc.frame)
        except Exception as exc:  # noqa: BLE001
            self._error(entry.id, exc)

    def _progress(self, id_: str) -> Callable[[str, int, int], None]:
        last: dict[str, float] = {}

        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if stage in last and 0 < done < total and now - last[stage] < PROGRESS_INTERVAL_S:
                return
            last[stage] = now
            self.emit("progress", id_, stage=stage, done=int(done), total=int(total))

        return progress

    def close(self) -> None:
        """Cancel every job (queued ones at once, the running one between frames) and stop the job
        thread, waiting at most ``shutdown_timeout`` seconds."""
        with self._lock:
            queued = [e for e in self._entries.values() if e.state == "queued"]
            for e in self._entries.values():
                e.cancel.set()
            for e in queued:
                e.state = "done"
        for e in queued:
            self.emit("cancelled", e.id, stage="queued")
        self._jobs.put(None)
        deadline = time.monotonic() + self._shutdown_timeout
        if self.job_thread.is_alive():
            self.job_thread.join(self._shutdown_timeout)
        if self.job_thread.is_alive():
            log.warning("the running job did not stop within %.0f s; exiting anyway", self._shutdown_timeout)
        # requests already received (doctor, versions, preview) are answered before the process ends
        with self._lock:
            pending = list(self._aux_threads)
        for t in pending:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("request thread %s did not finish before shutdown", t.name)

    # ------------------------------------------------------------------------- other requests
    def _do_doctor(self, req: dict) -> dict:
        from gvfx.doctor import exit_code, format_checks, run_doctor

        root = Path(req.get("output_root") or os.getcwd())
        checks = run_doctor(output_root=root, models_dir=Path(req["models"]) if req.get("models") else None)
        return {"checks": [{"name": c.name, "status": c.status, "ok": c.ok, "required": c.required,
                            "detail": c.detail, "fix": c.fix} for c in checks],
                "exit_code": exit_code(checks), "text": format_checks(checks), "worker": self._status()}

    def _do_versions(self, req: dict) -> dict:
        if not isinstance(req.get("timeline"), str):
            raise ProtocolError("versions: timeline: expected the path of a shot .otio file")
        return timeline_versions(req["timeline"])

    def _do_preview(self, req: dict) -> dict:
        if not isinstance(req.get("path"), str):
            raise ProtocolError("preview: path: expected the path of an EXR file")
        return make_preview(req["path"], channel=req.get("channel", "rgb"), exposure=req.get("exposure", 0.0),
                            max_size=req.get("max_size", 512), frame=req.get("frame"),
                            colorspace=req.get("colorspace"), out_dir=self._preview_dir)


def _load_job(req: dict) -> tuple[Any, tuple[int, int] | None]:
    """The validated Job of a submit request and its frame range (None: every frame)."""
    from gvfx.job import load_job, parse_frame_range, parse_job
    from gvfx.errors import JobError

    if req.get("job_file") is not None:
        job = load_job(Path(req["job_file"]).expanduser())
    else:
        base = Path(req.get("base_dir") or os.getcwd()).expanduser()
        if not base.is_dir():
            raise JobError("base_dir: folder not found", path=base)
        job = parse_job(req["job"], base.resolve())
    frames = req.get("frames")
    return job, (None if frames in (None, "") else parse_frame_range(frames, "frames"))


def _version_roots(job: Any) -> list[Path]:
    return [job.output / "elements" / s.name for s in job.elements] + [job.output / "comp"]


def _render(job: Any, frames: tuple[int, int] | None, entry: _Entry,
            progress: Callable[[str, int, int], None]) -> tuple[dict, dict]:
    """Render ``job``; on cancel or failure, versions this job opened are marked ``partial`` (resumable)."""
    from gvfx.render import render_job
    from gvfx.versions import versions

    before = {p for root in _version_roots(job) for p in versions(root)}
    try:
        res = render_job(job, frames=frames, resume=bool(entry.request.get("resume", False)), progress=progress,
                         cancel=entry.cancel.is_set, sim_only=bool(entry.request.get("sim_only", False)))
    except BaseException as exc:
        _mark_partial(job, before, "cancelled" if isinstance(exc, CancelledError) else "failed")
        raise
    outputs = {"elements": {n: _sequence(o) for n, o in res.elements.items()},
               "comp": _sequence(res.comp) if res.comp else None,
               "timeline": str(res.timeline) if res.timeline else None}
    data = {"frames": [res.plate.frames[0], res.plate.frames[-1]], "plate": res.plate.sequence.pattern,
            "estimates": {n: e.to_dict() for n, e in res.estimates.items() if hasattr(e, "to_dict")}}
    return outputs, data


def _sequence(out: Any) -> dict:
    from gvfx.versions import read_version_info

    info = read_version_info(out.version_dir)
    return {"pattern": out.pattern, "version": out.version_dir.name, "version_dir": str(out.version_dir),
            "frames": [out.frames[0], out.frames[-1]] if out.frames else None, "status": info.get("status"),
            "spec_hash": out.spec_hash}


def _mark_partial(job: Any, before: set[Path], reason: str) -> None:
    """After a cancel or failure, versions this job left ``rendering`` (created by it), or marked
    ``failed`` by a cancel, become ``partial``: every frame on disk is whole (writes are atomic) and
    ``--resume`` continues them. (gvfx.render marks the outcome itself; this covers a cancel it reports
    as a failure.)"""
    from gvfx.versions import now_iso, read_version_info, versions, write_version_info

    for root in _version_roots(job):
        for vdir in versions(root):
            info = read_version_info(vdir)
            status, error = info.get("status"), str(info.get("error") or "")
            stale = status == "rendering" and vdir not in before and not info.get("renderers")
            cancelled = reason == "cancelled" and status == "failed" and error.startswith("CancelledError")
            if stale or cancelled:
                info.update(status="partial", stopped=reason, updated=now_iso())
                info.pop("error", None)
                write_version_info(vdir, info)
                log.info("%s: marked partial (%s)", vdir, reason)


def _protocol_stream() -> BinaryIO:
    """The real stdout for protocol lines; file descriptor 1 (and ``sys.stdout``) go to stderr, so a
    stray ``print`` in any library, or C code writing to fd 1, can never corrupt the protocol."""
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "wb", buffering=0)


def run_worker(*, preview_dir: Path | None = None, shutdown_timeout: float = 30.0) -> int:
    """Serve the protocol on this process's stdin/stdout until ``shutdown`` or end of input, then end
    the process (exit code 0)."""
    import signal

    out = _protocol_stream()
    worker = Worker(out, preview_dir=preview_dir, shutdown_timeout=shutdown_timeout)

    def on_term(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the clean-up must not be interrupted
        raise Terminated()

    signal.signal(signal.SIGTERM, on_term)
    code = worker.serve(sys.stdin.buffer)
    # Exit at once: every event is written and every file is renamed into place, and tearing down an
    # interpreter holding torch takes seconds (or forever with a job that would not stop).
    logging.shutdown()
    sys.stderr.flush()
    out.close()
    os._exit(code)
