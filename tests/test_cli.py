"""The command line: help for every subcommand, one clear error line instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gvfx.cli import build_parser, main

SUBCOMMANDS = ["demo", "render", "probe", "doctor", "engines", "effects"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gvfx", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_every_subcommand_with_a_description() -> None:
    out = run("--help")
    assert out.returncode == 0
    for name in SUBCOMMANDS:
        line = next(l for l in out.stdout.splitlines() if l.strip().startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 10


def test_version() -> None:
    import gvfx

    out = run("--version")
    assert out.stdout.strip() == f"gvfx {gvfx.__version__}"


def test_render_help_has_an_example() -> None:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["render"]
    assert "gvfx render shot010.yaml --frames" in sub.format_help()


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    out = run("probe", str(tmp_path / "nothing.####.exr"))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gvfx: error:") and "nothing.####.exr" in lines[0]


def test_bad_job_names_the_field(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("plate: {path: p.####.exr}\nelements:\n  - {name: a, effect: fire, size_m: -2}\n")
    out = run("render", str(job))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "elements[a].size_m" in out.stderr and "job.yaml" in out.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    out = run("--debug", "render", str(tmp_path / "missing.yaml"))
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_effects_lists_parameters(capsys: pytest.CaptureFixture) -> None:
    assert main(["effects"]) == 0
    text = capsys.readouterr().out
    for effect in ["fire", "smoke", "explosion", "sparks", "debris", "dust", "rain", "snow", "insert"]:
        assert f"sim/{effect}:" in text
    assert "default" in text
