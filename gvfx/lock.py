"""Inter-process locks on lock files (``fcntl.flock``), with a timeout and an error naming the holder.

Two kinds are used by gvfx (docs/shot_layout.md):

- the **shot lock** ``SHOT/.gvfx.lock``, held for a whole render: exclusive for a render that opens new
  versions, *shared* for ``--resume`` renders, so the farm's chunk processes of one job never block
  each other while a second fresh render of the same shot is refused (or waits, ``--wait-lock``);
- the **state lock** ``SHOT/NAME.otio.lock`` next to the timeline, held for the few milliseconds of a
  read-merge-write of the timeline and the ``version.json`` files.

Lock files are never deleted (deleting a lock file someone waits on breaks the lock). The holder of a
lock writes ``{"pid", "host", "mode", "since"}`` into it, so a refused process can say who holds it.
``flock`` locks belong to an open file description: two opens in one process also exclude each other,
and the kernel drops a lock when its process dies (a killed render never leaves a stale lock).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from gvfx.errors import GvfxError

__all__ = ["LockError", "FileLock", "pid_alive", "holder_text"]

log = logging.getLogger(__name__)

_POLL_S = 0.05


class LockError(GvfxError):
    """A lock could not be taken in time: another process holds it."""


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def holder_text(path: str | Path) -> str:
    """``pid N on HOST`` of the last process that took the lock at ``path`` (or ``an unknown process``)."""
    h = _read_holder(Path(path))
    if "pid" in h:
        return f"pid {h['pid']} on {h.get('host', '?')}"
    return "an unknown process"


class FileLock:
    """An ``flock`` on ``path``: ``with FileLock(p, timeout=5): ...``.

    ``timeout`` seconds to wait (0 = try once, None = wait forever); ``shared`` takes a shared lock
    (many shared holders, no exclusive one). ``what`` and ``hint`` shape the :class:`LockError`.
    """

    def __init__(self, path: str | Path, *, timeout: float | None = 30.0, shared: bool = False,
                 what: str = "lock", hint: str | None = None) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.shared = shared
        self.what = what
        self.hint = hint
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "FileLock":
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this FileLock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:  # a read-only or full disk: one line naming the lock file
            from gvfx.errors import output_error

            raise output_error(exc, f"the {self.what}", self.path) from None
        op = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        deadline = None if self.timeout is None else time.monotonic() + max(0.0, self.timeout)
        try:
            while True:
                try:
                    fcntl.flock(fd, op)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                    if deadline is not None and time.monotonic() >= deadline:
                        waited = f" after {self.timeout:g} s" if self.timeout else ""
                        raise LockError(f"another gvfx process ({holder_text(self.path)}) holds the "
                                        f"{self.what}{waited}", path=self.path, hint=self.hint) from None
                    time.sleep(_POLL_S)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._write_holder()
        return self

    def _write_holder(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "mode": "shared" if self.shared else "exclusive",
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps(info).encode(), 0)
        except OSError as exc:  # the lock still holds; the note is only for error messages
            log.debug("cannot note the lock holder in %s: %s", self.path, exc)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
