"""A running job: the worker client, its events and the job's state. Plain Python, no bpy.

The modal operator's timer and the blocking (background-mode) path both call :meth:`JobSession.step`,
so they run the same code. The worker process is kept between jobs (:func:`get_client`) and stopped
when the add-on is disabled.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from .vendor.gvfx_client import WorkerClient, WorkerError

_CLIENTS: dict = {}


class ExecutableError(RuntimeError):
    """The gvfx executable cannot be found; the message says where to set it."""


def resolve_executable(pref: str) -> str:
    """The preference, else ``$GVFX_EXECUTABLE``, else ``gvfx`` on PATH."""
    where = "the add-on preference"
    exe = (pref or "").strip()
    if not exe:
        exe, where = os.environ.get("GVFX_EXECUTABLE", "").strip(), "$GVFX_EXECUTABLE"
    if not exe:
        found = shutil.which("gvfx")
        if not found:
            raise ExecutableError("gvfx is not installed or not on PATH: set the gvfx executable in "
                                  "Preferences > Add-ons > gvfx (e.g. /path/to/venv/bin/gvfx)")
        return found
    exe = os.path.expanduser(exe)
    if os.path.isdir(exe) or not os.path.isfile(exe):
        found = shutil.which(exe) if os.sep not in exe else None
        if not found:
            raise ExecutableError(f"gvfx executable not found: {exe} (from {where}): fix it in "
                                  "Preferences > Add-ons > gvfx, pointing at your gvfx venv's bin/gvfx")
        return found
    if not os.access(exe, os.X_OK):
        raise ExecutableError(f"gvfx executable is not executable: {exe} (from {where}): chmod +x it "
                              "or point the preference at the venv's bin/gvfx")
    return exe


def worker_env(models_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")}
    if models_dir.strip():
        env["GVFX_MODELS"] = os.path.abspath(os.path.expanduser(models_dir.strip()))
    return env


def get_client(executable: str, models_dir: str = "") -> WorkerClient:
    """A running worker for this executable and model store, started if needed (WorkerError if it cannot)."""
    key = (executable, models_dir)
    client = _CLIENTS.get(key)
    if client is not None and client.alive:
        return client
    client = WorkerClient(executable, env=worker_env(models_dir), start_timeout=60)
    client.start()
    _CLIENTS[key] = client
    return client


def forget_client(client: WorkerClient) -> None:
    for k, c in list(_CLIENTS.items()):
        if c is client:
            del _CLIENTS[k]


def shutdown_all() -> None:
    for k, client in list(_CLIENTS.items()):
        try:
            client.shutdown(timeout=5)
        except Exception:  # noqa: BLE001 - shutting down: nothing more to do
            pass
        _CLIENTS.pop(k, None)


@dataclass
class JobSession:
    """One submitted job. ``state`` is ``running``, ``done``, ``error`` or ``cancelled``."""

    client: WorkerClient
    job_id: str
    state: str = "running"
    stage: str = "queued"
    done: int = 0
    total: int = 0
    message: str = ""
    traceback: str = ""
    outputs: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    cancel_requested: bool = False

    @classmethod
    def submit(cls, client: WorkerClient, job: dict, base_dir: str) -> "JobSession":
        return cls(client, client.submit(job=job, base_dir=base_dir))

    @property
    def finished(self) -> bool:
        return self.state != "running"

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def status_line(self) -> str:
        if self.state == "running":
            count = f" {self.done}/{self.total}" if self.total else ""
            what = "cancelling" if self.cancel_requested else self.stage
            return f"gvfx: {what}{count}"
        return f"gvfx: {self.state}" + (f": {self.message}" if self.message else "")

    def step(self) -> bool:
        """Handle the events that arrived (never blocks). True when the job has ended."""
        if self.finished:
            return True
        try:
            events = self.client.poll()
        except WorkerError as exc:
            self.state, self.message = "error", " ".join(str(exc).split()) or "the gvfx worker died"
            forget_client(self.client)
            return True
        for ev in events:
            if ev.get("id") != self.job_id:
                continue
            kind = ev.get("type")
            if kind == "progress":
                self.stage = str(ev.get("stage") or self.stage)
                self.done, self.total = int(ev.get("done") or 0), int(ev.get("total") or 0)
            elif kind == "accepted":
                self.stage = "accepted"
            elif kind == "result":
                self.state, self.outputs, self.data = "done", ev.get("outputs") or {}, ev.get("data") or {}
            elif kind == "error":
                hint = ev.get("hint")
                self.state = "error"
                self.message = str(ev.get("message") or ev.get("kind") or "error") + (f" ({hint})" if hint else "")
                self.traceback = str(ev.get("traceback") or "")
            elif kind == "cancelled":
                self.state, self.message = "cancelled", str(ev.get("message") or "")
        return self.finished

    def cancel(self) -> None:
        if self.finished or self.cancel_requested:
            return
        self.cancel_requested = True
        try:
            self.client.cancel(self.job_id)
        except WorkerError as exc:
            self.state, self.message = "error", " ".join(str(exc).split())
