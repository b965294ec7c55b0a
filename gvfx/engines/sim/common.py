"""Shared pieces of the sim engine: where an element is anchored, the on-disk sim cache, holdouts."""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


#: Key light direction (world, pointing from the scene towards the light) when the job gives none:
#: high, from camera-left and slightly behind the camera. Effects read ``spec.params["light_dir"]``.
DEFAULT_LIGHT_DIR = (-0.45, 0.8, 0.4)


def light_direction(params: dict) -> np.ndarray:
    """Unit world-space direction towards the key light, from the spec's params or the default."""
    d = np.asarray(params.get("light_dir", DEFAULT_LIGHT_DIR), dtype=np.float64)
    return d / np.linalg.norm(d)


def sim_frames(start_frame: int | None, frames: list[int]) -> list[int]:
    """The frames an element is simulated and rendered on: from its start frame to the plate's end.
    Frames of the plate before the start get an empty element."""
    start = frames[0] if start_frame is None else start_frame
    return [f for f in range(min(start, frames[-1]), frames[-1] + 1)]


@dataclass(frozen=True)
class Anchor:
    """An element's place in the world: a point on (or above) the plate's surface, in metres.

    ``normal`` is the unit surface normal there (world, pointing out of the surface, e.g. up for a
    table top); ``up`` is the world up axis (gravity is ``-up``); ``size_m`` the element's size.
    """

    point: np.ndarray  # (3,) world metres
    normal: np.ndarray  # (3,)
    up: np.ndarray  # (3,)
    size_m: float


class SimCache:
    """A folder of per-frame simulation states (``frame.NNNNNN.npz``) plus a ``meta.json``.

    Written once by ``prepare`` (each file atomically), read by ``render_frame`` for any frame, so a
    farm chunk renders exactly what a full render renders.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _frame_path(self, frame: int) -> Path:
        return self.root / f"frame.{frame:+07d}.npz"

    def has(self, frame: int) -> bool:
        return self._frame_path(frame).exists()

    def write(self, frame: int, **arrays: np.ndarray) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        _atomic_write_bytes(self._frame_path(frame), buf.getvalue())

    def read(self, frame: int) -> dict[str, np.ndarray]:
        with np.load(self._frame_path(frame)) as z:
            return {k: z[k] for k in z.files}

    def write_meta(self, meta: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(self.root / "meta.json", json.dumps(meta, indent=1, sort_keys=True).encode())

    def read_meta(self) -> dict | None:
        p = self.root / "meta.json"
        return json.loads(p.read_text()) if p.exists() else None


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def holdout_from_depth(element_z: np.ndarray, plate_z: np.ndarray, softness_m: float = 0.02) -> np.ndarray:
    """(H, W) holdout matte: 1 where the plate surface is in front of the element, 0 where behind,
    with a linear ramp of ``softness_m`` metres (relative to the element's depth) so depth edges do not
    stair-step. ``inf`` element Z (no element) gives 0."""
    ez = np.asarray(element_z, dtype=np.float32)
    pz = np.asarray(plate_z, dtype=np.float32)
    soft = np.maximum(softness_m * np.where(np.isfinite(ez), ez, 1.0), 1e-6)
    with np.errstate(invalid="ignore"):
        h = np.clip((ez - pz) / soft + 0.5, 0.0, 1.0)
    h[~np.isfinite(ez)] = 0.0
    h[~np.isfinite(pz)] = 0.0
    return h.astype(np.float32)


def resolved_params(info, params: dict) -> dict:
    """An effect's parameter values: each ``Param``'s default, overridden by the spec's ``params``.

    ``info`` is the effect's ``EffectInfo``; validation of names and ranges happens earlier (jobs).
    """
    out = {p.name: p.default for p in info.params}
    out.update({k: v for k, v in params.items() if k in out})
    return out
