"""Versioned output folders: never overwritten, resumable by spec hash."""

from pathlib import Path

from gvfx.versions import find_resumable, next_version, read_version_info, versions, write_version_info


def test_next_version_never_reuses(tmp_path: Path) -> None:
    a = next_version(tmp_path)
    b = next_version(tmp_path)
    assert (a.name, b.name) == ("v001", "v002")
    (tmp_path / "v010").mkdir()
    (tmp_path / "notes").mkdir()
    assert next_version(tmp_path).name == "v011"
    assert [p.name for p in versions(tmp_path)] == ["v001", "v002", "v010", "v011"]


def test_find_resumable_by_hash(tmp_path: Path) -> None:
    a, b = next_version(tmp_path), next_version(tmp_path)
    write_version_info(a, {"spec_hash": "aaa", "status": "partial"})
    write_version_info(b, {"spec_hash": "bbb", "status": "complete"})
    assert find_resumable(tmp_path, "aaa") == a
    assert find_resumable(tmp_path, "bbb") == b
    assert find_resumable(tmp_path, "ccc") is None
    assert read_version_info(a)["status"] == "partial"
    assert not list(a.glob("*.tmp"))
