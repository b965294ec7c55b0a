"""Finding gvfx from Nuke's Python: the stdlib client (``gvfx.client``) and the worker executable.

Nuke's Python cannot import gvfx's engines (numpy, torch, OpenImageIO built for another Python), and it
does not need to: the adapter talks to ``gvfx worker`` through ``gvfx.client``, which is standard
library only. It is found, in order:

1. already importable (gvfx installed into a Python Nuke can see);
2. ``$GVFX_HOME``: a folder holding the ``gvfx`` package (a source checkout, or a site-packages);
3. the checkout this plug-in lives in (``hosts/nuke/../..``).

Only that folder is put on ``sys.path`` and only ``gvfx`` (a 4-line ``__init__``), ``gvfx.client`` and
``gvfx.ui`` are imported from it. The worker runs as ``$GVFX_EXECUTABLE`` (the ``gvfx`` command of the
gvfx virtualenv, or an argv separated by spaces) or ``gvfx`` on ``PATH``.
"""

from __future__ import annotations

import importlib
import os
import shlex
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

FIX = ("gvfx was not found. Install it (pip install gvfx) into a Python Nuke can see, or set GVFX_HOME to the "
       "folder holding the gvfx package (e.g. the gvfx checkout) and GVFX_EXECUTABLE to the `gvfx` command of "
       "its virtualenv; `gvfx doctor` checks the installation.")


def gvfx_home_candidates() -> list[Path]:
    out = []
    if os.environ.get("GVFX_HOME"):
        out.append(Path(os.environ["GVFX_HOME"]).expanduser())
    out.append(REPO_ROOT)
    return out


def import_gvfx(module: str = "gvfx.client"):
    """Import a stdlib-only gvfx module (``gvfx.client``, ``gvfx.ui.model``), adding GVFX_HOME to the
    path when needed; ImportError with the fix when gvfx cannot be found."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if not _gvfx_missing(exc):
            raise  # gvfx is there but needs something else (e.g. a Qt binding): say that, not "not found"
    for home in gvfx_home_candidates():
        if (home / "gvfx" / "client.py").is_file():
            if str(home) not in sys.path:
                sys.path.append(str(home))
            sys.modules.pop("gvfx", None)
            try:
                return importlib.import_module(module)
            except ImportError as exc:
                if not _gvfx_missing(exc):
                    raise
                continue
    raise ImportError(FIX)


def _gvfx_missing(exc: ImportError) -> bool:
    """True when the import failed because gvfx itself (not one of its dependencies) is missing."""
    name = getattr(exc, "name", None) or ""
    return type(exc) in (ImportError, ModuleNotFoundError) and (name == "gvfx" or name.startswith("gvfx."))


def worker_argv() -> list[str]:
    """The argv that starts ``gvfx worker``."""
    exe = os.environ.get("GVFX_EXECUTABLE", "").strip()
    if not exe:
        return ["gvfx", "worker"]
    argv = [exe] if os.path.exists(exe) else shlex.split(exe)
    return argv if argv[-1] == "worker" else [*argv, "worker"]


def gvfx_argv() -> list[str]:
    """The argv of the ``gvfx`` command (for ``gvfx match`` / ``gvfx farm``)."""
    argv = worker_argv()
    return argv[:-1]


#: variables of Nuke's embedded Python that would break the Python of gvfx's virtualenv (as gvfx.client)
HOST_PYTHON_VARS = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE")


def gvfx_env() -> dict[str, str]:
    """The environment for a ``gvfx`` subprocess: Nuke's, without its Python's variables."""
    return {k: v for k, v in os.environ.items() if k not in HOST_PYTHON_VARS}
