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

from gvfx.engines.sim.common import DEFAULT_LIGHT_DIR
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
        # the match stage: the demo plate's sun is the sim's default key light; light sources (fire,
        # sparks) are not colour-graded towards their surroundings
        "match": {"light_dir": [round(float(x), 4) for x in DEFAULT_LIGHT_DIR], "shutter_frames": 0.5},
        "elements": [
            {"name": "fire", "effect": "fire", "placement": {"point": fire_at}, "size_m": 0.55, "seed": 7,
             "start_frame": first, "shutter": 0.5, "motion_samples": 2,
             "match": {"colour_strength": 0.0, "shadow_strength": 0.3}},
            {"name": "sparks", "effect": "sparks", "placement": {"point": edge}, "size_m": 1.0, "seed": 11,
             "start_frame": first, "shutter": 0.5, "motion_samples": 3,
             # a grinder-like fountain thrown up and out over the edge, falling to the floor
             "params": {"speed_mps": 2.6, "direction": [1.0, 1.1, 0.35], "spread_deg": 30, "lifetime_s": 1.0,
                        "temperature_K": 3600, "count": 2500, "emit_frames": 20,
                        "restitution": 0.45},
             "match": {"colour_strength": 0.0, "shadow_strength": 0.0, "contact_strength": 0.0}},
            {"name": "ball", "effect": "insert", "reference": reference,
             "placement": {"point": ball_at}, "size_m": 0.22, "seed": 3,
             "start_frame": first, "shutter": 0.5, "motion_samples": 5,
             # a 3D proxy (auto: a lathe, the ball's matte is symmetric) rolled by a sphere collider
             "params": {"velocity_mps": roll, "proxy": "auto", "collider": "sphere"},
             # an insert keeps its identity: levels and white balance towards the plate, not all the way
             "match": {"colour_strength": 0.35}},
        ],
    }


def solve_job_dict(job: dict, track, frames: list[int], camera_height_m: float) -> dict:
    """The demo job in ``--solve`` mode: the camera and depth come from ``gvfx analyze``.

    The solved world differs from the scene's by a similarity, so world-point placements become screen
    positions on the first frame (the true points projected by the true camera), which hold for any
    camera. The camera height (a tape measure on set) gives the solve its metric scale.
    """
    import copy

    j = copy.deepcopy(job)
    j["camera"] = {"solve": True, "height_m": float(camera_height_m)}
    j["depth"] = {"source": "sfm"}
    for el in j["elements"]:
        point = el.get("placement", {}).get("point")
        if point is not None:
            uv, _ = track.project_world(np.asarray([point], dtype=np.float64), frames[0])
            el["placement"] = {"screen": [round(float(uv[0, 0]), 2), round(float(uv[0, 1]), 2)], "frame": frames[0]}
    return j


def _snap_to_depth(job: dict, z: np.ndarray, max_px: int = 40) -> None:
    """Move each screen placement to the nearest pixel with solved depth (sparse depth has holes)."""
    ok = np.isfinite(z) & (z > 0)
    if not ok.any():
        return
    vv, uu = np.nonzero(ok)
    for el in job["elements"]:
        pl = el.get("placement", {})
        if "screen" not in pl:
            continue
        u, v = pl["screen"]
        if ok[min(int(v), z.shape[0] - 1), min(int(u), z.shape[1] - 1)]:
            continue
        d = (uu + 0.5 - u) ** 2 + (vv + 0.5 - v) ** 2
        k = int(np.argmin(d))
        if d[k] <= max_px ** 2:
            pl["screen"] = [float(uu[k]) + 0.5, float(vv[k]) + 0.5]
            log.info("%s: moved to the nearest solved depth (%.0f px)", el["name"], np.sqrt(d[k]))


def write_depth_sheet(out: Path, true_pattern: str, solved_pattern: str | None, frames: list[int]) -> Path:
    """A contact sheet of the plate's true depth above the solved depth (inverse depth, shared scale)."""
    from gvfx.exr import read_exr
    from gvfx.preview import contact_sheet
    from gvfx.sequence import frame_path

    n_cols = min(6, len(frames))
    picks = [frames[int(round(i))] for i in np.linspace(0, len(frames) - 1, n_cols)]

    def grey(z: np.ndarray | None, zmin: float) -> np.ndarray | None:
        if z is None:
            return None
        inv = np.where(np.isfinite(z) & (z > 0), zmin / np.maximum(z, 1e-6), 0.0)
        g = (np.clip(inv, 0, 1) * 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)

    true_z = [read_exr(frame_path(true_pattern, f)).depth() for f in picks]
    zmin = float(min(np.nanmin(np.where(np.isfinite(z), z, np.nan)) for z in true_z))
    solved = []
    for f in picks:
        p = frame_path(solved_pattern, f) if solved_pattern else None
        solved.append(grey(read_exr(p).depth(), zmin) if p is not None and p.exists() else None)
    return contact_sheet([[grey(z, zmin) for z in true_z], solved], ["true depth", "solved depth"],
                         [str(f) for f in picks], out / "depth_sheet.png")


