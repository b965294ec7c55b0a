"""Make ``gvfx/demo/data/reference.png``: a striped beach ball with a clean alpha, drawn procedurally.

The demo's "insert" uses it as its reference image. Six gores of different colours around a tilted
axis, a white cap on one pole only and a dark spot on one gore make its rotation readable when it rolls.
Run ``python -m gvfx.demo.make_reference`` to rewrite the file; the output is deterministic.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

REFERENCE_PATH = Path(__file__).parent / "data" / "reference.png"

#: sRGB colours of the six gores, in order around the ball's axis
_GORES = np.array([[0.86, 0.13, 0.12], [0.98, 0.80, 0.10], [0.12, 0.36, 0.82],
                   [0.95, 0.95, 0.93], [0.13, 0.62, 0.28], [0.97, 0.50, 0.09]], dtype=np.float64)


def _rotation(tilt_deg: float, spin_deg: float) -> np.ndarray:
    """Ball-to-view rotation: spin about the ball axis, then tilt the axis towards the viewer and left."""
    s, t = np.radians(spin_deg), np.radians(tilt_deg)
    spin = np.array([[np.cos(s), 0, np.sin(s)], [0, 1, 0], [-np.sin(s), 0, np.cos(s)]])
    tilt_x = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    roll = np.radians(-20.0)
    tilt_z = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    return tilt_z @ tilt_x @ spin


def make_reference(size_px: int = 256, supersample: int = 4) -> np.ndarray:
    """(size, size, 4) uint8 straight-alpha sRGB RGBA of the beach ball (supersampled edges)."""
    n = size_px * supersample
    margin = 0.04
    c = (np.arange(n) + 0.5) / n * 2 - 1
    x, y = np.meshgrid(c, -c)
    x, y = x / (1 - margin), y / (1 - margin)
    r2 = x * x + y * y
    inside = r2 < 1.0
    zv = np.sqrt(np.clip(1 - r2, 0, None))
    normal_view = np.stack([x, y, zv], axis=-1)
    local = normal_view @ _rotation(28.0, 20.0)  # view -> ball (rows times R == R^T applied)
    lon = np.arctan2(local[..., 2], local[..., 0])
    gore = np.floor((lon + np.pi) / (2 * np.pi) * 6).astype(int) % 6
    albedo = _GORES[gore]
    cap = local[..., 1] > 0.9  # one white pole cap only: asymmetric
    albedo[cap] = (0.97, 0.97, 0.95)
    spot_lon = -np.pi + 4.5 * np.pi / 3  # the middle of the green gore
    spot_dir = np.array([np.cos(spot_lon), -0.3, np.sin(spot_lon)])
    spot_dir /= np.linalg.norm(spot_dir)
    albedo[(local @ spot_dir) > 0.97] = (0.08, 0.08, 0.1)  # a dark spot on the green gore
    light = np.array([-0.45, 0.6, 0.66])
    light /= np.linalg.norm(light)
    ndl = np.clip(normal_view @ light, 0, None)
    half = light + np.array([0, 0, 1.0])
    half /= np.linalg.norm(half)
    spec = np.clip(normal_view @ half, 0, None) ** 60
    lin = albedo ** 2.2 * (0.18 + 0.85 * ndl)[..., None] + 0.6 * spec[..., None]
    srgb = np.clip(lin, 0, 1) ** (1 / 2.2)
    alpha = inside.astype(np.float64)
    premult = np.concatenate([srgb * alpha[..., None], alpha[..., None]], axis=-1)
    small = premult.reshape(size_px, supersample, size_px, supersample, 4).mean(axis=(1, 3))
    a = small[..., 3:4]
    rgb = np.where(a > 0, small[..., :3] / np.maximum(a, 1e-8), 0.0)
    out = np.concatenate([rgb, a], axis=-1)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_reference(path: Path = REFERENCE_PATH, size_px: int = 256) -> Path:
    """Write the reference PNG (optimised, well under 100 KB)."""
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_reference(size_px)).save(path, format="PNG", optimize=True)
    log.info("wrote %s", path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REFERENCE_PATH)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    print(write_reference(args.out, args.size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
