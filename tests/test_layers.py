"""gvfx's layers, checked from the code's own imports: a module may import parts below it, never beside
or above it (docs/architecture.md draws the picture). The layer map is here, in one place, so the check
runs on a fresh clone; ``../shared/tools/layers_check.py`` applies the same rule. Also here: no module past
``MAX_LINES`` (one idea per module, split by idea past it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: module prefix -> part (the longest matching prefix wins; anything else in gvfx is core)
PARTS = {
    "gvfx.cli": "face", "gvfx.__main__": "face", "gvfx.doctor": "face", "gvfx.demo": "demo", "gvfx.ui": "ui",
    "gvfx.job": "jobs", "gvfx.render": "jobs", "gvfx.executors": "jobs", "gvfx.farm": "jobs", "gvfx.shots": "jobs",
    "gvfx.plate": "jobs", "gvfx.layout": "jobs", "gvfx.worker": "worker", "gvfx.worker_views": "worker",
    "gvfx.client": "client", "gvfx.analyze": "analyze", "gvfx.engines": "engines", "gvfx.match": "match",
    "gvfx.timeline": "tracking", "gvfx.versions": "tracking", "gvfx.lock": "tracking",
}
#: part -> parts it must never import
NEVER = {
    "core": {"engines", "analyze", "jobs", "face", "demo", "worker", "tracking", "match", "ui"},
    "engines": {"face", "jobs", "match", "analyze", "demo", "worker", "tracking", "ui"},
    "match": {"engines", "jobs", "face", "demo", "worker", "ui"},
    "analyze": {"engines", "jobs", "face", "match", "demo", "worker", "ui"},
    "tracking": {"jobs", "engines", "face", "demo", "worker", "ui", "match"},
    "client": {"core", "engines", "jobs", "match", "analyze", "tracking", "face", "worker", "demo", "ui"},
    "ui": {"engines", "jobs", "match", "analyze", "face", "worker", "demo"},
}
#: the core modules, so a new module has to be placed in the map deliberately
CORE = {"gvfx", "gvfx.camera", "gvfx.camera_io", "gvfx.color", "gvfx.comp", "gvfx.config", "gvfx.depth", "gvfx.depth_ground",
        "gvfx.element", "gvfx.errors", "gvfx.exr", "gvfx.exr.channels", "gvfx.exr.reader", "gvfx.exr.writer",
        "gvfx.exr_info", "gvfx.exr_sequence", "gvfx.limits", "gvfx.names", "gvfx.params",
        "gvfx.preview", "gvfx.probe", "gvfx.sequence", "gvfx.surface"}

#: a module holds one idea and stays under this many lines (docs/architecture.md); past it, split it by idea
MAX_LINES = 500
#: gvfx files allowed past MAX_LINES, each with the reason it cannot be split (keep this empty if you can)
LONG_FILES: dict[str, str] = {}


def part(mod: str) -> str:
    for k in sorted(PARTS, key=len, reverse=True):
        if mod == k or mod.startswith(k + "."):
            return PARTS[k]
    return "core" if mod == "gvfx" or mod.startswith("gvfx.") else "other"


def _imported(node: ast.AST, mod: str, is_init: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = mod.split(".")
            base = base[: len(base) - node.level + (1 if is_init else 0)]
            node_mod = ".".join(base + ([node.module] if node.module else []))
        else:
            node_mod = node.module or ""
        if node_mod == "gvfx":  # `from gvfx import color` imports the module gvfx.color
            return [f"gvfx.{a.name}" for a in node.names]
        return [node_mod]
    return []


def crossings(root: Path) -> list[str]:
    """Every import under ``root/gvfx`` that crosses a layer line, as ``file:line (part) imports mod (part)``."""
    bad = []
    for f in sorted((root / "gvfx").rglob("*.py")):
        rel = f.relative_to(root)
        mod = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        me = part(mod)
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            for name in _imported(node, mod, f.name == "__init__.py"):
                them = part(name)
                if name.startswith("gvfx") and them in NEVER.get(me, ()):
                    bad.append(f"{rel}:{node.lineno} ({me}) imports {name} ({them})")
    return bad


def test_no_import_crosses_a_layer_line() -> None:
    bad = crossings(ROOT)
    assert not bad, "imports that cross a layer line (move shared code down, see docs/architecture.md):\n" + \
        "\n".join(bad)


def test_every_core_module_is_placed_on_purpose() -> None:
    mods = {".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for f in (ROOT / "gvfx").rglob("*.py")}
    core = {m for m in mods if part(m) == "core"}
    assert core <= CORE, f"new core module(s) {sorted(core - CORE)}: add them to CORE or to PARTS in this file"


def test_the_package_face_imports_nothing_by_name() -> None:
    """``gvfx/__init__.py`` re-exports by string (PEP 562), so ``import gvfx`` pulls no layer in."""
    tree = ast.parse((ROOT / "gvfx" / "__init__.py").read_text())
    names = [n for node in ast.walk(tree) for n in _imported(node, "gvfx", True)]
    assert [n for n in names if n.startswith("gvfx")] == []


@pytest.mark.parametrize("source, expected", [
    ("from gvfx.job import Job\n", ["gvfx/match/x.py:1 (match) imports gvfx.job (jobs)"]),
    ("from gvfx import render\n", ["gvfx/match/x.py:1 (match) imports gvfx.render (jobs)"]),
    ("from ..engines import base\n", ["gvfx/match/x.py:1 (match) imports gvfx.engines (engines)"]),
    ("def f():\n    import gvfx.worker\n", ["gvfx/match/x.py:2 (match) imports gvfx.worker (worker)"]),
    ("from gvfx.camera import Camera\nfrom gvfx.match import lens\n", []),
])
def test_the_check_sees_every_import_form(tmp_path: Path, source: str, expected: list[str]) -> None:
    pkg = tmp_path / "gvfx" / "match"
    pkg.mkdir(parents=True)
    (tmp_path / "gvfx" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "x.py").write_text(source)
    assert crossings(tmp_path) == expected


def long_files(root: Path, limit: int = MAX_LINES) -> list[str]:
    """Every ``root/gvfx/**/*.py`` longer than ``limit`` lines, as ``path: N lines``."""
    out = []
    for f in sorted((root / "gvfx").rglob("*.py")):
        n = len(f.read_text(encoding="utf-8").splitlines())
        if n > limit:
            out.append(f"{f.relative_to(root).as_posix()}: {n} lines")
    return out


def test_no_module_grows_past_the_line_limit() -> None:
    too_long = [line for line in long_files(ROOT) if line.split(":")[0] not in LONG_FILES]
    assert not too_long, (f"files over {MAX_LINES} lines: split them by idea (docs/architecture.md), or add them "
                          "to LONG_FILES in this file with the reason they cannot be split:\n" + "\n".join(too_long))


def test_the_long_file_allow_list_is_small_and_current() -> None:
    assert len(LONG_FILES) <= 3, "LONG_FILES is an exception list, not a second limit"
    long_now = {line.split(":")[0] for line in long_files(ROOT)}
    for path, reason in LONG_FILES.items():
        assert reason.strip(), f"{path}: give the reason it cannot be split"
        assert path in long_now, f"{path} is no longer over {MAX_LINES} lines (or gone): remove it from LONG_FILES"


def test_the_line_limit_sees_a_long_file(tmp_path: Path) -> None:
    pkg = tmp_path / "gvfx" / "match"
    pkg.mkdir(parents=True)
    (tmp_path / "gvfx" / "__init__.py").write_text("")
    (pkg / "short.py").write_text("x = 1\n" * MAX_LINES)
    (pkg / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert long_files(tmp_path) == [f"gvfx/match/long.py: {MAX_LINES + 1} lines"]