def run_demo(out: Path, *, frames: int = 24, width: int = 960, height: int = 540,
             progress: StageProgress | None = None, solve: bool = False, engine: str = "sim") -> DemoSummary:
    """Build the demo plate, render the demo job, and write the previews; see the module doc.

    ``solve``: forget the plate's camera and depth, solve them with ``gvfx analyze`` (the job says
    ``camera: {solve: true}``, ``depth: {source: sfm}``) and place the elements by screen position; a
    second sheet, ``depth_sheet.png``, shows the true depth above the solved one.
    """
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
    if solve:
        job_dict = solve_job_dict(job_dict, track, frame_list, scene.camera_height_m)
    notes: list[str] = []
    if engine == "diffusion":
        notes.append(diffusion_elements(job_dict, out))
    job_file.write_text("# gvfx demo job: re-render with `gvfx render demo_job.yaml`\n"
                        + yaml.safe_dump(job_dict, sort_keys=False))
    job = load_job(job_file)
    if solve:  # analyze now (cached for the render) and keep screen placements on solved depth
        from gvfx.plate import open_plate

        z0 = open_plate(job, progress=prog).depth(frame_list[0])
        _snap_to_depth(job_dict, z0)
        job_file.write_text("# gvfx demo job (--solve): re-render with `gvfx render demo_job.yaml`\n"
                            + yaml.safe_dump(job_dict, sort_keys=False))
        job = load_job(job_file)
    result = render_job(job, progress=prog)

    sheet, gif = write_previews(out, result, frame_list)
    summary = DemoSummary(out, pattern, job_file, camera_file, result, sheet, gif, time.perf_counter() - t0,
                          notes=notes)
    if solve:
        from gvfx.plate import analysis_dir

        adir = analysis_dir(job, frame_list)
        solved_depth = adir / "depth" / "depth.####.exr"
        depth_sheet = write_depth_sheet(out, pattern, str(solved_depth), frame_list)
        summary.camera_file = adir / "camera.usda"
        summary.notes.append(f"camera and depth solved from the plate: {adir / 'report.txt'}")
        summary.notes.append(f"true vs solved depth: {depth_sheet}")
        summary.seconds = time.perf_counter() - t0
    return summary


def diffusion_elements(job_dict: dict, out: Path) -> str:
    """Replace the demo's elements with diffusion ones (an ``element`` where the fire was, an ``insert``
    where the ball starts) on the installed ``sd15_depth_ip`` stack, or — when none is installed — on the
    tiny random one built into ``OUT/tiny_models`` (its pictures are noise: it proves the path, not the
    look). Returns the note the summary prints."""
    from gvfx.engines.diffusion.store import models_root, verify

    real = verify("sd15_depth_ip").ok
    if real:
        store, params, note = models_root(), {"steps": 25, "model_resolution": 512}, \
            f"diffusion elements made with the installed sd15_depth_ip stack in {models_root()}"
    else:
        import importlib.util

        store = out / "tiny_models"
        if not verify("sd15_depth_ip", store).ok:
            spec = importlib.util.spec_from_file_location(
                "gvfx_model_tiny", Path(__file__).resolve().parents[2] / "model" / "tiny.py")
            if spec is None or not Path(spec.origin).is_file():
                from gvfx.errors import InputError

                raise InputError("no sd15_depth_ip stack is installed and model/tiny.py (the gvfx source tree) is "
                                 "not here to build a tiny one", hint="`gvfx models list` shows what to install")
            tiny = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(tiny)
            tiny.build_tiny("sd15_depth_ip", store / "sd15_depth_ip")
        params = {"steps": 4, "model_resolution": 128}
        note = ("NO REAL MODEL INSTALLED: the diffusion elements come from a TINY RANDOM model "
                f"({store / 'sd15_depth_ip'}), so their pictures are NOISE. They prove the whole path "
                "(load, generate, matte, place, EXR metadata); install sd15_depth_ip (`gvfx models list`) for real ones.")
    by_name = {e["name"]: e for e in job_dict["elements"]}
    first = next(iter(by_name.values()))
    fire = by_name.get("fire", first)["placement"]
    ball = by_name.get("ball", first)["placement"]
    common = {"stack": "sd15_depth_ip", "models": str(store), **params}
    job_dict["elements"] = [
        {"name": "lantern", "engine": "diffusion", "effect": "element", "placement": fire, "size_m": 0.35, "seed": 1,
         "params": {**common, "prompt": "a glowing paper lantern"}},
        {"name": "vase", "engine": "diffusion", "effect": "insert", "placement": ball, "size_m": 0.3, "seed": 2,
         "params": {**common, "prompt": "a blue ceramic vase on the table"}},
    ]
    return note


