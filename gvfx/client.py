"""A client for ``gvfx worker`` (docs/worker_protocol.md), for host applications.

Standard library only, and nothing from gvfx: Blender, Nuke or a Qt tool imports it without numpy or
torch, and an add-on may carry it as a single file. Python 3.9+.

    client = WorkerClient(["/path/to/venv/bin/gvfx", "worker"])   # or WorkerClient("gvfx")
    client.start()                                # waits for hello; WorkerError if it cannot start
    job_id = client.submit(job_file="/shots/sh010/job.yaml", frames="1001-1010")
    for event in client.poll():                   # from a UI timer: never blocks
        ...
    result = client.wait(job_id, timeout=600)     # or block (a worker that dies raises WorkerError)
    client.shutdown()

A reader thread parses the worker's stdout into events; a second thread keeps the last lines of its
stderr for error messages. Nothing here waits without a timeout or without watching the process.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

__all__ = ["WorkerClient", "WorkerError", "WorkerTimeout", "PROTOCOL"]

PROTOCOL = 1
#: event types that end a request
FINAL = ("result", "error", "cancelled")
#: environment variables of a host's own Python that would break the worker's Python
_HOST_PYTHON_VARS = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE")


class WorkerError(RuntimeError):
    """The worker cannot be started, died, or stopped answering. The message says which and shows the
    end of its stderr."""


class WorkerTimeout(WorkerError, TimeoutError):
    """A wait ran out of time while the worker was still running."""


class WorkerClient:
    """One ``gvfx worker`` process and its events.

    ``executable``: a command name or path (``"gvfx"``, run as ``gvfx worker``), or a full argv list
    (``[sys.executable, "-m", "gvfx", "worker"]``). ``env``: the whole environment of the worker (default:
    this process's, without ``PYTHONHOME``/``PYTHONPATH``, which a host's embedded Python sets).
    """

    def __init__(self, executable: Union[str, Sequence[str]] = "gvfx", *, env: Optional[Dict[str, str]] = None,
                 start_timeout: float = 30.0, cwd: Optional[str] = None, max_events: int = 10000) -> None:
        self.argv: List[str] = [executable, "worker"] if isinstance(executable, str) else list(executable)
        if not self.argv:
            raise ValueError("executable: empty argv")
        self.env = env
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.hello: Optional[dict] = None
        self.noise: "collections.deque[str]" = collections.deque(maxlen=50)  # non-JSON stdout lines
        self._proc: Optional[subprocess.Popen] = None
        self._stderr: "collections.deque[str]" = collections.deque(maxlen=200)
        self._events: "collections.deque[dict]" = collections.deque(maxlen=max_events)
        self._final: Dict[Any, dict] = {}
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._eof = False
        self._closing = False
        self._threads: List[threading.Thread] = []
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:6]

    # --------------------------------------------------------------------------------- process
    @property
    def alive(self) -> bool:
        """True while the worker process runs."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None else None

    def stderr_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines the worker wrote to stderr (its log)."""
        with self._cond:
            return "\n".join(list(self._stderr)[-lines:])

    def start(self) -> dict:
        """Start the worker and wait for its ``hello`` (returned); WorkerError naming the executable and
        the end of its stderr when it is missing, dies, or says nothing for ``start_timeout`` seconds."""
        if self._proc is not None:
            raise WorkerError("this client has already started a worker")
        env = self.env
        if env is None:
            env = {k: v for k, v in os.environ.items() if k not in _HOST_PYTHON_VARS}
        env = dict(env, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
        try:
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, env=env, cwd=self.cwd, bufsize=0,
                                          creationflags=flags)
        except OSError as exc:
            raise WorkerError(f"cannot start the gvfx worker {self.argv[0]!r}: {exc.strerror or exc}"
                              " (is gvfx installed, and is this the path of its `gvfx` command?)") from None
        for target, name in ((self._read_stdout, "gvfx-client-stdout"), (self._read_stderr, "gvfx-client-stderr")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        deadline = time.monotonic() + self.start_timeout
        with self._cond:
            while self.hello is None:
                if self._eof or self._proc.poll() is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.2))
        if self.hello is None:
            code = self._reap()
            if code is None:
                why = ("closed its output without a hello" if self._eof
                       else f"sent no hello within {self.start_timeout:g} s")
                self._kill()
            else:
                self._join_stderr()
                why = f"exited at start with code {code}"
            raise WorkerError(f"the gvfx worker {' '.join(self.argv)!r} {why}{self._tail_text()}")
        if self.hello.get("protocol") != PROTOCOL:
            self._kill()
            raise WorkerError(f"the gvfx worker speaks protocol {self.hello.get('protocol')!r}, this client "
                              f"{PROTOCOL}: update the client (gvfx/client.py) or gvfx")
        return self.hello

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            for raw in iter(self._proc.stdout.readline, b""):
                try:
                    event = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    event = None
                with self._cond:
                    if not isinstance(event, dict):
                        self.noise.append(raw.decode("utf-8", "replace").rstrip())
                    elif event.get("type") == "hello" and self.hello is None:
                        self.hello = event
                    else:
                        self._events.append(event)
                        if event.get("type") in FINAL and event.get("id") is not None:
                            self._final[event["id"]] = event
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        try:
            for raw in iter(self._proc.stderr.readline, b""):
                with self._cond:
                    self._stderr.append(raw.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            pass

    def _join_stderr(self) -> None:
        if len(self._threads) > 1:
            self._threads[1].join(1.0)

    def _tail_text(self) -> str:
        tail = self.stderr_tail()
        return f":\n{tail}" if tail else " (nothing on stderr)"

    def _reap(self) -> Optional[int]:
        """The exit code; after end of output, wait up to 2 s for the process to finish exiting."""
        if self._proc is None:
            return None
        if self._eof:
            try:
                self._proc.wait(2)
            except subprocess.TimeoutExpired:
                pass
        return self._proc.poll()

    def _dead_error(self, block: bool = True) -> WorkerError:
        """The error for a worker that has exited; ``block`` waits (up to ~3 s) for its exit code and
        the rest of its stderr, which ``poll()`` must not."""
        if block:
            code = self._reap()
            self._join_stderr()
        else:
            code = self._proc.poll() if self._proc is not None else None
        if code is not None and code < 0:
            code_text = f"{code} (killed by signal {-code})"
        else:
            code_text = str(code)
        return WorkerError(f"gvfx worker exited with code {code_text}{self._tail_text()}")

    def _check_alive(self) -> None:
        if self._proc is None:
            raise WorkerError("the gvfx worker is not started: call start() first")
        if self._proc.poll() is not None:
            raise self._dead_error()

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    # -------------------------------------------------------------------------------- requests
    def new_id(self, prefix: str = "r") -> str:
        """A fresh request id."""
        return f"{prefix}-{self._prefix}-{next(self._ids)}"

    def send(self, message: dict) -> None:
        """Write one request line (``v`` is added). WorkerError when the worker is gone."""
        self._check_alive()
        line = json.dumps(dict({"v": PROTOCOL}, **message), ensure_ascii=True, separators=(",", ":"))
        assert self._proc is not None and self._proc.stdin is not None
        try:
            with self._write_lock:
                self._proc.stdin.write(line.encode("ascii") + b"\n")
                self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            time.sleep(0.2)  # let the exit code arrive
            raise self._dead_error() from None

    def submit(self, job: Optional[dict] = None, *, job_file: Optional[str] = None, frames: Optional[str] = None,
               resume: bool = False, base_dir: Optional[str] = None, id: Optional[str] = None,
               **fields: Any) -> str:
        """Queue a job (a job mapping, or a job file path); returns its id at once. Events follow:
        ``accepted``, ``progress``..., then ``result``, ``error`` or ``cancelled``."""
        if (job is None) == (job_file is None):
            raise ValueError("submit: give exactly one of job or job_file")
        job_id = id or self.new_id("job")
        msg: Dict[str, Any] = {"type": "submit", "id": job_id, "resume": bool(resume)}
        if job is not None:
            msg["job"] = job
        else:
            msg["job_file"] = os.fspath(job_file)
        if frames is not None:
            msg["frames"] = frames
        if base_dir is not None:
            msg["base_dir"] = os.fspath(base_dir)
        msg.update(fields)
        self.send(msg)
        return job_id

    def cancel(self, id: str) -> None:
        """Ask the worker to cancel job ``id`` (queued: at once; running: between frames)."""
        self.send({"type": "cancel", "id": id})

    def request(self, type: str, *, timeout: Optional[float] = 120.0, **fields: Any) -> dict:
        """Send a request (``doctor``, ``ping``, ``versions``, ``preview``...) and wait for its ``result``
        or ``error`` event, which is returned (the payload of a result is in ``data``)."""
        req_id = self.new_id(type)
        self.send(dict(fields, type=type, id=req_id))
        return self.wait(req_id, timeout)

    def wait(self, id: str, timeout: Optional[float] = None) -> dict:
        """Wait for the final event (``result``, ``error`` or ``cancelled``) of request ``id``.

        WorkerError when the worker dies first ("gvfx worker exited with code N: ..."), WorkerTimeout
        after ``timeout`` seconds (None: no limit, but a dead worker is still noticed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if id in self._final:
                    return self._final[id]
                if self._proc is None:
                    raise WorkerError("the gvfx worker is not started: call start() first")
                if self._eof or self._proc.poll() is not None:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise WorkerTimeout(f"no answer to {id!r} from the gvfx worker within {timeout:g} s")
                self._cond.wait(0.2 if left is None else min(left, 0.2))
        # the worker is gone: its last lines may still be in the pipe
        self._threads[0].join(1.0)
        with self._cond:
            if id in self._final:
                return self._final[id]
        raise self._dead_error()

    # ---------------------------------------------------------------------------------- events
    def poll(self) -> List[dict]:
        """Every event received since the last call, without blocking (for host UI timers). Once they
        are drained, a worker that died unexpectedly raises WorkerError."""
        with self._cond:
            events = list(self._events)
            self._events.clear()
            dead = self._eof and not self._closing
        if not events and (dead or (self._proc is not None and self._proc.poll() is not None and not self._closing)):
            raise self._dead_error(block=False)
        return events

    def events(self, timeout: Optional[float] = None) -> Iterator[dict]:
        """Yield events as they arrive; stop after ``timeout`` seconds without one (None: never), or when
        the worker has exited after a shutdown. A worker that died unexpectedly raises WorkerError."""
        while True:
            with self._cond:
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._events:
                    if self._eof:
                        if self._closing:
                            return
                        break
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return
                    self._cond.wait(0.2 if left is None else min(left, 0.2))
                event = self._events.popleft() if self._events else None
            if event is None:
                raise self._dead_error()
            yield event

    # -------------------------------------------------------------------------------- shutdown
    def shutdown(self, timeout: float = 10.0) -> Optional[int]:
        """Ask the worker to stop (it cancels its jobs), terminate it after ``timeout`` seconds, kill it
        5 s later. Returns its exit code."""
        if self._proc is None:
            return None
        self._closing = True
        if self._proc.poll() is None:
            try:
                self.send({"type": "shutdown"})
                self._proc.stdin.close()  # type: ignore[union-attr]
            except (WorkerError, OSError, ValueError):
                pass
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.terminate()
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._kill()
        for t in self._threads:
            t.join(1.0)
        return self._proc.poll()

    def __enter__(self) -> "WorkerClient":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
