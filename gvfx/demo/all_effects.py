"""`gvfx demo --all-effects`: every sim effect rendered alone on the demo plate with the job defaults.

One plate (``OUT/plate``) is shared; each effect gets its own job (``OUT/effects/EFFECT/job.yaml``, no
``match:`` overrides, so the match stage's defaults decide), its render beside it, and a contact sheet
``OUT/effects/EFFECT.png`` (plate / matched element / plate x shadows / holdouts / comp) for a person
to judge. The look tests (``tests/looks``) render the same jobs at a tiny size and measure them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gvfx.render import RenderResult, StageProgress, render_job

log = logging.getLogger(__name__)

__all__ = ["EFFECTS", "effect_element", "effect_job_dict", "render_effect", "run_all_effects", "AllEffectsSummary"]

#: the sim effects, in the order `gvfx effects` lists them by kind (volumes, particles, weather, insert)
EFFECTS: tuple[str, ...] = ("fire", "smoke", "explosion", "sparks", "debris", "dust", "rain", "snow", "insert")


def effect_element(effect: str, scene, first_frame: int, reference: str) -> dict:
    """The job element of one effect, placed where it reads on the demo plate, everything else default."""
    r4 = lambda v: [round(float(x), 4) for x in v]  # noqa: E731
    cx, top_y, cz = scene.table_top_center
    table_left = r4((cx - 0.25, top_y, cz - 0.05))
    where: dict[str, tuple[list[float], float]] = {
        "fire": (table_left, 0.55),
        "smoke": (table_left, 0.8),
        "explosion": (r4(scene.floor_point), 1.2),
        "sparks": (r4(scene.table_edge_point), 1.0),
        "debris": (r4((cx + 0.1, top_y, cz)), 0.8),
        "dust": (r4(scene.floor_point), 1.0),
        "rain": (r4((cx, 0.0, cz + 0.5)), 1.0),
        "snow": (r4((cx, 0.0, cz + 0.5)), 1.0),
        "insert": (r4((cx + 0.05, top_y, cz + 0.1)), 0.22),
    }
    if effect not in where:
        from gvfx.errors import InputError

        raise InputError(f"--all-effects: no demo placement for effect {effect!r}", hint=f"one of {', '.join(EFFECTS)}")
    point, size = where[effect]
    el = {"name": effect, "effect": effect, "placement": {"point": point}, "size_m": size, "seed": 5,
          "start_frame": first_frame}
    if effect == "insert":
        el["reference"] = reference
    return el


def effect_job_dict(effect: str, scene, plate_pattern: str, camera_file: str, frames: list[int],
                    reference: str) -> dict:
    """A job with one effect and no ``match:`` section (paths relative to the job file)."""
    return {"version": 1, "name": f"demo-{effect}",
            "plate": {"path": plate_pattern, "frames": f"{frames[0]}-{frames[-1]}", "colorspace": "ACEScg"},
            "depth": {"layer": "Z", "convention": "z"}, "camera": {"file": camera_file}, "output": ".", "fps": 24,
            "elements": [effect_element(effect, scene, frames[0], reference)]}


def render_effect(effect: str, out: Path, scene, plate_pattern: Path, camera_file: Path, frames: list[int],
                  progress: StageProgress | None = None, match: dict | None = None) -> RenderResult:
    """Write ``out/effects/EFFECT/job.yaml`` for one effect and render it; ``match``: the element's
    ``match:`` overrides (none by default: the defaults are what is being looked at)."""
    import os

    from gvfx.demo.run import reference_image
    from gvfx.job import load_job

    d = Path(out) / "effects" / effect
    d.mkdir(parents=True, exist_ok=True)
    job = effect_job_dict(effect, scene, os.path.relpath(plate_pattern, d), os.path.relpath(camera_file, d),
                          frames, str(reference_image()))
    if match:
        job["elements"][0]["match"] = dict(match)
    job_file = d / "job.yaml"
    job_file.write_text(f"# gvfx demo --all-effects: {effect} with the job defaults\n" + yaml.safe_dump(job, sort_keys=False))
    return render_job(load_job(job_file), progress=progress)


@dataclass
class AllEffectsSummary:
    out: Path
    sheets: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"gvfx demo --all-effects -> {self.out / 'effects'}"]
        lines += [f"  {e:<10} {p}   ({self.seconds[e]:.1f} s)" for e, p in self.sheets.items()]
        return "\n".join(lines)


def run_all_effects(out: Path, *, frames: int = 12, width: int = 960, height: int = 540,
                    effects: tuple[str, ...] = EFFECTS, progress: StageProgress | None = None) -> AllEffectsSummary:
    """Build the demo plate once, render every effect alone with defaults, write a contact sheet each."""
    from gvfx.camera_io import write_usd_camera
    from gvfx.demo.run import FIRST_FRAME, write_previews
    from gvfx.demo.scene import write_demo_plate
    from gvfx.errors import InputError

    if frames < 2:
        raise InputError(f"--frames {frames}: the demo needs at least 2 frames")
    unknown = [e for e in effects if e not in EFFECTS]
    if unknown:
        raise InputError(f"--all-effects: unknown effect {unknown[0]!r}", hint=f"one of {', '.join(EFFECTS)}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    prog = progress or (lambda stage, done, total: None)
    frame_list = list(range(FIRST_FRAME, FIRST_FRAME + frames))
    pattern, track, scene = write_demo_plate(out / "plate", width, height, frame_list,
                                             progress=lambda d, t, m="": prog("plate", d, t))
    camera_file = out / "plate" / "camera.usda"
    write_usd_camera(camera_file, track, fps=24.0)
    summary = AllEffectsSummary(out)
    for effect in effects:
        t0 = time.perf_counter()
        result = render_effect(effect, out, scene, Path(pattern), camera_file, frame_list, progress=prog)
        sheet, _ = write_previews(out / "effects" / effect, result, frame_list, sheet_path=out / "effects" / f"{effect}.png",
                                  gif=False)
        summary.sheets[effect] = sheet
        summary.seconds[effect] = time.perf_counter() - t0
        log.info("all effects: %s in %.1f s -> %s", effect, summary.seconds[effect], sheet)
    return summary