def _close_ups(imgs: list) -> list | None:
    """Enlarged crops around a 3D insert's pixels (its frames' union box), or None for other elements."""
    from gvfx.preview import element_preview

    if not imgs or imgs[0].metadata.get("gvfx:insert:proxy") in (None, "card"):
        return None
    alphas = [im.channels["A"] for im in imgs]
    seen = np.logical_or.reduce([a > 0.01 for a in alphas])
    if not seen.any():
        return None
    h, w = seen.shape
    ys, xs = np.nonzero(seen)
    side = int(max(np.ptp(ys), np.ptp(xs)) * 0.35 + 8)
    out = []
    for im, a in zip(imgs, alphas):
        if not (a > 0.01).any():
            out.append(None)
            continue
        yy, xx = np.nonzero(a > 0.01)
        cy, cx = int(yy.mean()), int(xx.mean())
        y0, x0 = max(cy - side, 0), max(cx - int(side * w / h), 0)
        crop = im.rgba()[y0:y0 + 2 * side, x0:x0 + int(2 * side * w / h)]
        ry = np.linspace(0, crop.shape[0] - 1, h).astype(int)
        rx = np.linspace(0, crop.shape[1] - 1, w).astype(int)
        out.append(element_preview(crop[ry][:, rx]))
    return out


def write_previews(out: Path, result: RenderResult, frames: list[int], *, sheet_path: Path | None = None,
                   gif: bool = True) -> tuple[Path, Path | None]:
    """Contact sheet (plate / each matched element / the shadow and holdout layers / comp across sampled
    frames; ``out/contact_sheet.png`` unless ``sheet_path``) and, with ``gif``, a GIF of the comp."""
    from gvfx.exr import read_exr
    from gvfx.preview import contact_sheet, element_preview, to_preview, write_gif
    from gvfx.sequence import frame_path

    n_cols = min(6, len(frames))
    picks = [frames[int(round(i))] for i in np.linspace(0, len(frames) - 1, n_cols)]
    rows, labels = [], []
    rows.append([to_preview(result.plate.rgba(f)) for f in picks])
    labels.append("plate")
    shadow_row, holdout_row = [], []
    for f in picks:
        shadow_keep = holdout_max = None
        for res in result.elements.values():
            img = read_exr(frame_path(res.pattern, f))
            if "shadow.A" in img.channels:
                k = 1.0 - img.channels["shadow.A"]
                shadow_keep = k if shadow_keep is None else shadow_keep * k
            if "holdout.A" in img.channels:
                hm = img.channels["holdout.A"] * (img.channels["A"] > 0)
                holdout_max = hm if holdout_max is None else np.maximum(holdout_max, hm)
        if shadow_keep is not None:  # the plate as the shadows leave it (grey matte over the plate)
            shadow_row.append(to_preview(result.plate.rgba(f) * shadow_keep[..., None]))
        if holdout_max is not None:
            holdout_row.append(to_preview(np.repeat(holdout_max[..., None], 4, axis=-1)))
    for name, res in result.elements.items():
        rows.append([element_preview(read_exr(frame_path(res.pattern, f)).rgba()) for f in picks])
        labels.append(f"{name} (matched)")
        close = _close_ups([read_exr(frame_path(res.pattern, f)) for f in picks])
        if close is not None:  # a 3D insert: the same object seen turning, from every angle it takes
            rows.append(close)
            labels.append(f"{name} close-up (3D proxy)")
    if len(shadow_row) == len(picks):
        rows.append(shadow_row)
        labels.append("plate x shadows")
    if len(holdout_row) == len(picks):
        rows.append(holdout_row)
        labels.append("holdouts")
    if result.comp:
        rows.append([to_preview(read_exr(frame_path(result.comp.pattern, f)).rgba()) for f in picks])
        labels.append("comp")
    sheet = contact_sheet(rows, labels, [str(f) for f in picks], sheet_path or out / "contact_sheet.png")
    if not gif:
        return sheet, None
    gif_frames = [to_preview(read_exr(frame_path(result.comp.pattern, f)).rgba()) for f in frames] if result.comp else rows[0]
    return sheet, write_gif(gif_frames, out / "comp_preview.gif", fps=24)
