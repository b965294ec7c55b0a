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
        result = render_job(job, frames=_parse_frames(args.frames), resume=args.resume, progress=update,
                            sim_only=args.sim_only)
    for name, res in result.elements.items():
        print(f"element {name}: {res.pattern}")
        if name in result.estimates:
            _print_estimates(name, result.estimates[name])
    if result.comp:
        print(f"comp: {result.comp.pattern}")
    if result.timeline:
        print(f"timeline: {result.timeline}")
    return 0


def _print_estimates(name: str, est) -> None:
    """The match stage's estimates as a ``match:`` block an artist can paste into a job to override them."""
    d = est.to_dict()
    print(f"match estimates for {name} (sources: {d.pop('sources')}):")
    for key, value in d.items():
        print(f"  {key}: {json.dumps(value)}")


def cmd_match(args: argparse.Namespace) -> int:
    from gvfx.match.stage import load_settings, match_sequences

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

    w, h = _parse_resolution(args.resolution)
    with _progress(not args.quiet) as update:
        summary = run_demo(Path(args.out), frames=args.frames, width=w, height=h, progress=update,
                           solve=args.solve)
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


def _parse_resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
        if w < 16 or h < 16:
            raise ValueError
        return w, h
    except ValueError:
        raise GvfxError(f"--resolution {text!r} is not WIDTHxHEIGHT", hint="e.g. --resolution 960x540") from None


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
    s.add_argument("--solve", action="store_true",
                   help="forget the plate's camera and depth: solve them with `gvfx analyze` and place by screen")
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
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_render)

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

    s = sub.add_parser("effects", help="list every effect with its parameters and defaults")
    s.add_argument("--engine", help="only this engine")
    s.set_defaults(func=cmd_effects)
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
    except KeyboardInterrupt:
        print("gvfx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
