"""Commands that run a job file: ``gvfx render`` (here or on an executor) and ``gvfx farm``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gvfx.cli.common import _parse_frames, _print_estimates, _progress
from gvfx.errors import GvfxError

log = logging.getLogger("gvfx")


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


def add_render(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx render`` command."""
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


def add_farm(sub: argparse._SubParsersAction) -> None:
    """The ``gvfx farm`` command."""
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
