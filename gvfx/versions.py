"""Versioned output folders (``vNNN``): a render never overwrites a version, it makes the next one or
resumes an unfinished one with the same spec hash."""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

_VERSION_RE = re.compile(r"^v(\d{3,})$")


def versions(root: Path) -> list[Path]:
    """Existing version folders under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _VERSION_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def read_version_info(vdir: Path) -> dict:
    p = vdir / "version.json"
    try:
        return json.loads(p.read_text()) if p.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def write_version_info(vdir: Path, info: dict) -> None:
    """Atomically replace ``version.json``."""
    vdir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=vdir, prefix=".version.json.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
    os.replace(tmp, vdir / "version.json")


def next_version(root: Path) -> Path:
    """Create and return the next free ``vNNN`` folder (race-safe: ``mkdir`` fails if it exists)."""
    root.mkdir(parents=True, exist_ok=True)
    existing = versions(root)
    n = int(existing[-1].name[1:]) + 1 if existing else 1
    while True:
        p = root / f"v{n:03d}"
        try:
            p.mkdir()
            return p
        except FileExistsError:
            n += 1


def find_resumable(root: Path, spec_hash: str) -> Path | None:
    """The newest version made from the same spec hash, if any (complete or not)."""
    for vdir in reversed(versions(root)):
        if read_version_info(vdir).get("spec_hash") == spec_hash:
            return vdir
    return None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
