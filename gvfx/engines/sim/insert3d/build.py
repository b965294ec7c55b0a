"""Build (or load) the proxy of a reference once: chosen by kind, cached by the reference's content.

The cache key is the SHA-256 of the reference file's bytes plus the build options, so the same
reference in ten shots is the same object in all ten, whatever its path or modification time. The
cache is in memory (per process) and on disk, ``$GVFX_PROXIES`` (default ``~/.cache/gvfx/proxies``),
one ``<key>.npz`` per proxy: ``gvfx render`` of several job files naming one reference builds it once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gvfx.engines.sim.insert3d.matte import object_matte, reduce_baked_light, symmetry
from gvfx.engines.sim.insert3d.proxy import Proxy

log = logging.getLogger(__name__)

__all__ = ["ProxyOptions", "BuiltProxy", "build_proxy", "proxy_cache_dir", "SYMMETRY_MIN", "BUILD_VERSION"]

SYMMETRY_MIN = 0.9  # ``auto`` picks lathe at or above this left-right symmetry of the matte
BUILD_VERSION = 1  # bump when a builder's output changes: old cache files are then ignored


@dataclass(frozen=True)
class ProxyOptions:
    """What decides a proxy's shape and texture (all of it goes into the cache key)."""

    kind: str = "auto"  # auto | lathe | inflate | mesh
    thickness: float = 0.5
    delight: float = 0.5
    segments: int = 64


@dataclass(frozen=True)
class BuiltProxy:
    """A proxy of height 1 (scale it to ``size_m``), the kind chosen and why."""

    proxy: Proxy
    kind: str
    symmetry: float | None
    key: str
    cached: bool


def proxy_cache_dir() -> Path:
    return Path(os.environ.get("GVFX_PROXIES") or Path.home() / ".cache" / "gvfx" / "proxies")


_MEMORY: dict[str, BuiltProxy] = {}


def _key(path: Path, opts: ProxyOptions) -> str:
    h = hashlib.sha256(path.read_bytes())
    h.update(json.dumps({**asdict(opts), "v": BUILD_VERSION}, sort_keys=True).encode())
    return h.hexdigest()[:24]


def build_proxy(path: str | Path, opts: ProxyOptions, cutout_fn) -> BuiltProxy:
    """The proxy of the reference at ``path`` (``cutout_fn(path)`` gives its (H, W, 4) cut-out; mesh
    files are loaded by :func:`gvfx.engines.sim.insert3d.mesh_io.load_mesh`)."""
    p = Path(path)
    key = _key(p, opts)
    if key in _MEMORY:
        return _MEMORY[key]
    disk = proxy_cache_dir() / f"{key}.npz"
    got = _read(disk, key)
    if got is None:
        got = _build(p, opts, cutout_fn, key)
        _write(disk, got)
    log.info("insert proxy of %s: %s%s (%d triangles)%s", p.name, got.kind,
             "" if got.symmetry is None else f", matte symmetry {got.symmetry:.2f}", len(got.proxy.faces),
             " [cached]" if got.cached else "")
    _MEMORY[key] = got
    return got


def _build(p: Path, opts: ProxyOptions, cutout_fn, key: str) -> BuiltProxy:
    from gvfx.engines.sim.insert3d import mesh_io

    if opts.kind == "mesh" or (opts.kind == "auto" and p.suffix.lower() in mesh_io.MESH_SUFFIXES):
        return BuiltProxy(mesh_io.load_mesh(p).scaled(1.0), "mesh", None, key, False)
    m = object_matte(cutout_fn(p), path=p)
    sym = symmetry(m)
    kind = opts.kind if opts.kind != "auto" else ("lathe" if sym >= SYMMETRY_MIN else "inflate")
    m = reduce_baked_light(m, opts.delight)
    if kind == "lathe":
        from gvfx.engines.sim.insert3d.lathe import build_lathe

        proxy = build_lathe(m, segments=opts.segments)
    else:
        from gvfx.engines.sim.insert3d.inflate import build_inflate

        proxy = build_inflate(m, thickness=opts.thickness)
    return BuiltProxy(proxy, kind, sym, key, False)


def _write(path: Path, b: BuiltProxy) -> None:
    pr = b.proxy
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez_compressed(tmp, kind=pr.kind, verts=pr.verts, faces=pr.faces, face_uv=pr.face_uv,
                            texture=pr.texture, normals=pr.normals, closed=pr.closed, chosen=b.kind,
                            symmetry=np.nan if b.symmetry is None else b.symmetry)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not cache the insert proxy in %s (%s): it will be rebuilt next time", path, exc)


def _read(path: Path, key: str) -> BuiltProxy | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as d:
            pr = Proxy(str(d["kind"]), d["verts"], d["faces"], d["face_uv"], d["texture"], d["normals"],
                       bool(d["closed"]))
            sym = float(d["symmetry"])
            return BuiltProxy(pr, str(d["chosen"]), None if np.isnan(sym) else sym, key, True)
    except (OSError, KeyError, ValueError) as exc:
        log.warning("ignoring an unreadable insert proxy cache file %s (%s)", path, exc)
        return None
