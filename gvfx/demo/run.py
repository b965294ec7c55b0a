"""`gvfx demo`: a whole shot on a fresh machine, no inputs, no weights.

It renders a procedural plate with depth (ACEScg EXRs with Z), writes its camera as USD and a job file
beside it, then renders that job like any other — fire on the table, sparks falling off it, a ball
from a bundled reference image rolling off the edge — and writes the comp, a contact sheet, a GIF and
an OTIO timeline. ``gvfx render OUT/demo_job.yaml`` re-renders it as a new version.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from gvfx.render import RenderResult, StageProgress, render_job

log = logging.getLogger(__name__)

FIRST_FRAME = 1001


@dataclass
class DemoSummary:
    out: Path
    plate_pattern: str
    job_file: Path
    camera_file: Path
    result: RenderResult
    contact_sheet: Path
    gif: Path
    seconds: float
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        r = self.result
        lines = [f"gvfx demo finished in {self.seconds:.1f} s -> {self.out}",
                 f"  plate      {self.plate_pattern}",
                 f"  camera     {self.camera_file}",
                 f"  job        {self.job_file}   (re-render: gvfx render {self.job_file})"]
        for name, res in r.elements.items():
            lines.append(f"  element    {res.pattern}")
        if r.comp:
            lines.append(f"  comp       {r.comp.pattern}")
        lines += [f"  contact    {self.contact_sheet}", f"  preview    {self.gif}",
                  f"  timeline   {r.timeline}"]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def reference_image() -> Path:
    """The bundled reference image of the demo's insert (a striped ball)."""
    return Path(str(resources.files("gvfx.demo") / "data" / "reference.png"))


def demo_job_dict(scene, plate_pattern: str, camera_file: str, frames: list[int], reference: str) -> dict:
    """The demo's job, as a user would write it (paths relative to the job file)."""
    r4 = lambda v: [round(float(x), 4) for x in v]  # noqa: E731
    cx, top_y, cz = scene.table_top_center
    fire_at = r4((cx - 0.25, top_y, cz - 0.05))  # left half of the table top
    edge = r4(scene.table_edge_point)  # right edge: sparks spill off it
    ball_at = r4((cx + 0.05, top_y, cz + 0.1))  # rolls right, off the edge, lands behind the near box
    roll = [1.6, 0.0, 0.15]
    first = frames[0]
    return {
        "version": 1,
        "name": "demo",
        "plate": {"path": plate_pattern, "frames": f"{frames[0]}-{frames[-1]}", "colorspace": "ACEScg"},
        "depth": {"layer": "Z", "convention": "z"},
        "camera": {"file": camera_file},
        "output": ".",
        "fps": 24,
        "elements": [
            {"name": "fire", "effect": "fire", "placement": {"point": fire_at}, "size_m": 0.55, "seed": 7,
             "start_frame": first, "shutter": 0.5, "motion_samples": 2},
            {"name": "sparks", "effect": "sparks", "placement": {"point": edge}, "size_m": 0.3, "seed": 11,
             "start_frame": first, "shutter": 0.5, "motion_samples": 3},
            {"name": "ball", "effect": "insert", "reference": reference,
             "placement": {"point": ball_at}, "size_m": 0.22, "seed": 3,
             "start_frame": first, "shutter": 0.5, "motion_samples": 5,
             "params": {"velocity_mps": roll}},
        ],
    }


def run_demo(out: Path, *, frames: int = 24, width: int = 960, height: int = 540,
             progress: StageProgress | None = None) -> DemoSummary:
    """Build the demo plate, render the demo job, and write the previews; see the module doc."""
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.scene import write_demo_plate
    from gvfx.errors import InputError
    from gvfx.job import load_job

    if frames < 2:
        raise InputError(f"--frames {frames}: the demo needs at least 2 frames")
    t0 = time.perf_counter()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    prog = progress or (lambda stage, done, total: None)
    frame_list = list(range(FIRST_FRAME, FIRST_FRAME + frames))

    plate_dir = out / "plate"
    pattern, track, scene = write_demo_plate(plate_dir, width, height, frame_list,
                                             progress=lambda d, t, m="": prog("plate", d, t))
    camera_file = out / "plate" / "camera.usda"
    write_usd_camera(camera_file, track, fps=24.0)

    job_file = out / "demo_job.yaml"
    job_dict = demo_job_dict(scene, str(Path(pattern).relative_to(out)), str(camera_file.relative_to(out)),
                             frame_list, str(reference_image()))
    job_file.write_text("# gvfx demo job: re-render with `gvfx render demo_job.yaml`\n"
                        + yaml.safe_dump(job_dict, sort_keys=False))
    job = load_job(job_file)
    result = render_job(job, progress=prog)

    sheet, gif = write_previews(out, result, frame_list)
    return DemoSummary(out, pattern, job_file, camera_file, result, sheet, gif, time.perf_counter() - t0)


def write_previews(out: Path, result: RenderResult, frames: list[int]) -> tuple[Path, Path]:
    """Contact sheet (plate / each element / comp across sampled frames) and a GIF of the comp."""
    from gvfx.exr import read_exr
    from gvfx.preview import contact_sheet, element_preview, to_preview, write_gif
    from gvfx.sequence import frame_path

    n_cols = min(6, len(frames))
    picks = [frames[int(round(i))] for i in np.linspace(0, len(frames) - 1, n_cols)]
    rows, labels = [], []
    rows.append([to_preview(result.plate.rgba(f)) for f in picks])
    labels.append("plate")
    for name, res in result.elements.items():
        rows.append([element_preview(read_exr(frame_path(res.pattern, f)).rgba()) for f in picks])
        labels.append(name)
    if result.comp:
        rows.append([to_preview(read_exr(frame_path(result.comp.pattern, f)).rgba()) for f in picks])
        labels.append("comp")
    sheet = contact_sheet(rows, labels, [str(f) for f in picks], out / "contact_sheet.png")
    gif_frames = [to_preview(read_exr(frame_path(result.comp.pattern, f)).rgba()) for f in frames] if result.comp else rows[0]
    gif = write_gif(gif_frames, out / "comp_preview.gif", fps=24)
    return sheet, gif
