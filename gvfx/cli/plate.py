"""Commands on a plate and its files: ``gvfx probe``, ``gvfx analyze``, ``gvfx match``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gvfx.cli.common import _parse_frames, _print_estimates, _progress
from gvfx.errors import GvfxError


def cmd_probe(args: argparse.Namespace) -> int:
    from gvfx.probe import format_probe, probe

    info = probe(args.path, stats=args.stats, view=args.view)
    print(json.dumps(info, indent=2, default=str) if args.json else format_probe(info))
    return 0


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


def add_analyze(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx analyze`` command."""
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


def add_match(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx match`` command."""
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


def add_probe(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx probe`` command."""
    s = sub.add_parser("probe", help="describe an EXR file or sequence: frames, windows, layers, views, colour",
                       description="Resolve a frame pattern (name.####.exr, %%04d, @@@@, $F4) or a file and print "
                                   "what is in it. --json prints the fields documented in docs/probe.md.")
    s.add_argument("path", help="a file or a frame pattern")
    s.add_argument("--json", action="store_true", help="one JSON object (docs/probe.md)")
    s.add_argument("--stats", action="store_true", help="read every frame: NaN/Inf counts, min/max/mean")
    s.add_argument("--view", help="view of a stereo file (default: the hero view)")
    s.set_defaults(func=cmd_probe)
