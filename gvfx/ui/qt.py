"""The Qt binding of gvfx's widgets: PySide6 (Nuke 16, the gvfx venv), else PySide2 (Nuke 15.x).

Foundry bundles PySide2 (Qt 5.15) with Nuke 15 and PySide6 (Qt 6.5) with Nuke 16; the widgets use the API
both share (scoped enums, ``Signal``). ``GVFX_QT=PySide2`` forces a binding. Neither importable is a
:class:`QtBindingError` saying so (never "gvfx was not found").
"""

from __future__ import annotations

import importlib
import os
from typing import Callable

__all__ = ["BINDINGS", "QtBindingError", "select_binding", "QtCore", "QtGui", "QtWidgets", "BINDING",
           "delete_widget"]

#: in order of preference
BINDINGS = ("PySide6", "PySide2")


class QtBindingError(ImportError):
    """No Qt binding gvfx can use."""


def _importable(name: str) -> bool:
    try:
        importlib.import_module(f"{name}.QtWidgets")
    except ImportError:
        return False
    return True


def select_binding(available: Callable[[str], bool] = _importable, forced: str | None = None) -> str:
    """The binding to use: ``forced`` (or ``$GVFX_QT``) if given, else the first of BINDINGS that imports."""
    forced = forced if forced is not None else os.environ.get("GVFX_QT", "").strip() or None
    if forced is not None:
        if forced not in BINDINGS:
            raise QtBindingError(f"GVFX_QT={forced!r}: use one of {', '.join(BINDINGS)}")
        if not available(forced):
            raise QtBindingError(f"GVFX_QT={forced}, but {forced} cannot be imported (gvfx's panel needs "
                                 "PySide6 or PySide2: unset GVFX_QT to use the one Nuke ships)")
        return forced
    for name in BINDINGS:
        if available(name):
            return name
    raise QtBindingError("gvfx's panel needs PySide6 or PySide2 and neither can be imported "
                         "(Nuke 16 ships PySide6, Nuke 15 PySide2; outside Nuke: pip install PySide6)")


BINDING = select_binding()
QtCore = importlib.import_module(f"{BINDING}.QtCore")
QtGui = importlib.import_module(f"{BINDING}.QtGui")
QtWidgets = importlib.import_module(f"{BINDING}.QtWidgets")


def delete_widget(widget) -> None:
    """Delete the C++ side of ``widget`` now (its ``destroyed`` signal fires), as closing a Nuke panel does."""
    shiboken = importlib.import_module("shiboken6" if BINDING == "PySide6" else "shiboken2")
    shiboken.delete(widget)
