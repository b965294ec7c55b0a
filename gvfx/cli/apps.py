"""Commands that run a program of their own: ``gvfx demo``, the host ``gvfx worker``, the ``gvfx studio``
panel."""

from __future__ import annotations

import argparse
from pathlib import Path

from gvfx.cli.common import _progress
from gvfx.errors import GvfxError


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


def add_demo(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx demo`` command."""
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


def add_worker(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx worker`` command."""
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


def add_studio(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx studio`` command."""
    s = sub.add_parser("studio", help="the gvfx panel in a window: job queue, versions, A/B viewer",
                       description="Open the gvfx panel (the one Nuke docks) standalone: a job queue with "
                                   "progress and cancel, the versions of a shot's elements from its OTIO "
                                   "timeline, and a viewer with A/B wipe, channels, exposure and playback. "
                                   "docs/studio.md has the details.")
    s.add_argument("shot_root", nargs="?", help="a shot output folder (or .otio file) to open")
    s.set_defaults(func=cmd_studio)
