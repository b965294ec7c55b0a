"""Disk trouble: a full disk (ENOSPC) or a read-only output (EROFS, chmod 0555) while gvfx writes a
``version.json``, the timeline or a lock ends in one line naming the path and the errno's meaning,
leaves no empty version folder and no temporary file, and changes nothing already written.

The faults are injected where the operating system reports them (``os`` functions raising the real
errno), plus a real read-only folder when the tests do not run as root (root ignores the mode bits).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from gvfx.cli import EXIT_ERROR, main
from tests.pipeline.pipeline_shot import make_shot

FRAMES = [1001, 1002]


@pytest.fixture()
def shot(tmp_path: Path) -> Path:
    job = make_shot(tmp_path / "sh", FRAMES, size=(32, 18))
    assert main(["render", str(job), "-q"]) == 0
    return job


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes (lock files hold only a note of their last holder: their names only)."""
    return {str(p.relative_to(root)): (b"" if p.name.endswith(".lock") else p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def _fail(monkeypatch, module, name: str, code: int, when=lambda *a, **k: True) -> None:
    real = getattr(module, name)

    def fake(*args, **kwargs):
        if when(*args, **kwargs):
            raise OSError(code, os.strerror(code), str(args[0]) if args else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, fake)


def _render_fails(job: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["render", str(job), "-q"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("gvfx: error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def _assert_nothing_changed(root: Path, before: dict[str, bytes]) -> None:
    after = _snapshot(root)
    assert not [p for p in after if p.endswith(".tmp")], [p for p in after if p.endswith(".tmp")]
    assert after == before
    for kind in ("elements/smoke", "elements/sparks", "comp"):
        assert sorted(p.name for p in (root / kind).iterdir()) == ["v001"]


@pytest.mark.parametrize("code, meaning", [(errno.ENOSPC, "No space left on device"),
                                           (errno.EROFS, "Read-only file system")])
def test_version_json_on_a_full_or_read_only_disk(shot: Path, monkeypatch, capsys, code: int, meaning: str) -> None:
    root = shot.parent
    before = _snapshot(root)
    import gvfx.versions

    _fail(monkeypatch, gvfx.versions.tempfile, "mkstemp", code,
          when=lambda *a, **k: str(k.get("prefix", "")).startswith(".version.json"))
    line = _render_fails(shot, capsys)
    assert "version.json" in line and meaning in line and str(root) in line
    _assert_nothing_changed(root, before)


def test_version_json_write_itself_fails_midway(shot: Path, monkeypatch, capsys) -> None:
    """The temporary file exists and writing into it fails (ENOSPC): the file is removed."""
    root = shot.parent
    before = _snapshot(root)
    real_fdopen = os.fdopen
    made: list[str] = []

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fdopen(fd, mode="r", *a, **k):
        name = os.readlink(f"/proc/self/fd/{fd}")
        f = real_fdopen(fd, mode, *a, **k)
        if "w" in mode and ".version.json." in name:
            made.append(name)
            return Full(f)
        return f

    import gvfx.versions

    monkeypatch.setattr(gvfx.versions.os, "fdopen", fdopen)
    line = _render_fails(shot, capsys)
    assert "version.json" in line and "No space left on device" in line
    assert made and not any(os.path.exists(m) for m in made)  # the temporary file existed, and is gone
    _assert_nothing_changed(root, before)


def test_timeline_on_a_full_disk(shot: Path, monkeypatch, capsys) -> None:
    root = shot.parent
    before = _snapshot(root)
    import gvfx.timeline

    _fail(monkeypatch, gvfx.timeline.os, "fsync", errno.ENOSPC)
    line = _render_fails(shot, capsys)
    assert "sh010.otio" in line and "No space left on device" in line
    _assert_nothing_changed(root, before)


def test_lock_on_a_read_only_disk(shot: Path, monkeypatch, capsys) -> None:
    root = shot.parent
    before = _snapshot(root)
    import gvfx.lock

    _fail(monkeypatch, gvfx.lock.os, "open", errno.EROFS, when=lambda p, *a, **k: str(p).endswith(".gvfx.lock"))
    line = _render_fails(shot, capsys)
    assert ".gvfx.lock" in line and "Read-only file system" in line and "shot lock" in line
    _assert_nothing_changed(root, before)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0555 folder: the mode bits do not apply")
def test_a_real_read_only_folder(shot: Path, capsys) -> None:
    root = shot.parent
    before = _snapshot(root)
    folders = [root / "elements" / "smoke", root / "elements" / "sparks", root / "comp", root]
    for d in folders:
        d.chmod(0o555)
    try:
        line = _render_fails(shot, capsys)
        assert "Permission denied" in line or "Read-only" in line
        _assert_nothing_changed(root, before)
    finally:
        for d in folders:
            d.chmod(0o755)


def test_a_new_output_folder_that_cannot_be_made(tmp_path: Path, monkeypatch, capsys) -> None:
    job = make_shot(tmp_path / "sh", FRAMES, size=(32, 18))
    import gvfx.render

    _fail(monkeypatch, Path, "mkdir", errno.ENOSPC, when=lambda self, *a, **k: self == job.parent / "elements" / "smoke")
    line = _render_fails(job, capsys)
    assert "elements/smoke" in line and "No space left on device" in line
    assert not (job.parent / "elements" / "smoke").exists()
    assert not list(job.parent.rglob("*.tmp")) and not list(job.parent.rglob("v0*"))
