"""Commands on shots: editorial in (``gvfx shots``) and the USD layout (``gvfx layout``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gvfx.errors import GvfxError

log = logging.getLogger("gvfx")


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


def add_shots(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx shots`` command."""
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


def add_layout(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx layout`` command."""
    s = sub.add_parser("layout", help="write the shot's layout.usda: camera, plate card, element cards",
                       description="Rebuild SHOT_ROOT/layout.usda from the shot's timeline (active versions) and "
                                   "its job file, and check it with USD's validators. Every render writes it too.")
    s.add_argument("shot_root", help="the shot folder (the job's output root)")
    s.add_argument("--job", help="the job file (default: the one the timeline names)")
    s.add_argument("-o", "--out", help="layout file (default: SHOT_ROOT/layout.usda)")
    s.set_defaults(func=cmd_layout)
