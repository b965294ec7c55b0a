"""A small shot folder for the pipeline tests: demo plate under plates/, USD camera, a confined job
(output root = the shot root), two elements (smoke is a volume, sparks a card)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from gvfx.camera_io import write_usd_camera
from gvfx.demo.scene import write_demo_plate

GVFX = [sys.executable, "-m", "gvfx"]


def make_shot(root: Path, frames: list[int], *, size: tuple[int, int] = (64, 36), name: str = "sh010") -> Path:
    """Write the shot and return its job file (``root/job.yaml``)."""
    root.mkdir(parents=True, exist_ok=True)
    _, track, scene = write_demo_plate(root / "plates" / "plate", size[0], size[1], frames)
    write_usd_camera(root / "cam.usda", track, fps=24.0)
    cx, top, cz = scene.table_top_center
    job = {
        "name": name, "confine": True, "plate": {"path": "plates/plate/plate.####.exr"}, "depth": {"layer": "Z"},
        "camera": {"file": "cam.usda"}, "output": ".",
        "elements": [
            {"name": "smoke", "effect": "smoke", "placement": {"point": [cx - 0.2, top, cz]}, "size_m": 0.5,
             "seed": 1, "motion_samples": 1, "params": {"resolution": 12, "preroll_frames": 0}},
            {"name": "sparks", "effect": "sparks", "placement": {"point": list(scene.table_edge_point)},
             "size_m": 0.3, "seed": 2, "motion_samples": 2},
        ],
    }
    (root / "job.yaml").write_text(yaml.safe_dump(job))
    return root / "job.yaml"


def set_job(job_file: Path, **changes) -> None:
    """Change top-level keys of a job file (e.g. a new seed means a new spec hash, a new version)."""
    data = yaml.safe_load(job_file.read_text())
    data.update(changes)
    job_file.write_text(yaml.safe_dump(data))
