"""Sparse point clouds as PLY files (binary little-endian, float32 xyz, uint8 rgb), written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gvfx.errors import InputError

__all__ = ["write_ply", "read_ply"]


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """Write (N, 3) world points (metres) with optional (N, 3) colours (0..1 floats or uint8) as PLY."""
    p = Path(path)
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    n = len(pts)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    header = ["ply", "format binary_little_endian 1.0", "comment gvfx analyze sparse points (metres, Y up)",
              f"element vertex {n}", "property float x", "property float y", "property float z"]
    if colors is not None:
        c = np.asarray(colors).reshape(-1, 3)
        if len(c) != n:
            raise InputError(f"{len(c)} colours for {n} points", path=p)
        if c.dtype != np.uint8:
            c = (np.clip(c.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header.append("end_header")
    rec = np.empty(n, dtype=fields)
    rec["x"], rec["y"], rec["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    if colors is not None:
        rec["red"], rec["green"], rec["blue"] = c[:, 0], c[:, 1], c[:, 2]
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(rec.tobytes())
    os.replace(tmp, p)
    return p


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a PLY written by :func:`write_ply`: ((N, 3) float32 points, (N, 3) uint8 colours or None)."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    n = int(next(h.split()[2] for h in header if h.startswith("element vertex")))
    has_rgb = any(h.endswith(" red") for h in header)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + ([("r", "u1"), ("g", "u1"), ("b", "u1")] if has_rgb else [])
    rec = np.frombuffer(data[end:], dtype=fields, count=n)
    pts = np.stack([rec["x"], rec["y"], rec["z"]], axis=1)
    return pts, (np.stack([rec["r"], rec["g"], rec["b"]], axis=1) if has_rgb else None)
