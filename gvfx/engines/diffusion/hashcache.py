"""sha256 of weight files, cached on disk keyed by (path, size, mtime): tens of GB are hashed once per
machine, not at every worker start.

The cache is one JSON file, ``$GVFX_HASH_CACHE`` or ``~/.cache/gvfx/weight_hashes.json``, rewritten
atomically (temporary file + rename, merged with what another process wrote meanwhile). A file whose
size or modification time changed is hashed again; an unreadable or corrupt cache is ignored (rebuilt).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path

__all__ = ["sha256_file", "cache_path", "clear_memory"]

log = logging.getLogger(__name__)

_MEM: dict[str, str] = {}
_LOCK = threading.Lock()


def cache_path() -> Path:
    """Where the hash cache lives (``$GVFX_HASH_CACHE``, else ``~/.cache/gvfx/weight_hashes.json``)."""
    env = os.environ.get("GVFX_HASH_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gvfx" / "weight_hashes.json"


def _key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _read(cache: Path) -> dict[str, str]:
    try:
        data = json.loads(cache.read_text())
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(cache: Path, key: str, digest: str) -> None:
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        data = _read(cache)
        data[key] = digest
        fd, tmp = tempfile.mkstemp(prefix=".weight_hashes.", dir=cache.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=0, sort_keys=True)
        os.replace(tmp, cache)


def sha256_file(path: str | Path) -> str:
    """The file's sha256 hex digest, from the memory or disk cache when its size and mtime are unchanged."""
    path = Path(path)
    key = _key(path)
    with _LOCK:
        if key in _MEM:
            return _MEM[key]
        cache = cache_path()
        digest = _read(cache).get(key)
        if digest is None:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    h.update(chunk)
            digest = h.hexdigest()
            _write(cache, key, digest)
            log.debug("hashed %s", path)
        _MEM[key] = digest
        return digest


def clear_memory() -> None:
    """Forget the in-process copy (the disk cache stays): tests, or a long-lived worker."""
    with _LOCK:
        _MEM.clear()
