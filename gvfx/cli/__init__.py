"""The ``gvfx`` command line. Library errors become one clear line and a non-zero exit code;
``--debug`` shows the traceback. Heavy modules are imported inside each command.

One module per command group, each with its ``cmd_*`` functions and the ``add_*`` that declares their
arguments: ``plate`` (probe, analyze, match), ``jobs`` (render, farm), ``shots`` (shots, layout),
``install`` (doctor, engines, models, effects), ``apps`` (demo, worker, studio); ``common`` holds what
they share. The entry point is ``gvfx.cli:main`` (and ``python -m gvfx``)."""

from __future__ import annotations

import argparse
import logging
import sys

import gvfx
from gvfx.cli import apps, install, jobs, plate, shots
from gvfx.errors import GvfxError

__all__ = ["main", "build_parser", "EXIT_ERROR"]

EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvfx", description="Generative visual effects matched to live-action plates.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"gvfx {gvfx.__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    p.add_argument("-v", "--verbose", action="store_true", help="informational logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    apps.add_demo(sub)
    plate.add_analyze(sub)
    jobs.add_render(sub)
    shots.add_shots(sub)
    shots.add_layout(sub)
    jobs.add_farm(sub)
    plate.add_match(sub)
    plate.add_probe(sub)
    install.add_doctor(sub)
    install.add_engines(sub)
    install.add_models(sub)
    install.add_effects(sub)
    apps.add_worker(sub)
    apps.add_studio(sub)
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
