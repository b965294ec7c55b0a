"""The ``gvfx`` command line. Library errors become one clear line and a non-zero exit code;
``--debug`` shows the traceback. Heavy modules are imported inside each command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import gvfx
from gvfx.errors import GvfxError

log = logging.getLogger("gvfx")

EXIT_ERROR = 2

RENDER_EPILOG = """example:
  gvfx render shot010.yaml                      render every element of the job, a new version each
  gvfx render shot010.yaml --frames 1030-1040   a chunk: same pixels as those frames of a full render
  gvfx render shot010.yaml --resume             continue the latest version with the same spec hash

job file (YAML or JSON; docs/jobs.md has the full format):
  plate: {path: plates/shot010.####.exr, frames: 1001-1048}
  depth: {layer: Z, convention: z}
  camera: {file: shot010_cam.usda}
  output: out/
  elements:
    - {name: fire1, effect: fire, placement: {screen: [960, 700], frame: 1001}, size_m: 0.6, seed: 7}
"""


@contextmanager
def _progress(enabled: bool = True) -> Iterator:
    """A rich progress display; yields ``update(stage, done, total)``."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def cmd_probe(args: argparse.Namespace) -> int:
    from gvfx.probe import format_probe, probe

    info = probe(args.path, stats=args.stats, view=args.view)
    print(json.dumps(info, indent=2, default=str) if args.json else format_probe(info))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from gvfx.doctor import exit_code, format_checks, run_doctor

    checks = run_doctor(output_root=Path(args.output_root), models_dir=Path(args.models) if args.models else None)
    print(format_checks(checks))
    return exit_code(checks)


def cmd_engines(args: argparse.Namespace) -> int:
    from gvfx.engines import engine_names, get_engine

    for name in engine_names():
        try:
            eng = get_engine(name)
            print(f"{name:10s} effects: {', '.join(sorted(eng.effects()))}")
        except GvfxError as exc:
            print(f"{name:10s} FAILED TO LOAD: {exc}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """gvfx models list | verify [NAME] | import PATH --as NAME (gvfx.engines.diffusion.store)."""
    from gvfx.engines.diffusion import store

    root = args.models
    if args.models_command == "import":
        st = store.import_stack(args.path, args.name, root, link=args.link, allow_pickle=args.allow_pickle)
        print(f"imported {args.path} as {st.name} -> {st.folder}" + ("" if st.ok else f" ({'; '.join(st.problems)})"))
        return 0 if st.ok else 1
    if args.models_command == "verify":
        names = [args.name] if args.name else [s.name for s in store.list_stacks(root) if s.folder.is_dir()]
        bad = 0
        for name in names:
            st = store.verify(name, root, allow_pickle=args.allow_pickle)
            bad += not st.ok
            print(f"{'ok  ' if st.ok else 'FAIL'} {st.name:18s} {st.folder}")
            for problem in st.problems:
                print(f"     - {problem}")
        if not names:
            print(f"no stack installed in {store.models_root(root)}")
        return 1 if bad else 0
    from gvfx.engines.diffusion.memory import describe
    from gvfx.engines.diffusion.runtime import default_dtype, free_gib
    from gvfx.engines.diffusion.stacks import load_manifest

    free = args.free_gb
    dtype = args.dtype
    if free is None or dtype == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        free = free_gib(device) if free is None else free
        dtype = (default_dtype(device) if device != "cpu" else "bf16") if dtype == "auto" else dtype
    print(f"model store: {store.models_root(root)}")
    for st in store.list_stacks(root):
        flag = f"  NON-COMMERCIAL: {', '.join(st.non_commercial)}" if st.non_commercial else ""
        state = "installed" if st.installed else ("incomplete" if st.folder.is_dir() else "missing")
        print(f"{st.name:18s} {st.kind:5s} {st.family:11s} {state:10s}{flag}")
        print(f"{'':18s} licences: {st.licenses}")
        for line in describe(load_manifest(st.name), st.folder, free, dtype):
            print(f"{'':18s} {line}")
    return 0


def cmd_effects(args: argparse.Namespace) -> int:
    from gvfx.engines import engine_names, get_engine

    for name in ([args.engine] if args.engine else engine_names()):
        eng = get_engine(name)
        for eff_name, info in sorted(eng.effects().items()):
            print(f"{name}/{eff_name}: {info.help}")
            for p in info.params:
                rng = ""
                if p.min is not None or p.max is not None:
                    rng = f" [{'' if p.min is None else p.min}..{'' if p.max is None else p.max}]"
                if p.choices:
                    rng = f" {{{', '.join(map(str, p.choices))}}}"
                print(f"    {p.name:18s} {p.type.__name__:6s} default {p.default!r}{rng}  {p.help}")
    return 0


def _parse_frames(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    from gvfx.job import parse_frame_range

    return parse_frame_range(text, "--frames")


def cmd_render(args: argparse.Namespace) -> int:
    from gvfx.job import load_job
    from gvfx.render import render_job

    job = load_job(args.job)
    if args.out:
        from dataclasses import replace
        job = replace(job, output=Path(args.out).resolve())
    with _progress(not args.quiet) as update:
        if args.executor or args.address:
            result = _render_on_executor(job, args, update)
        else:
            result = render_job(job, frames=_parse_frames(args.frames), resume=args.resume, progress=update,
                                sim_only=args.sim_only, wait_lock=args.wait_lock)
    for name, res in result.elements.items():
        print(f"element {name}: {res.pattern}")
        if name in result.estimates:
            _print_estimates(name, result.estimates[name])
    if result.comp:
        print(f"comp: {result.comp.pattern}")
    if result.timeline:
        print(f"timeline: {result.timeline}")
    return 0


def _render_on_executor(job, args: argparse.Namespace, update):
    """``gvfx render --executor``: sim once here, chunks on the executor, finalise here (gvfx.executors)."""
    from gvfx.executors import ExecutorOptions, render_with_executor

    if args.sim_only:
        raise GvfxError("--sim-only and --executor do not go together",
                        hint="--executor runs the sim step itself, then the chunks")
    options = ExecutorOptions(workers=args.workers, address=args.address, max_retries=args.max_retries)
    run = render_with_executor(job, args.executor or "ray", options=options, frames=_parse_frames(args.frames),
                               chunk_size=args.chunk_size, resume=args.resume, progress=update)
    log.info("%s: sim %.1fs, %d chunks %.1fs (%.2f frames/s), finalize %.1fs", run.executor, run.sim_seconds,
             len(run.chunks), run.chunks_seconds, run.frames_per_second, run.finalize_seconds)
    return run.result


def cmd_farm_openjd(args: argparse.Namespace) -> int:
    from gvfx.farm.openjd import write_job_template
    from gvfx.job import load_job

    job = load_job(args.job)
    out = write_job_template(job, args.output, chunk_size=args.chunk_size, frames=_parse_frames(args.frames),
                             gvfx_command=args.gvfx, target_runtime_s=args.target_runtime)
    print(f"job template: {out}")
    print(f"check it:     openjd check {out}")
    print(f"run locally:  openjd run {out} --step Sim && openjd run {out} --step Render "
          f"&& openjd run {out} --step Finalize")
    return 0


def _print_estimates(name: str, est) -> None:
    """The match stage's estimates as a ``match:`` block an artist can paste into a job to override them."""
    d = est.to_dict()
    print(f"match estimates for {name} (sources: {d.pop('sources')}):")
    for key, value in d.items():
        print(f"  {key}: {json.dumps(value)}")


def cmd_match(args: argparse.Namespace) -> int:
    from gvfx.match.sequences import load_settings, match_sequences

    settings = load_settings(args.settings) if args.settings else None
    with _progress(not args.quiet) as update:
        est, written = match_sequences(plate=args.plate, element=args.element, out_dir=Path(args.out),
                                       depth=args.depth, depth_layer=args.depth_layer, camera=args.camera,
                                       settings=settings, progress=update)
    _print_estimates("element", est)
    print(f"wrote {len(written)} files to {args.out} (element.####.exr layers, comp.####.exr)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gvfx.demo.run import run_demo

    from gvfx.limits import MAX_FRAMES

    w, h = _parse_resolution(args.resolution)
    if not 1 <= args.frames <= MAX_FRAMES:
        raise GvfxError(f"--frames {args.frames}: give 1 to {MAX_FRAMES} frames")
    if args.all_effects:
        from gvfx.demo.all_effects import run_all_effects

        with _progress(not args.quiet) as update:
            effects = tuple(e.strip() for e in args.effects.split(",") if e.strip()) if args.effects else None
            fx = run_all_effects(Path(args.out), frames=args.frames, width=w, height=h, progress=update,
                                 **({"effects": effects} if effects else {}))
        print(fx.describe())
        return 0
    with _progress(not args.quiet) as update:
        summary = run_demo(Path(args.out), frames=args.frames, width=w, height=h, progress=update,
                           solve=args.solve, engine=args.engine)
    print(summary.describe())
    return 0


def _parse_scale_points(text: str | None):
    """'u1,v1,u2,v2,DIST,FRAME' -> ScalePoints."""
    if not text:
        return None
    from gvfx.analyze.solve import ScalePoints

    try:
        u1, v1, u2, v2, dist, frame = (x.strip() for x in text.split(","))
        sp = ScalePoints((float(u1), float(v1)), (float(u2), float(v2)), float(dist), int(frame))
        if sp.distance_m <= 0:
            raise ValueError
        return sp
    except ValueError:
        raise GvfxError(f"--scale-points {text!r} is not u1,v1,u2,v2,DIST,FRAME",
                        hint="e.g. --scale-points 410,620,880,640,1.2,1001 (pixels, metres, plate frame)") from None


def cmd_analyze(args: argparse.Namespace) -> int:
    from gvfx.analyze import AnalyzeOptions, analyze

    opts = AnalyzeOptions(focal_mm=args.focal_mm, haperture_mm=args.film_back_mm, matte=args.matte,
                          camera_height_m=args.camera_height, scale_points=_parse_scale_points(args.scale_points),
                          frames=_parse_frames(args.frames), proxy_width=args.proxy_width, depth=args.depth,
                          depth_model=args.depth_model, depth_pass=args.depth_pass)
    with _progress(not args.quiet) as update:
        result = analyze(args.plate, Path(args.out), opts, progress=update)
    print(result.report_txt.read_text(), end="")
    print(f"camera: {result.camera_usd}")
    if result.depth_pattern:
        print(f"depth: {result.depth_pattern}")
    return 0


def cmd_shots(args: argparse.Namespace) -> int:
    from gvfx.shots import job_yaml, read_edit, shots_from_timeline, write_jobs

    tl = read_edit(args.edit, rate=args.rate)
    shots = shots_from_timeline(tl, handles=args.handles, plate_template=args.plate_template,
                                start_frame=args.start_frame, base_dir=Path(args.edit).resolve().parent)
    if not shots:
        raise GvfxError("the edit has no clips on its video tracks", path=args.edit)
    if args.out:
        for path in write_jobs(shots, args.out, effect=args.effect, edit=args.edit):
            print(f"job: {path}")
    else:
        print("\n---\n".join(job_yaml(s, effect=args.effect, edit=args.edit) for s in shots), end="")
    return 0


def cmd_layout(args: argparse.Namespace) -> int:
    from gvfx.layout import layout_shot, validate_layout

    path = layout_shot(args.shot_root, job_path=args.job, out=args.out)
    problems = validate_layout(path)
    for line in problems:
        log.warning("USD validation: %s", line)
    print(f"layout: {path}" + (f" ({len(problems)} USD validation errors)" if problems else ""))
    return 0


def cmd_studio(args: argparse.Namespace) -> int:
    from gvfx.ui.studio import run

    return run(args.shot_root)


def cmd_worker(args: argparse.Namespace) -> int:
    from gvfx.worker import run_worker

    return run_worker(preview_dir=Path(args.preview_dir) if args.preview_dir else None,
                      shutdown_timeout=args.shutdown_timeout)


def _parse_resolution(text: str) -> tuple[int, int]:
    from gvfx.limits import MAX_SIDE_PX

    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise GvfxError(f"--resolution {text!r} is not WIDTHxHEIGHT", hint="e.g. --resolution 960x540") from None
    if min(w, h) < 16 or max(w, h) > MAX_SIDE_PX:
        raise GvfxError(f"--resolution {w}x{h}: each side must be 16 to {MAX_SIDE_PX} pixels",
                        hint="e.g. --resolution 960x540")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvfx", description="Generative visual effects matched to live-action plates.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"gvfx {gvfx.__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    p.add_argument("-v", "--verbose", action="store_true", help="informational logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("demo", help="build a demo plate and generate fire, sparks and an insert into it",
                       description="Render a procedural plate with depth, generate fire on the table, sparks "
                                   "falling off it and a ball rolling off the edge, comp them, and write EXRs, a "
                                   "contact sheet, a GIF and an OTIO timeline.")
    s.add_argument("--out", default="gvfx-demo", help="output folder (default: ./gvfx-demo)")
    s.add_argument("--frames", type=int, default=24, help="number of frames (default 24)")
    s.add_argument("--resolution", default="960x540", help="WIDTHxHEIGHT (default 960x540)")
    s.add_argument("--engine", default="sim", choices=("sim", "diffusion"),
                   help="diffusion: model-made elements (a tiny random model, i.e. noise, when none is installed)")
    s.add_argument("--solve", action="store_true",
                   help="forget the plate's camera and depth: solve them with `gvfx analyze` and place by screen")
    s.add_argument("--all-effects", action="store_true",
                   help="render every sim effect alone with the job defaults; a contact sheet each in OUT/effects/")
    s.add_argument("--effects", default=None, help="with --all-effects: only these, comma-separated (e.g. fire,rain)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("analyze", help="solve the camera (and depth) of a plate from its pixels",
                       description="Track the plate with COLMAP (on proxies), orient it Y-up on the ground, "
                                   "scale it, and write camera.usda, camera.chan, depth/depth.####.exr, points.ply "
                                   "and report.json/.txt into OUT. docs/analyze.md has the details.")
    s.add_argument("plate", help="plate frame pattern (EXR, scene-linear)")
    s.add_argument("-o", "--out", required=True, help="output folder")
    s.add_argument("--focal-mm", type=float, help="known focal length in mm (default: estimated)")
    s.add_argument("--film-back-mm", type=float, default=36.0, help="horizontal film back in mm (default 36)")
    s.add_argument("--matte", help="frame pattern of a matte, white on moving things to ignore")
    s.add_argument("--camera-height", type=float, help="camera height above the ground on the first frame, metres")
    s.add_argument("--scale-points", help="u1,v1,u2,v2,DIST,FRAME: two pixels DIST metres apart on FRAME")
    s.add_argument("--frames", help="FIRST-LAST (default: every frame)")
    s.add_argument("--proxy-width", type=int, default=960, help="solve on proxies this wide (default 960)")
    s.add_argument("--depth", choices=["sfm", "estimator", "user"], default="sfm", help="depth source (default sfm)")
    s.add_argument("--depth-model", help="estimator: model folder")
    s.add_argument("--depth-pass", help="user: depth pass frame pattern")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_analyze)

    s = sub.add_parser("render", help="render the elements of a job file (YAML/JSON)", epilog=RENDER_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Simulate each element once into a sim cache, then render frames as a new "
                                   "version of EXR sequences (rgba, Z, holdout) with a comp and an OTIO timeline.")
    s.add_argument("job", help="job file (.yaml, .yml or .json)")
    s.add_argument("--frames", help="render only FIRST-LAST (a farm chunk)")
    s.add_argument("--resume", action="store_true",
                   help="continue the latest version with the same spec hash, skipping frames already written")
    s.add_argument("--out", help="override the job's output root")
    s.add_argument("--sim-only", action="store_true",
                   help="only simulate into the caches and open the new versions (a farm's first step); "
                        "render chunks afterwards with --frames A-B --resume")
    ex = s.add_argument_group("scale-out (docs/farm.md)")
    ex.add_argument("--executor", metavar="NAME",
                    help="local or ray: sim once here, then render frame chunks on N local processes or on Ray")
    ex.add_argument("--workers", type=int, help="worker processes / Ray CPUs (default: every core)")
    ex.add_argument("--chunk-size", type=int, default=8, help="frames per chunk (default 8)")
    ex.add_argument("--address", help="Ray cluster to join (e.g. auto, ray://head:10001); implies --executor ray")
    ex.add_argument("--max-retries", type=int, default=2,
                    help="ray: re-runs of a chunk whose worker died or raised (default 2)")
    s.add_argument("--wait-lock", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to SECONDS for another render of the same shot to finish (default: refuse at "
                        "once); --resume renders (farm chunks) share the shot lock and never wait for each other")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("shots", help="editorial in: job files for the clips of an edit (OTIO, EDL...)",
                       description="Read an edit with OpenTimelineIO (.otio, or .edl with otio-cmx3600-adapter) "
                                   "and print, or write into OUT/NAME/NAME.yaml, a job file per clip: name, frames "
                                   "with handles, plate path from its media reference. docs/shot_layout.md.")
    s.add_argument("edit", help="an .otio file, an EDL, or any format an installed OTIO adapter reads")
    s.add_argument("-o", "--out", help="write one shot folder per clip here (default: print the jobs)")
    s.add_argument("--handles", type=int, default=0, help="frames added before and after each cut (default 0)")
    s.add_argument("--plate-template", help="plate path for clips without media (EDLs), relative to the shot "
                                            "folder; {name} is the shot name, e.g. 'plates/{name}/{name}.####.exr'")
    s.add_argument("--start-frame", type=int, default=1001,
                   help="first frame (with handles) of shots whose media has no frame numbers (default 1001)")
    s.add_argument("--rate", type=float, default=24.0, help="frame rate of an EDL (default 24)")
    s.add_argument("--effect", default="smoke", help="the placeholder element's effect (default smoke)")
    s.set_defaults(func=cmd_shots)

    s = sub.add_parser("layout", help="write the shot's layout.usda: camera, plate card, element cards",
                       description="Rebuild SHOT_ROOT/layout.usda from the shot's timeline (active versions) and "
                                   "its job file, and check it with USD's validators. Every render writes it too.")
    s.add_argument("shot_root", help="the shot folder (the job's output root)")
    s.add_argument("--job", help="the job file (default: the one the timeline names)")
    s.add_argument("-o", "--out", help="layout file (default: SHOT_ROOT/layout.usda)")
    s.set_defaults(func=cmd_layout)

    s = sub.add_parser("farm", help="describe a job for a render farm (Open Job Description)",
                       description="Write a job for a render farm's scheduler. docs/farm.md has the details.")
    farm = s.add_subparsers(dest="farm_command", metavar="FORMAT", required=True)
    f = farm.add_parser("openjd", help="an Open Job Description job template: Sim, Render in chunks, Finalize",
                        description="Write an Open Job Description template (jobtemplate-2023-09, TASK_CHUNKING) "
                                    "that any OpenJD runner (AWS Deadline Cloud, `openjd run`) executes: a Sim "
                                    "step, a Render step whose tasks are frame chunks, and a Finalize step.")
    f.add_argument("job", help="job file (.yaml, .yml or .json)")
    f.add_argument("-o", "--output", default="job-template.yaml",
                   help="template file, .yaml or .json (default job-template.yaml); put it next to the job file so "
                        "the JobFile/OutputDir defaults can be relative")
    f.add_argument("--chunk-size", type=int, default=8, help="frames per Render task (default 8)")
    f.add_argument("--frames", help="FIRST-LAST (default: the plate's frames)")
    f.add_argument("--gvfx", default="gvfx", help="the gvfx command on the render nodes (default: gvfx)")
    f.add_argument("--target-runtime", type=int, help="seconds per chunk a scheduler may resize chunks toward")
    f.set_defaults(func=cmd_farm_openjd)

    s = sub.add_parser("match", help="match an element EXR sequence to a plate: holdout, shadow, grain, colour, "
                                     "defocus, light wrap; writes the layers and a comp",
                       description="Integrate a user-brought element (premultiplied ACEScg EXRs, optional Z, "
                                   "holdout and motion layers) into a plate without an engine. Prints the "
                                   "estimates; override any of them with --settings (docs/match.md).")
    s.add_argument("--plate", required=True, help="plate frame pattern (name.####.exr)")
    dg = s.add_mutually_exclusive_group()
    dg.add_argument("--depth", help="depth sequence pattern (metric Z)")
    dg.add_argument("--depth-layer", help="depth layer/channel of the plate (default: its Z if any)")
    s.add_argument("--element", required=True, help="element frame pattern")
    s.add_argument("--camera", help="camera file (.usd/.usda/.chan); default: a 35 mm lens, locked off")
    s.add_argument("-o", "--out", required=True, help="output folder")
    s.add_argument("--settings", help="JSON/YAML file with match settings (the keys of a job's match: section)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_match)

    s = sub.add_parser("probe", help="describe an EXR file or sequence: frames, windows, layers, views, colour",
                       description="Resolve a frame pattern (name.####.exr, %%04d, @@@@, $F4) or a file and print "
                                   "what is in it. --json prints the fields documented in docs/probe.md.")
    s.add_argument("path", help="a file or a frame pattern")
    s.add_argument("--json", action="store_true", help="one JSON object (docs/probe.md)")
    s.add_argument("--stats", action="store_true", help="read every frame: NaN/Inf counts, min/max/mean")
    s.add_argument("--view", help="view of a stereo file (default: the hero view)")
    s.set_defaults(func=cmd_probe)

    s = sub.add_parser("doctor", help="check the installation: versions, OCIO, torch devices, disk, hosts",
                       description="Check everything gvfx needs; each line is ok, warn or FAIL with the fix. "
                                   "Exits non-zero when something required is broken.")
    s.add_argument("--output-root", default=".", help="where renders go (free disk is checked there)")
    s.add_argument("--models", help="model store folder (default: $GVFX_MODELS or ~/.cache/gvfx/models)")
    s.set_defaults(func=cmd_doctor)

    s = sub.add_parser("engines", help="list the generation engines and their effects")
    s.set_defaults(func=cmd_engines)

    s = sub.add_parser("models", help="the local model store: list, verify, import diffusion stacks",
                       description="gvfx never downloads weights: fetch them yourself, then import/verify here.")
    s.add_argument("--models", help="model store folder (default: $GVFX_MODELS or ~/.cache/gvfx/models)")
    s.add_argument("--allow-pickle", action="store_true", help="accept pickled .bin/.ckpt weights (trusted files only)")
    models = s.add_subparsers(dest="models_command", metavar="ACTION")
    m = models.add_parser("list", help="every stack manifest, installed or not: licences, size on disk, computed "
                                       "VRAM per memory plan and the plan a free-memory figure gets")
    m.add_argument("--free-gb", type=float, default=None,
                   help="free GPU memory to plan for, GiB (default: this machine's, or the CPU)")
    m.add_argument("--dtype", default="auto", choices=("auto", "fp16", "bf16", "fp32"),
                   help="precision to plan for (default: this machine's; bf16 without a GPU)")
    m = models.add_parser("verify", help="files present, safetensors readable, hashes, matching base model")
    m.add_argument("name", nargs="?", help="stack name (default: every installed stack)")
    m = models.add_parser("import", help="copy (or --link) a diffusers-format folder into the store")
    m.add_argument("path", help="the folder, laid out as the manifest says")
    m.add_argument("--as", dest="name", required=True, help="stack (manifest) name")
    m.add_argument("--link", action="store_true", help="symlink instead of copying")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("effects", help="list every effect with its parameters and defaults")
    s.add_argument("--engine", help="only this engine")
    s.set_defaults(func=cmd_effects)

    s = sub.add_parser("worker", help="serve host applications (Blender, Nuke, Qt): JSON lines on stdin/stdout",
                       description="A long-lived process that renders jobs one at a time for a host application, "
                                   "keeping loaded engines and models between jobs. Requests are JSON lines on "
                                   "stdin, events JSON lines on stdout, logs go to stderr; "
                                   "docs/worker_protocol.md has the protocol. Hosts start it through "
                                   "gvfx/client.py (standard library only).")
    s.add_argument("--preview-dir", help="folder for preview PNGs (default: $GVFX_PREVIEW_DIR or a temp folder)")
    s.add_argument("--shutdown-timeout", type=float, default=30.0,
                   help="seconds to wait for a running job to stop at shutdown (default 30)")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("studio", help="the gvfx panel in a window: job queue, versions, A/B viewer",
                       description="Open the gvfx panel (the one Nuke docks) standalone: a job queue with "
                                   "progress and cancel, the versions of a shot's elements from its OTIO "
                                   "timeline, and a viewer with A/B wipe, channels, exposure and playback. "
                                   "docs/studio.md has the details.")
    s.add_argument("shot_root", nargs="?", help="a shot output folder (or .otio file) to open")
    s.set_defaults(func=cmd_studio)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else (logging.INFO if args.verbose else logging.WARNING)
    logging.basicConfig(level=level, format="gvfx: %(levelname)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except GvfxError as exc:
        if args.debug:
            raise
        print(f"gvfx: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a disk error no module turned into a GvfxError: still one line
        if args.debug:
            raise
        from gvfx.errors import output_error

        print(f"gvfx: error: {output_error(exc, 'a file', exc.filename)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("gvfx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
