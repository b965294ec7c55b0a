"""Build the gvfx Blender extension zip.

    python hosts/blender/build.py -o dist/

writes ``dist/gvfx-blender-VERSION.zip``: the files of ``hosts/blender/gvfx_blender`` at the zip's
root (a Blender extension: ``blender_manifest.toml`` at the top), with ``gvfx/client.py`` vendored as
``vendor/gvfx_client.py``. Install it with Edit > Preferences > Get Extensions > Install from Disk
(or ``bpy.ops.extensions.package_install_files``); it becomes Blender's ``extensions/user_default/gvfx``.
``--legacy`` also writes ``gvfx-blender-VERSION-legacy.zip`` (the same files in a ``gvfx/`` folder) for
``Preferences > Add-ons > Install`` on Blender before 4.2.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "gvfx_blender"
CLIENT = HERE.parents[1] / "gvfx" / "client.py"


def _version() -> str:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (SRC / "blender_manifest.toml").read_text(), re.M)
    if not m:
        raise SystemExit("build.py: no version in blender_manifest.toml")
    return m.group(1)


def _files() -> list[tuple[Path, str]]:
    out = []
    for p in sorted(SRC.rglob("*")):
        rel = p.relative_to(SRC).as_posix()
        if p.is_dir() or "__pycache__" in rel or p.suffix == ".pyc" or rel.startswith("vendor/"):
            continue
        out.append((p, rel))
    return out


def build(out_dir: Path, *, legacy: bool = False, client: Path = CLIENT) -> list[Path]:
    if not client.is_file():
        raise SystemExit(f"build.py: {client} not found (the worker client to vendor)")
    out_dir.mkdir(parents=True, exist_ok=True)
    version = _version()
    vendor = [("vendor/__init__.py", '"""Vendored copies; do not edit (hosts/blender/build.py writes them)."""\n'),
              ("vendor/gvfx_client.py", client.read_text(encoding="utf-8"))]
    made = []
    layouts = [("", out_dir / f"gvfx-blender-{version}.zip")]
    if legacy:
        layouts.append(("gvfx/", out_dir / f"gvfx-blender-{version}-legacy.zip"))
    for prefix, path in layouts:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for p, rel in _files():
                zf.write(p, prefix + rel)
            for rel, text in vendor:
                zf.writestr(prefix + rel, text)
        made.append(path)
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="dist", help="output folder (default: dist)")
    ap.add_argument("--legacy", action="store_true", help="also write the pre-4.2 add-on zip")
    args = ap.parse_args(argv)
    for p in build(Path(args.out), legacy=args.legacy):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
