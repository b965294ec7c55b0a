"""Names that become file or folder names (shots, elements, model stacks): one rule, checked in one place,
so no name given in a job, a worker request or a manifest can ever be a path."""

from __future__ import annotations

import re
from typing import Any

from gvfx.errors import InputError

#: a letter, then letters, digits, ``_`` or ``-``; at most 100 characters
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")

__all__ = ["NAME_RE", "check_name", "is_name"]


def is_name(value: Any) -> bool:
    """True when ``value`` is text that may be used as a file or folder name."""
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None


def check_name(name: Any, where: str, error: type[InputError] = InputError, **context: Any) -> str:
    """``name`` when it is a name (see :data:`NAME_RE`); otherwise ``error`` naming ``where``."""
    if not isinstance(name, str):
        raise error(f"{where}: expected text, got {name!r}", **context)
    if not NAME_RE.fullmatch(name):
        raise error(f"{where}: {name!r} must start with a letter and hold only letters, digits, _ or - "
                    "(at most 100)", hint="a name is a file name, never a path", **context)
    return name
