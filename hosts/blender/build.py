"""Build the gvfx Blender extension zip.

    python hosts/blender/build.py -o dist/

writes ``dist/gvfx-blender-VERSION.zip``: the files of ``hosts/blender/gvfx_blender`` at the zip's
root (a Blender extension: ``blender_manifest.toml`` at the top), with ``gvfx/client.py`` vendored as
``vendor/gvfx_client.py``. Install it with Edit > Preferences > Get Extensions > Install from Disk
(or ``bpy.ops.extensions.package_install_files``); it becomes Blender's ``extensions/user_default/gvfx``.
``--legacy`` also writes ``gvfx-blender-VERSION-legacy.zip`` (the same files in a ``gvfx/`` folder) for
``Preferences > Add-ons > Install`` on Blender before 4.2.

``--repo DIR`` makes DIR a self-hosted extensions repository (docs/blender.md): the zip plus the
``index.json`` Blender reads (``blender_ext.py server-generate``'s format, schema v1). With
``--blender-ext PATH`` (Blender's own ``bl_pkg/cli/blender_ext.py``) Blender's tool validates the zip and
writes the index; without it build.py writes the same index itself (standard library only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tomllib
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


#: manifest keys Blender's ``server-generate`` copies into a repository index entry
INDEX_KEYS = ("schema_version", "id", "name", "tagline", "version", "type", "maintainer", "license",
              "blender_version_min", "blender_version_max", "website", "permissions", "platforms", "tags")


def index_entry(zip_path: Path) -> dict:
    """The ``index.json`` entry of one extension zip: its manifest's listed keys plus archive url/size/hash."""
    with zipfile.ZipFile(zip_path) as zf:
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode("utf-8"))
    entry = {k: manifest[k] for k in INDEX_KEYS if k in manifest}
    data = zip_path.read_bytes()
    entry.update(archive_url=f"./{zip_path.name}", archive_size=len(data),
                 archive_hash="sha256:" + hashlib.sha256(data).hexdigest())
    return entry


def write_repo(repo: Path, zips: list[Path], blender_ext: Path | None = None) -> Path:
    """Make ``repo`` a self-hosted extensions repository holding ``zips``; return its ``index.json``."""
    repo.mkdir(parents=True, exist_ok=True)
    placed = []
    for z in zips:
        dest = repo / z.name
        if z.resolve() != dest.resolve():
            dest.write_bytes(z.read_bytes())
        placed.append(dest)
    index = repo / "index.json"
    if blender_ext is not None:
        for z in placed:
            run = subprocess.run([sys.executable, str(blender_ext), "validate", str(z)], capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"build.py: Blender's validator refuses {z.name}: {run.stdout.strip() or run.stderr.strip()}")
        run = subprocess.run([sys.executable, str(blender_ext), "server-generate", "--repo-dir", str(repo)],
                             capture_output=True, text=True)
        if run.returncode != 0 or not index.is_file():
            raise SystemExit(f"build.py: server-generate failed: {run.stdout.strip() or run.stderr.strip()}")
        return index
    body = {"version": "v1", "blocklist": [], "data": [index_entry(z) for z in placed]}
    index.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="dist", help="output folder (default: dist)")
    ap.add_argument("--legacy", action="store_true", help="also write the pre-4.2 add-on zip")
    ap.add_argument("--repo", type=Path, help="also make this folder a self-hosted extensions repository")
    ap.add_argument("--blender-ext", type=Path, help="Blender's bl_pkg/cli/blender_ext.py: validate the zip and "
                                                    "write the repository index with Blender's own tool")
    args = ap.parse_args(argv)
    if args.blender_ext is not None and not args.blender_ext.is_file():
        raise SystemExit(f"build.py: --blender-ext {args.blender_ext} not found")
    made = build(Path(args.out), legacy=args.legacy)
    for p in made:
        print(p)
    if args.repo is not None:
        print(write_repo(args.repo, made[:1], args.blender_ext))
    return 0


if __name__ == "__main__":
    sys.exit(main())
