"""One worker per Nuke session and the thread that routes its events to the main thread.

No ``nuke`` here: :class:`Session` takes ``call_in_main`` (``nuke.executeInMainThread`` in Nuke) and
calls every handler through it, so handlers may touch knobs and ProgressTasks. Handlers are
registered per request id; listeners (the gvfx panel) see every event.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

Handler = Callable[[dict], None]


class Session:
    """A started ``WorkerClient`` plus an event pump.

    ``client_factory()`` returns an unstarted client; ``call_in_main(fn, args)`` runs ``fn(*args)`` on
    the host's main thread. ``tick(id)`` handlers run every ``tick_s`` while their job is open (to notice
    a ProgressTask's Cancel between events).
    """

    def __init__(self, client_factory: Callable[[], Any], call_in_main: Callable[..., None], *,
                 tick_s: float = 0.25) -> None:
        self._factory = client_factory
        self._call = call_in_main
        self._tick_s = tick_s
        self.client: Any = None
        self._handlers: dict[str, Handler] = {}
        self._ticks: dict[str, Callable[[], None]] = {}
        self.listeners: list[Handler] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_error: str | None = None

    def ensure_started(self) -> Any:
        """The client, started on first use (WorkerError when the worker cannot start)."""
        with self._lock:
            if self.client is None or not self.client.alive:
                client = self._factory()
                client.start()
                self.client = client
                self._stop.clear()
                self._thread = threading.Thread(target=self._pump, name="gvfx-nuke-events", daemon=True)
                self._thread.start()
            return self.client

    def submit(self, handler: Handler, tick: Callable[[], None] | None = None, **submit_args: Any) -> str:
        client = self.ensure_started()
        job_id = client.new_id("nuke")
        with self._lock:
            self._handlers[job_id] = handler
            if tick is not None:
                self._ticks[job_id] = tick
        client.submit(id=job_id, **submit_args)
        return job_id

    def cancel(self, job_id: str) -> None:
        if self.client is not None and self.client.alive:
            self.client.cancel(job_id)

    def request(self, type: str, **fields: Any) -> dict:
        return self.ensure_started().request(type, **fields)

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._handlers.pop(job_id, None)
            self._ticks.pop(job_id, None)

    def _dispatch(self, event: dict) -> None:
        with self._lock:
            handler = self._handlers.get(event.get("id"))
            listeners = list(self.listeners)
        if handler is not None:
            self._call(handler, (event,))
        for fn in listeners:
            self._call(fn, (event,))
        if event.get("type") in ("result", "error", "cancelled"):
            self.forget(event.get("id"))

    def _pump(self) -> None:
        last_tick = 0.0
        while not self._stop.is_set():
            client = self.client
            try:
                events = client.poll()
            except Exception as exc:  # the worker died: fail every open job once, then stop
                self.last_error = str(exc)
                with self._lock:
                    open_ids = list(self._handlers)
                for job_id in open_ids:
                    self._dispatch({"type": "error", "id": job_id, "kind": "WorkerError",
                                    "message": str(exc).splitlines()[0] if str(exc) else "worker died"})
                return
            for ev in events:
                self._dispatch(ev)
            now = time.monotonic()
            if now - last_tick >= self._tick_s:
                last_tick = now
                with self._lock:
                    ticks = list(self._ticks.values())
                for fn in ticks:
                    self._call(fn, ())
            self._stop.wait(0.05)

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self.client is not None:
            self.client.shutdown()
            self.client = None
